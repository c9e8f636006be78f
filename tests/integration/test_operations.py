"""Operating the router through a real Envoy: metrics move with traffic, health endpoints answer, a good config
reloads without a restart and a bad one is rejected while the old one keeps serving, SIGTERM drains in-flight
requests, and `--workers 2` spreads streams over both processes."""

from __future__ import annotations

import copy
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import httpx
import pytest
import yaml

from router_extproc.dev.stack import Stack
from tests.helpers import eventually, free_port, scrape, total, value

from .conftest import BACKBONE, chat, client


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_request_metrics_follow_traffic(stack, http):
    before = scrape(stack.metrics_url)
    assert http.post("/v1/chat/completions", json=chat("small")).status_code == 200
    assert http.post("/v1/chat/completions", json=chat("gpt-17")).status_code == 404
    after = scrape(stack.metrics_url)
    small = {"decision": "explicit", "model": "small", "category": "none"}
    assert total(after, "router_requests_total", **small) - total(before, "router_requests_total", **small) == 1
    assert (value(after, "router_request_errors_total", status="404", code="model_not_found")
            - value(before, "router_request_errors_total", status="404", code="model_not_found")) == 1
    assert value(after, "router_upstream_responses_total", model="small", status_class="2xx") >= 1
    assert total(after, "router_decision_duration_seconds_count") >= total(before, "router_decision_duration_seconds_count") + 1
    # Streams close when the exchange ends, and nothing ended in a stream error.
    assert eventually(lambda: value(scrape(stack.metrics_url), "router_extproc_streams_active") == 0)
    assert total(after, "router_extproc_stream_errors_total") == 0


def test_health_endpoints(stack):
    assert get(stack.metrics_url + "/healthz") == (200, "ok\n")
    assert get(stack.metrics_url + "/readyz") == (200, "ready\n")
    assert get(stack.metrics_url + "/nope")[0] == 404


def _served_by(http) -> str:
    r = http.post("/v1/chat/completions", json=chat("auto"))
    assert r.status_code == 200, r.text
    return r.headers["x-router-model"]


def test_hot_reload_follows_a_good_config_and_rejects_a_bad_one(stack, http):
    assert _served_by(http) == "large"
    reloads = lambda result: value(scrape(stack.metrics_url), "router_config_reloads_total", result=result)  # noqa: E731
    ok0, bad0 = reloads("success"), reloads("failure")

    good = yaml.safe_load(stack.config_path.read_text())
    good["default_model"] = "small"
    stack.config_path.write_text(yaml.safe_dump(good, sort_keys=False))
    assert eventually(lambda: _served_by(http) == "small"), "new default model not picked up"
    assert reloads("success") == ok0 + 1

    stack.config_path.write_text(stack.config_path.read_text().replace("default_model: small",
                                                                       "default_model: no-such-model"))
    assert eventually(lambda: reloads("failure") == bad0 + 1), "bad config not rejected"
    assert value(scrape(stack.metrics_url), "router_config_last_reload_successful") == 0
    assert all(_served_by(http) == "small" for _ in range(3)), "the old config must keep serving"

    stack.config_path.write_text("models: [unclosed\n")  # not even YAML
    assert eventually(lambda: reloads("failure") == bad0 + 2)
    assert _served_by(http) == "small"

    # SIGHUP reloads without a file change.
    stack.config_path.write_text(yaml.safe_dump(good, sort_keys=False))
    assert eventually(lambda: reloads("success") == ok0 + 2)
    stack.procs["router"].send_signal(signal.SIGHUP)
    assert eventually(lambda: reloads("success") == ok0 + 3)
    assert value(scrape(stack.metrics_url), "router_config_last_reload_successful") == 1
    assert _served_by(http) == "small"


def test_sigterm_drains_in_flight_requests_then_exits_0(make_stack):
    stack = make_stack()
    router = stack.procs["router"]
    result: dict = {}

    def slow_request() -> None:
        with client(stack) as c:
            result["response"] = c.post("/v1/chat/completions", json=chat("large"),
                                        headers={"x-demo-latency-ms": "1500"})

    t = threading.Thread(target=slow_request)
    t.start()
    assert eventually(lambda: value(scrape(stack.metrics_url), "router_extproc_streams_active") >= 1, 5, 0.02)
    router.send_signal(signal.SIGTERM)
    # Draining: not ready any more (Kubernetes stops sending traffic), still alive.
    assert eventually(lambda: get(stack.metrics_url + "/readyz")[0] == 503, 2, 0.05)
    t.join(15)
    assert result["response"].status_code == 200, result["response"].text
    assert result["response"].headers["x-router-model"] == "large"
    assert router.wait(15) == 0
    # New requests after the drain fail closed (failure_mode_allow: false).
    with client(stack) as c:
        assert c.post("/v1/chat/completions", json=chat("large")).status_code >= 500


def _two_free_ports() -> int:
    """A port p with p and p+1 both free (worker i listens on port + i)."""
    for _ in range(50):
        p = free_port()
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def test_two_workers_both_receive_streams_through_envoy(tmp_path):
    cfg = copy.deepcopy(BACKBONE)
    cfg["server"]["workers"] = 2
    stack = Stack(cfg, workdir=tmp_path)
    # Re-pick the router's ports so that port+1 is free too, then re-render (the Stack chose single ports).
    grpc, metrics = _two_free_ports(), _two_free_ports()
    stack.data["server"]["grpc_listen"] = f"127.0.0.1:{grpc}"
    stack.data["server"]["metrics_listen"] = f"127.0.0.1:{metrics}"
    stack.data["envoy"]["router_address"] = f"127.0.0.1:{grpc}"
    stack.free_ports = False
    stack._prepare()
    worker_urls = [f"http://127.0.0.1:{metrics + i}" for i in range(2)]
    try:
        stack.start()
        assert eventually(lambda: all(get(u + "/readyz")[0] == 200 for u in worker_urls), 30)
        with httpx.Client(base_url=stack.url, timeout=30) as c:
            for _ in range(8):
                assert c.post("/v1/chat/completions", json=chat("small")).status_code == 200
        counts = [total(scrape(u), "router_requests_total") for u in worker_urls]
        assert sum(counts) == 8 and all(n >= 1 for n in counts), counts
        # SIGTERM to the supervisor reaches both workers; all drain and the supervisor exits 0.
        assert stack.stop_process("router") == 0
        for u in worker_urls:
            with pytest.raises(OSError):
                urllib.request.urlopen(u + "/healthz", timeout=2)
    finally:
        stack.stop()


def test_a_worker_that_cannot_start_takes_the_set_down(tmp_path):
    """Fail fast: Envoy would keep sending 1/N of the streams to a dead worker, so the supervisor stops the
    others and exits non-zero for the container runtime to restart it."""
    cfg = copy.deepcopy(BACKBONE)
    grpc, metrics = _two_free_ports(), _two_free_ports()
    cfg["server"].update(grpc_listen=f"127.0.0.1:{grpc}", metrics_listen=f"127.0.0.1:{metrics}", workers=2)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", metrics + 1))  # worker 1's metrics port is taken
        blocker.listen()
        proc = subprocess.run([sys.executable, "-m", "router_extproc.cli", "serve", "--config", str(path)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode != 0
    assert "a worker exited unexpectedly" in proc.stderr
