"""`router-extproc serve --workers N`: N independent router processes, one gRPC port each.

Worker i runs `router-extproc serve --config X --port P+i --metrics-port M+i --workers 1`, where P and M
are the ports of `server.grpc_listen` and `server.metrics_listen`. Envoy's router cluster lists the same
N endpoints (see `envoy_config.py`), so each ext_proc stream (one per HTTP request) goes to one worker,
round robin. Separate ports rather than SO_REUSEPORT: Envoy keeps a few long-lived HTTP/2 connections
and multiplexes every stream over them, so kernel-level balancing of *connections* would pin all the
traffic of one Envoy worker thread to one router process; endpoints let Envoy balance *streams*.

The supervisor:
- forwards SIGTERM, SIGINT and SIGHUP to every worker (drain / drain / reload);
- fails fast: if a worker exits while the others run, and the supervisor was not asked to stop,
  it stops the others and exits non-zero, so the container (or systemd) restarts the whole set
  rather than leaving Envoy 1/N of its streams pointing at a closed port;
- exits once all workers have exited: 0 when every worker exited 0, else the first failure's code.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import logs
from .config import load_config

log = logging.getLogger("router_extproc.workers")

_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def worker_argv(config_path: str | Path, grpc_port: int, metrics_port: int) -> list[str]:
    return [sys.executable, "-m", "router_extproc.cli", "serve", "--config", str(config_path),
            "--port", str(grpc_port), "--metrics-port", str(metrics_port), "--workers", "1"]


def worker_ports(config_path: str | Path, n: int) -> list[tuple[int, int]]:
    """(grpc port, metrics port) of each worker."""
    s = load_config(config_path).server
    return [(s.grpc_port + i, s.metrics_port + i) for i in range(n)]


def _exit_code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc  # killed by signal N -> 128+N, as a shell reports it


def run_workers(config_path: str | Path, n: int) -> int:
    config = load_config(config_path)  # a bad config fails here, once, with the file, key and reason
    logs.setup(config.logging.level)
    ports = [(config.server.grpc_port + i, config.server.metrics_port + i) for i in range(n)]
    procs: list[subprocess.Popen] = []
    stopping = False
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum != signal.SIGHUP:
            stopping = True
        received.append(signum)
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signum)
                except ProcessLookupError:
                    pass

    previous = {sig: signal.signal(sig, forward) for sig in _FORWARDED}
    try:
        for grpc_port, metrics_port in ports:
            procs.append(subprocess.Popen(worker_argv(config_path, grpc_port, metrics_port)))
        log.info("workers started", extra={"workers": n, "grpc_ports": [g for g, _ in ports],
                                            "metrics_ports": [m for _, m in ports]})

        first_failure: int | None = None
        while True:
            codes = [p.poll() for p in procs]
            for p, rc in zip(procs, codes):
                if rc is not None and rc != 0 and first_failure is None:
                    first_failure = _exit_code(rc)
            if all(rc is not None for rc in codes):
                break
            if not stopping and any(rc is not None for rc in codes):
                # A worker died on its own: take the set down so the supervisor above restarts it.
                log.error("a worker exited unexpectedly; stopping the others", extra={"codes": codes})
                stopping = True
                if first_failure is None:
                    first_failure = 1
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
            time.sleep(0.1)
        return first_failure or 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
