"""Live routing through a real Envoy (issue #25): a replica killed under load costs (almost) no client errors and
comes back when it recovers; a model that dies answers its auto requests from the next candidate at once (Envoy's last
attempt, body rewritten by the router), then the router skips it until it recovers; a model that turns slow moves
traffic away and back.

Timings are short on purpose (health checks every 0.5 s, ejections of 3 s) so each fault plays out in seconds."""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import subprocess
import sys
import time

import pytest

from tests.bench.loadgen import closed_loop_with_events

from .conftest import BACKBONE, chat, client

FAST = {
    "resilience": {
        "retries": {"attempts": 2},
        "outlier_detection": {"interval_s": 0.5, "base_ejection_s": 3, "consecutive_gateway_failure": 2},
        "health_check": {"interval_s": 0.5, "timeout_s": 0.5, "unhealthy_threshold": 2, "healthy_threshold": 1},
    }
}


def _config(**live) -> dict:
    cfg = copy.deepcopy(BACKBONE)
    cfg["models"][1]["endpoints"] = ["127.0.0.1:1", "127.0.0.1:2"]   # large: two replicas (ports re-assigned)
    del cfg["models"][1]["endpoint"]
    cfg["envoy"] = copy.deepcopy(FAST)
    # no signals: every auto request is category "other" (the fallback category): large first, then small
    cfg["routing"] = {"categories": {"other": {"model_scores": {"large": 1.0, "small": 0.5}}}}
    cfg["live"] = {"envoy_poll_s": 0.25, "cooldown_s": 2, "min_requests": 3, **live}
    return cfg


async def _load(stack, model: str, seconds: float, concurrency: int, at: list) -> list[tuple[float, int]]:
    """Closed-loop load for `seconds`; `at` = [(second, callable)] run on a thread meanwhile. Returns
    (start time relative to the load's start, status) per request; status 0: the connection broke."""
    body = json.dumps(chat(model, "hello under load")).encode()
    return [(start, status) for start, _, status in
            await closed_loop_with_events(stack.config.envoy, body, seconds, concurrency, at)]


def _wait(check, timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if check():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout}s")


@pytest.fixture(scope="module")
def live_stack(make_stack):
    return make_stack(_config())


def test_a_replica_killed_under_load_costs_no_client_errors_and_recovers(live_stack, capsys):
    stack = live_stack
    killed = stack.upstream_name("large", 1)
    kill_at, seconds = 2.0, 8.0
    results = asyncio.run(_load(stack, "large", seconds, 32,
                                [(kill_at, lambda: stack.stop_process(killed, signal.SIGKILL))]))
    failed = [(t, s) for t, s in results if s != 200]
    # ejected: health checks every 0.5 s, 2 failures → out of rotation within ~1 s; 2 s is the bound checked
    after = [x for x in failed if x[0] > kill_at + 2.0]
    with capsys.disabled():
        print(f"\n[live] replica killed under c=32: {len(failed)} failed of {len(results)} "
              f"({100 * len(failed) / max(1, len(results)):.3f} %), {len(after)} after ejection; "
              f"statuses {sorted({s for _, s in results})}")
    assert len(results) > 100, "the load ran"
    assert len(failed) <= 0.005 * len(results), failed[:20]
    assert not after, after[:20]

    # recovery: the replica comes back on its port and gets traffic within the probe time (one health check)
    stack.start_upstream("large", replica=1)
    with client(stack) as c:
        def served() -> bool:
            assert c.post("/v1/chat/completions", json=chat("large", "back?")).status_code == 200
            return stack.upstream_requests("large", 1) > 0
        took = _wait(served, 3 + 0.5 * 2 + 2, "the restarted replica serves again")
    with capsys.disabled():
        print(f"[live] restarted replica served again after {took:.2f}s")


def test_a_model_without_healthy_replicas_hands_auto_requests_to_the_next_candidate(make_stack):
    cfg = _config()
    cfg["models"][1]["endpoint"] = "127.0.0.1:1"    # large: one replica this time
    del cfg["models"][1]["endpoints"]
    stack = make_stack(cfg)
    with client(stack) as c:
        r = c.post("/v1/chat/completions", json=chat("auto", "first"))
        assert r.status_code == 200 and r.headers["x-router-model"] == "large"
        assert "x-router-fallback" not in r.headers
        _wait(lambda: all(m["replicas_healthy"] == 1 for m in json.loads(
            c.get(stack.metrics_url + "/live").text)["models"].values()), 10, "the router sees both models healthy")
        stack.stop_process(stack.upstream_name("large"), signal.SIGKILL)
        # at once, before Envoy's health checks or the router noticed: Envoy's tries of large fail, its last attempt
        # goes to small with the body the router rewrote for small (the hop cluster)
        r = c.post("/v1/chat/completions", json=chat("auto", "right after the kill"))
        assert r.status_code == 200, r.text
        assert r.headers["x-router-fallback"] in ("large>small;retry", "large>small;down"), r.headers
        assert r.headers["x-router-model"] == "small" and r.json()["model"] == "demo/small-0.6b"
        first = r.headers["x-router-fallback"]
        # a streamed request is covered the same way up to its first byte
        with c.stream("POST", "/v1/chat/completions", json=chat("auto", "streamed", stream=True)) as r:
            text = "".join(r.iter_text())
            assert r.status_code == 200 and r.headers["x-router-model"] == "small", text
            assert r.headers["x-router-fallback"] in ("large>small;retry", "large>small;down")
            assert "data: [DONE]" in text
        seen: list[int] = []

        def moved() -> bool:
            r = c.post("/v1/chat/completions", json=chat("auto", "while large is down"))
            seen.append(r.status_code)
            return r.status_code == 200 and r.headers.get("x-router-fallback") in ("large>small;down",
                                                                                    "large>small;cooling")
        _wait(moved, 10, "auto requests go to small")
        r = c.post("/v1/chat/completions", json=chat("auto", "still down"))
        assert r.status_code == 200 and r.headers["x-router-model"] == "small"
        assert r.json()["model"] == "demo/small-0.6b", "the body was rewritten for the fallback model"
        # an explicit request for the dead model is not moved: the client gets Envoy's OpenAI-shaped 5xx
        r = c.post("/v1/chat/completions", json=chat("large", "explicit"))
        assert r.status_code in (502, 503) and r.json()["error"]["type"] == "upstream_error"
        live = json.loads(c.get(stack.metrics_url + "/live").text)
        assert live["models"]["large"]["state"] in ("down", "cooling", "probing")
        # `router-extproc status` reads the same documents from every worker's ops port
        status = subprocess.run([sys.executable, "-m", "router_extproc.cli", "status", "--config",
                                 str(stack.config_path)], capture_output=True, text=True, timeout=30)
        assert status.returncode == 0, status.stderr
        line = next(x for x in status.stdout.splitlines() if x.strip().startswith("large"))
        assert line.split()[1] in ("down", "cooling", "probing") and "0/1" in line, status.stdout

        stack.start_upstream("large")
        _wait(lambda: c.post("/v1/chat/completions", json=chat("auto", "back")).headers["x-router-model"] == "large",
              10, "auto requests return to large")
    assert all(x == 200 for x in seen), seen
    print(f"[live] first request after the kill: {first}; statuses while large was detected as down: {seen}")


def test_a_model_that_turns_slow_moves_traffic_away_and_back(make_stack):
    cfg = _config(latency_p95_s=0.3, window_s=5)
    cfg["models"][1]["endpoint"] = "127.0.0.1:1"
    del cfg["models"][1]["endpoints"]
    stack = make_stack(cfg)
    with client(stack) as c:
        stack.stop_process(stack.upstream_name("large"))
        stack.start_upstream("large", latency_ms=600)

        def away() -> bool:
            r = c.post("/v1/chat/completions", json=chat("auto", "slow?"))
            return r.headers["x-router-model"] == "small" and r.headers["x-router-fallback"] == "large>small;cooling"
        _wait(away, 15, "traffic moves to small")
        cause = json.loads(c.get(stack.metrics_url + "/live").text)["models"]["large"]["last_cause"]
        assert "p95" in cause or cause == "probe slow", cause
        stack.stop_process(stack.upstream_name("large"))
        stack.start_upstream("large", latency_ms=0)
        _wait(lambda: c.post("/v1/chat/completions", json=chat("auto", "fast again")).headers["x-router-model"]
              == "large", 15, "traffic returns to large after the cooldown's probe")


def test_tokens_are_counted_and_a_spent_budget_is_a_429_until_the_window_ends(make_stack):
    cfg = _config()
    cfg["usage"] = {"enabled": True, "budget_tokens": 60, "budget_window_s": 3,
                    "prices": {"large": {"prompt_per_1m": 1.0, "completion_per_1m": 2.0}}}
    stack = make_stack(cfg)
    with client(stack, headers={"authorization": "Bearer tenant-a"}) as c:
        # a stream whose client did not ask for usage: the router asks, reads it, and the client never sees it
        with c.stream("POST", "/v1/chat/completions", json=chat("large", "count me", stream=True)) as r:
            text = "".join(r.iter_text())
        assert r.status_code == 200 and "data: [DONE]" in text and '"usage"' not in text
        scrape = c.get(stack.metrics_url + "/metrics").text
        assert 'router_tokens_total{decision="explicit",kind="completion",model="large"' in scrape
        assert "router_time_to_first_token_seconds_count" in scrape
        statuses = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:
            r = c.post("/v1/chat/completions", json=chat("large", "spend the budget"))
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "token_budget_exceeded" and int(r.headers["retry-after"]) >= 1
                break
        assert statuses[-1] == 429, statuses
        time.sleep(int(r.headers["retry-after"]) + 0.1)
        assert c.post("/v1/chat/completions", json=chat("large", "a new window")).status_code == 200


def test_the_upstream_call_joins_the_clients_trace_through_envoy_and_the_router(make_stack):
    pytest.importorskip("opentelemetry.sdk")
    cfg = _config()
    cfg["tracing"] = {"enabled": True, "sample_ratio": 1.0}
    stack = make_stack(cfg)
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with client(stack) as c:
        r = c.post("/v1/chat/completions", json=chat("large", "trace me"),
                   headers={"traceparent": f"00-{trace_id}-{parent}-01", "x-demo-echo": "1"})
    assert r.status_code == 200
    seen = r.json()["demo_headers"]["traceparent"].split("-")
    assert seen[1] == trace_id, "one trace: client → router → upstream"
    assert seen[2] != parent, "the upstream's parent is the router's span"


def test_with_envoy_tracing_the_upstream_call_stays_in_the_clients_trace(make_stack):
    """Envoy's own tracer on (its collector need not answer): Envoy's upstream span names the upstream's parent, in
    the client's trace; the router's span is a child of Envoy's ext_proc span (unit: test_tracing.py)."""
    pytest.importorskip("opentelemetry.sdk")
    from router_extproc.dev.stack import free_port

    cfg = _config()
    cfg["tracing"] = {"enabled": True, "sample_ratio": 1.0, "envoy_collector": f"127.0.0.1:{free_port()}"}
    stack = make_stack(cfg)
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    with client(stack) as c:
        r = c.post("/v1/chat/completions", json=chat("large", "trace me too"),
                   headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "x-demo-echo": "1"})
    assert r.status_code == 200
    assert r.json()["demo_headers"]["traceparent"].split("-")[1] == trace_id
