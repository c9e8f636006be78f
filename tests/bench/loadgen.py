"""A small closed-loop HTTP/1.1 load generator on raw asyncio sockets.

httpx costs ~1 ms of client CPU per request, which on 2 cores would be measured as server latency;
this client writes pre-encoded requests on keep-alive connections and parses only the status line,
headers and content-length/chunked body. Targets are loopback only; every run is bounded in requests
and in time.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    wall_s: float = 0.0
    errors: int = 0

    @property
    def n(self) -> int:
        return len(self.latencies_ms)

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

    @property
    def p50(self) -> float:
        return self.pct(50)

    @property
    def p99(self) -> float:
        return self.pct(99)

    @property
    def rps(self) -> float:
        return self.n / self.wall_s if self.wall_s else 0.0

    @property
    def mean(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else float("nan")


def encode_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: {host}:{port}", "content-type: application/json",
             f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    lower = head.lower()
    idx = lower.find(b"content-length:")
    if idx >= 0:
        end = lower.find(b"\r\n", idx)
        await reader.readexactly(int(lower[idx + 15:end]))
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def run(host: str, port: int, requests: Sequence[bytes] | Callable[[int], bytes], *, total: int,
              concurrency: int, max_seconds: float = 60.0) -> Result:
    """Send `total` requests over `concurrency` keep-alive connections, stopping at `max_seconds`."""
    pick = requests if callable(requests) else (lambda i: requests[i % len(requests)])
    result = Result()
    counter = iter(range(total))
    deadline = time.monotonic() + max_seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in counter:
                if time.monotonic() > deadline:
                    return
                t0 = time.perf_counter()
                writer.write(pick(i))
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    result.errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                result.statuses[status] = result.statuses.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - t0
    return result


async def closed_loop_with_events(envoy: Any, body: bytes, seconds: float, concurrency: int,
                                  at: Sequence[tuple[float, Callable[[], Any]]] = (),
                                  ) -> list[tuple[float, float, int]]:
    """A closed loop of `concurrency` keep-alive connections POSTing `body` to the chat path for `seconds`, while
    `at` = [(second, callable)] runs on a thread (a replica killed, restarted). Returns (start s relative to the
    load's start, latency ms, status) per request; status 0: the connection broke (it is reopened)."""
    raw = encode_post(envoy.listen_host, envoy.listen_port, "/v1/chat/completions", body)
    out: list[tuple[float, float, int]] = []
    t0 = time.monotonic()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(envoy.listen_host, envoy.listen_port)
        while (start := time.monotonic() - t0) < seconds:
            writer.write(raw)
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                status = 0
                writer.close()
                reader, writer = await asyncio.open_connection(envoy.listen_host, envoy.listen_port)
            out.append((start, (time.monotonic() - t0 - start) * 1000, status))
        writer.close()

    async def events() -> None:
        loop = asyncio.get_running_loop()
        for when, fn in at:
            await asyncio.sleep(max(0.0, when - (time.monotonic() - t0)))
            await loop.run_in_executor(None, fn)

    await asyncio.gather(events(), *(worker() for _ in range(concurrency)))
    return out
