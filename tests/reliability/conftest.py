"""Fixtures for the fault and soak tests: real stacks (Envoy + router + demo upstreams), a real Milvus server,
metric scraping, background load, and a recorder whose rows become docs/reliability.md.

Every test here is marked `reliability` (run by `make test-reliability`, excluded from `make test`).
Loads are bounded in request count and in time; all targets are loopback.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.helpers import eventually, free_port, reusable_bind, scrape, total, value  # noqa: F401
from tests.integration.conftest import BACKBONE, chat, client, make_stack, models_built  # noqa: F401

__all__ = ["BACKBONE", "CACHED", "Load", "chat", "client", "eventually", "scrape", "total", "value", "rss_kib",
           "signals_ready", "cached_config"]

ROOT = Path(__file__).resolve().parents[2]


def signals_ready() -> tuple[bool, str]:
    """The cache needs request embeddings, which come from the signal engine: no engine, no stores."""
    if not models_built():
        return False, "signal models not built (models/dist/encoder.onnx missing): run `make models`"
    # Import in a child: the engine package may be mid-edit, and a broken import must not poison this process.
    proc = subprocess.run([sys.executable, "-c", "import router_extproc.signals"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    if proc.returncode != 0:
        return False, f"router_extproc.signals does not import: {proc.stderr.strip().splitlines()[-1:]}"
    return True, ""


_READY: tuple[bool, str] | None = None


def cache_ready() -> tuple[bool, str]:
    global _READY
    if _READY is None:
        _READY = signals_ready()
    return _READY


# BACKBONE + the embedding-producing signals + the in-memory semantic cache. The jailbreak and PII heads are off
# here: fault tests must not depend on a classifier's verdict on their prompts (a prompt flagged as PII is
# neither looked up nor stored, which would make "miss"/"hit" assertions flaky). PII_CACHED turns PII on for
# the privacy scan. Every model may receive PII (pii_allow "*"), so a PII prompt is routed, not blocked.
CACHED = copy.deepcopy(BACKBONE)
CACHED["signals"] = {"category": True, "complexity": True, "jailbreak": False, "pii": False}
CACHED["semantic_cache"] = {"enabled": True, "backend_type": "memory", "similarity_threshold": 0.8,
                            "max_entries": 1000, "ttl_seconds": 3600}
CACHED["guards"] = {"jailbreak": False, "pii": False}
for _m in CACHED["models"]:
    _m["pii_allow"] = ["*"]
PII_CACHED = copy.deepcopy(CACHED)
PII_CACHED["signals"]["pii"] = True
PII_CACHED["guards"]["pii"] = True


def cached_config(**overrides) -> tuple[dict, bool]:
    """(config, cache_on): CACHED when the signal engine can run, else BACKBONE (the client-side assertions
    still hold; "nothing cached" is then trivially true and the report says so)."""
    ok, _ = cache_ready()
    cfg = copy.deepcopy(CACHED if ok else BACKBONE)
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg, ok


@pytest.fixture
def needs_cache() -> None:
    """Skip (with the reason) when the semantic cache cannot store anything in this checkout. A fixture, not a
    module-level skipif, so that collecting the default suite never pays for the check."""
    ok, why = cache_ready()
    if not ok:
        pytest.skip(f"semantic cache unavailable: {why}")


# ── metrics ──────────────────────────────────────────────────────────────────────────────────────
def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


# ── background load ──────────────────────────────────────────────────────────────────────────────
@dataclass
class Sample:
    started: float
    ended: float
    status: int          # 0: transport error (connection reset, timeout)
    cache: str = ""
    error: str = ""      # the transport error's class, when status is 0


@dataclass
class Load:
    """`threads` closed-loop clients posting `body(i)` until stopped, `max_requests` are sent or `max_seconds`
    pass. Each response is recorded with its start/end time, so a test can say which requests fell in a gap."""

    url: str
    body: Callable[[int], dict]
    headers: Callable[[int], dict] = lambda i: {}
    threads: int = 4
    max_requests: int = 2000
    max_seconds: float = 120.0
    timeout: float = 15.0
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._n = 0
        self._workers: list[threading.Thread] = []

    def _next(self) -> int | None:
        with self._lock:
            if self._n >= self.max_requests:
                return None
            self._n += 1
            return self._n - 1

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(base_url=self.url, timeout=self.timeout) as c:
            while not self._stop.is_set() and time.monotonic() < deadline:
                i = self._next()
                if i is None:
                    return
                t0 = time.monotonic()
                try:
                    r = c.post("/v1/chat/completions", json=self.body(i), headers=self.headers(i))
                    s = Sample(t0, time.monotonic(), r.status_code, r.headers.get("x-router-cache", ""))
                except httpx.HTTPError as exc:
                    s = Sample(t0, time.monotonic(), 0, error=f"{type(exc).__name__}: {exc}"[:200])
                with self._lock:
                    self.samples.append(s)
                time.sleep(0.005)

    def start(self) -> "Load":
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def stop(self) -> "Load":
        self._stop.set()
        for w in self._workers:
            w.join(self.timeout + 5)
        return self

    def statuses(self, pred: Callable[[Sample], bool] = lambda s: True) -> dict[int, int]:
        out: dict[int, int] = {}
        for s in self.samples:
            if pred(s):
                out[s.status] = out.get(s.status, 0) + 1
        return out


# ── stacks ───────────────────────────────────────────────────────────────────────────────────────
# make_stack is the integration suite's fixture, imported above.


# ── Milvus server (same recipe as tests/milvus) ──────────────────────────────────────────────────
class MilvusProcess:
    """A `milvus-server` standalone on a fixed free port that a test can kill -9 and start again (same data dir,
    same port)."""

    def __init__(self, base: Path) -> None:
        from milvus import MilvusServer

        self.server = MilvusServer()
        self.server.set_base_dir(str(base))
        # Every internal port (etcd, coordinators, nodes) starts its search at a random free port instead of
        # the package defaults: two milvus-servers started at once on one machine (another engineer's tests)
        # otherwise race for the same default ports and one of them panics in embedded etcd.
        for key in [k for k in self.server.config.configurable_items if k.endswith("_port")]:
            self.server.config.set(key, free_port())
        self.server.listen_port = free_port()
        # The package probes ports with a plain bind(); right after a kill -9 the old ports sit in TIME_WAIT,
        # the probe fails and the restarted server would move to other ports (and the router's URI would point
        # at nothing). Probe like the Go server binds (SO_REUSEADDR), and pin every port after the first start.
        self.server.config.try_bind_port = reusable_bind
        self.port = self.server.listen_port

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server.start()
        cfg = self.server.config
        for key in [k for k in cfg.configurable_items if k.endswith("_port")]:
            cfg.configs[key] = cfg.configurable_items[key][1]
        assert self.server.listen_port == self.port, (self.server.listen_port, self.port)
        from pymilvus import MilvusClient  # answered healthz; make sure it also serves the API

        deadline = time.monotonic() + 120
        while True:
            try:
                c = MilvusClient(uri=self.uri, timeout=5)
                c.list_collections()
                c.close()
                return
            except Exception:
                if time.monotonic() > deadline or self.server.server_proc is None or \
                        self.server.server_proc.poll() is not None:
                    raise
                time.sleep(1)

    def kill(self) -> None:
        proc = self.server.server_proc
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        self.server.server_proc = None
        for fd in self.server.proc_fds.values():
            fd.close()
        self.server.proc_fds.clear()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory) -> Iterator[MilvusProcess]:
    try:
        importlib.import_module("milvus")
    except ImportError:
        pytest.skip("milvus-server binary not installed (pip install milvus)")
    m = MilvusProcess(tmp_path_factory.mktemp("milvus-server"))
    try:
        m.start()
    except Exception as e:  # environment problem, not a router bug
        m.stop()
        pytest.skip(f"milvus-server could not start: {e}")
    yield m
    m.stop()


# ── the report's rows ────────────────────────────────────────────────────────────────────────────
@pytest.fixture
def record(request) -> Callable[..., None]:
    """record(scenario, injected=..., client_saw=..., sent=N, errors=N, lost=0, **extra): one row of
    docs/reliability.md. Rows go to $RELIABILITY_RESULTS (JSON lines) when set (tests/reliability/report.py
    sets it); otherwise they are only printed."""
    path = os.environ.get("RELIABILITY_RESULTS")

    def _record(scenario: str, **row) -> None:
        row = {"scenario": scenario, "test": request.node.nodeid, **row}
        print("RELIABILITY", json.dumps(row, default=str))
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(row, default=str) + "\n")

    return _record
