"""Live routing (live.py): a model over its error or latency bound cools down, then one probe decides; a model with
no healthy replica in Envoy is skipped; auto requests go to the next candidate of their category, explicit ones
never change model; the state is visible in /metrics and /live."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from router_extproc.config import parse_config
from router_extproc.decision import Decision
from router_extproc.live import LiveState, candidates, replica_health
from router_extproc.pipeline import Continue, Router


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def config(live=None, **extra):
    data = {
        "models": [{"name": "big", "endpoint": "127.0.0.1:9001", "family": "qwen3"},
                   {"name": "small", "endpoint": "127.0.0.1:9002", "family": "none"},
                   {"name": "private", "endpoint": "127.0.0.1:9003", "family": "qwen3",
                    "pii_allow": ["EMAIL_ADDRESS"]}],
        "default_model": "big",
        "routing": {"categories": {"math": {"model_scores": {"big": 1.0, "private": 0.5, "small": 0.2},
                                            "use_reasoning": True},
                                   "other": {"model_scores": {"big": 0.9, "small": 0.5}}}},
        "live": {"min_requests": 4, "error_rate": 0.5, "cooldown_s": 10, "window_s": 30, **(live or {})},
        **extra,
    }
    return parse_config(data, source=Path("live.yaml"))


def decision(model="big", category="math", auto=True, **kw) -> Decision:
    return Decision(model=model, auto=auto, category=category, reasoning=True, reasoning_effort="high",
                    reason=f"category {category}", **kw)


def fail(state, cfg, name, n, status=503):
    for _ in range(n):
        state.answered(cfg.live, name, status, 0.1)


def test_candidates_are_the_category_order_with_pii_allow_lists_applied():
    cfg = config()
    assert candidates(cfg, decision()) == ["big", "private", "small"]
    assert candidates(cfg, decision(model="small")) == ["small", "big", "private"]
    pii = decision(pii_types=frozenset({"US_SSN"}))
    assert candidates(cfg, pii) == ["big", "small"]   # private only accepts emails
    # a redacted type never reaches a model: its allow-list has no say
    assert candidates(cfg, replace(pii, pii_redact=frozenset({"US_SSN"}))) == ["big", "private", "small"]
    assert candidates(cfg, decision(category=None)) == ["big"]


def test_errors_over_the_bound_cool_a_model_down_and_its_requests_go_to_the_next_candidate():
    cfg, clock = config(), Clock()
    state = LiveState(clock)
    fail(state, cfg, "big", 3)
    assert state.state("big") == "ok", "below min_requests: no verdict"
    fail(state, cfg, "big", 1)
    assert state.state("big") == "cooling"
    moved = state.reroute(cfg, decision())
    assert moved.decision.model == "private" and moved.reason == "cooling"
    assert moved.header == "big>private;cooling"
    assert moved.decision.reasoning and "live: big cooling → private" in moved.decision.reason


def test_a_model_family_that_cannot_switch_reasoning_gets_none():
    cfg = config()
    state = LiveState(Clock())
    fail(state, cfg, "big", 4)
    moved = state.reroute(cfg, decision(category="other"))
    assert moved.decision.model == "small" and moved.decision.reasoning is None
    assert moved.decision.reasoning_effort is None


def test_explicit_blocked_and_injection_routed_requests_never_move():
    cfg = config()
    state = LiveState(Clock())
    fail(state, cfg, "big", 4)
    assert state.reroute(cfg, decision(auto=False)) is None
    assert state.reroute(cfg, decision(blocked="jailbreak")) is None
    assert state.reroute(cfg, decision(injection="routed")) is None
    assert state.reroute(config(live={"enabled": False}), decision()) is None


def test_after_the_cooldown_one_probe_decides():
    cfg, clock = config(), Clock()
    state = LiveState(clock)
    fail(state, cfg, "big", 4)
    clock.t += 10.5
    assert state.state("big") == "probing"
    assert state.reroute(cfg, decision()) is None, "the first request after the cooldown is the probe"
    moved = state.reroute(cfg, decision())
    assert moved is not None and moved.reason == "probing", "one probe at a time"
    fail(state, cfg, "big", 1)                        # the probe failed: another cooldown
    assert state.state("big") == "cooling" and state.model("big").last_cause == "probe failed"
    clock.t += 10.5
    assert state.reroute(cfg, decision()) is None
    state.answered(cfg.live, "big", 200, 0.1)        # the probe succeeded: back, with a clean window
    assert state.state("big") == "ok" and state.model("big").counts() == (0, 0)
    assert state.reroute(cfg, decision()) is None


def test_a_slow_model_moves_traffic_away_and_back():
    cfg, clock = config(live={"latency_p95_s": 1.0}), Clock()
    state = LiveState(clock)
    for _ in range(4):
        state.answered(cfg.live, "big", 200, 2.5)
    assert state.state("big") == "cooling" and "p95 ttfb" in state.model("big").last_cause
    assert state.reroute(cfg, decision()).decision.model == "private"
    clock.t += 11
    assert state.reroute(cfg, decision()) is None     # the probe
    state.answered(cfg.live, "big", 200, 3.0)         # still slow: cools again
    assert state.state("big") == "cooling"
    clock.t += 11
    state.reroute(cfg, decision())
    state.answered(cfg.live, "big", 200, 0.2)
    assert state.state("big") == "ok"


def test_the_window_forgets_old_errors():
    cfg, clock = config(), Clock()
    state = LiveState(clock)
    fail(state, cfg, "big", 3)
    clock.t += 31
    state.answered(cfg.live, "big", 200, 0.1)
    assert state.state("big") == "ok" and state.snapshot(cfg.live, ["big"])["big"]["answers"] == 1


def test_no_healthy_replica_in_envoy_is_down_and_skipped():
    cfg = config()
    state = LiveState(Clock())
    state.set_replicas("big", 0, 2)
    state.set_replicas("private", 0, 1)
    moved = state.reroute(cfg, decision())
    assert moved.decision.model == "small" and moved.header == "big>small;down"
    state.set_replicas("big", 1, 2)
    assert state.reroute(cfg, decision()) is None


def test_nothing_available_keeps_the_decision():
    cfg = config()
    state = LiveState(Clock())
    for m in ("big", "private", "small"):
        state.set_replicas(m, 0, 1)
    assert state.reroute(cfg, decision()) is None


def test_least_loaded_and_latency_aware_selection():
    cfg = config(live={"selection": "least_loaded"})
    state = LiveState(Clock())
    state.started("big")
    state.started("big")
    state.started("private")
    moved = state.reroute(cfg, decision())
    assert moved.decision.model == "small" and moved.reason == "least_loaded"
    cfg = config(live={"selection": "latency_aware"})
    state = LiveState(Clock())
    for name, ttfb in (("big", 0.9), ("private", 0.3), ("small", 0.5)):
        state.answered(cfg.live, name, 200, ttfb)
    assert state.reroute(cfg, decision()).decision.model == "private"


def test_replica_health_from_envoy_clusters_json():
    doc = {"cluster_statuses": [
        {"name": "model_big", "host_statuses": [
            {"health_status": {"eds_health_status": "HEALTHY"}},
            {"health_status": {"eds_health_status": "HEALTHY", "failed_outlier_check": True}},
            {"health_status": {"eds_health_status": "HEALTHY", "failed_active_health_check": True}}]},
        {"name": "router_extproc", "host_statuses": [{"health_status": {"eds_health_status": "HEALTHY"}}]},
    ]}
    assert replica_health(doc, {"model_big": "big"}) == {"big": (1, 3)}


# ── through the pipeline ───────────────────────────────────────────────────────────────────────
def _forward(router: Router, model: str = "auto"):
    ex = router.new_exchange()
    router.on_request_headers(ex, {":method": "POST", ":path": "/v1/chat/completions"}, False)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    answer = asyncio.run(router.on_request_body(ex, body))
    assert isinstance(answer, Continue)
    return ex, answer


def test_the_pipeline_records_answers_moves_requests_and_reports_them():
    router = Router(config())   # no signals: category "other" (the fallback category) → big, then small
    for _ in range(4):
        ex, answer = _forward(router)
        assert answer.set_headers["x-selected-model"] == "big"
        assert router.live.model("big").in_flight == 1
        plan = router.on_response_headers(ex, {":status": "503"})
        assert "x-router-fallback" not in plan.set_headers
        router.on_stream_end(ex)
    assert router.live.model("big").in_flight == 0 and router.live.state("big") == "cooling"

    ex, answer = _forward(router)
    assert answer.set_headers["x-selected-model"] == "small"
    assert json.loads(answer.body)["model"] == "small"
    plan = router.on_response_headers(ex, {":status": "200"})
    assert plan.set_headers["x-router-fallback"] == "big>small;cooling"
    assert plan.set_headers["x-router-model"] == "small"
    router.on_stream_end(ex)
    # an explicit model is never moved
    _, answer = _forward(router, "big")
    assert answer.set_headers["x-selected-model"] == "big"

    scrape = generate_latest(router.metrics.registry).decode()
    assert 'router_live_model_state{model="big"} 2.0' in scrape
    assert 'router_live_fallbacks_total{from_model="big",reason="cooling",to_model="small"} 1.0' in scrape


def test_a_stream_that_ends_without_an_answer_counts_as_an_error():
    router = Router(config())
    for _ in range(4):
        ex, _ = _forward(router)
        router.on_stream_end(ex)
    assert router.live.state("big") == "cooling"


@pytest.mark.parametrize("workers", [1])
def test_live_doc_on_the_ops_port(workers):
    from router_extproc.app import _live_doc

    router = Router(config())
    doc = _live_doc(router)
    assert set(doc["models"]) == {"big", "small", "private"}
    assert doc["models"]["big"]["state"] == "ok" and doc["selection"] == "best"
    assert _live_doc(None)["starting"]


# ── the fallback attempt ───────────────────────────────────────────────────────────────────────
def test_the_forwarded_request_names_the_next_candidate_for_envoys_last_attempt():
    router = Router(config())
    ex, answer = _forward(router)
    assert answer.set_headers["x-router-next"] == "small"
    assert answer.set_headers["x-router-next-reasoning"] == ""   # small's family cannot switch reasoning
    _, answer = _forward(router, "big")
    assert "x-router-next" not in answer.set_headers, "an explicit model has no fallback"
    router.live.set_replicas("small", 0, 1)
    _, answer = _forward(router)
    assert "x-router-next" not in answer.set_headers, "no next candidate in rotation"
    router = Router(config(envoy={"resilience": {"fallback": False}}))
    _, answer = _forward(router)
    assert "x-router-next" not in answer.set_headers


def _hop(router: Router, path: str, body: dict, next_model: str):
    """Envoy's fallback attempt: its own stream, the next model named in x-router-next. Returns the exchange, the
    headers phase's answer and the body sent upstream."""
    ex = router.new_exchange()
    answer = router.on_request_headers(ex, {":method": "POST", ":path": path, "x-router-next": next_model,
                                            "x-router-next-reasoning": "on:high"}, False)
    return ex, answer, json.loads(asyncio.run(router.on_request_body(ex, json.dumps(body).encode())).body)


def test_the_hop_rewrites_the_body_for_the_next_model_and_marks_the_answer():
    router = Router(config())
    body = {"model": "big", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ex, answer, sent = _hop(router, "/v1/chat/completions", body, "private")
    assert not answer.remove_headers and not answer.set_headers   # the internal listener routes on x-router-next
    assert sent["model"] == "private" and sent["stream"] is True
    assert sent["chat_template_kwargs"] == {"enable_thinking": True}
    assert router.on_response_headers(ex, {":status": "200"}).set_headers == {"x-router-fallback": "private;retry"}
    router.on_stream_end(ex)
    assert router.live.model("private").in_flight == 0


def test_an_answer_from_the_last_attempt_is_reported_as_the_next_models():
    router = Router(config())
    ex, _ = _forward(router)
    plan = router.on_response_headers(ex, {":status": "200", "x-router-fallback": "small;retry"})
    assert plan.set_headers["x-router-fallback"] == "big>small;retry"
    assert plan.set_headers["x-router-model"] == "small"
    snap = router.live.snapshot(router.config.live, ["big", "small"])
    assert snap["big"]["errors"] == 1 and snap["small"]["answers"] == 1
    router.on_stream_end(ex)
    assert router.live.model("big").in_flight == router.live.model("small").in_flight == 0
    # an upstream cannot claim a fallback the router did not name
    ex, _ = _forward(router)
    plan = router.on_response_headers(ex, {":status": "200", "x-router-fallback": "private;retry"})
    assert plan.set_headers["x-router-model"] == "big" and "x-router-fallback" not in plan.set_headers
    assert plan.remove_headers == ("x-router-fallback",)


def test_the_window_is_bounded_whatever_the_traffic():
    from router_extproc.live import MAX_EVENTS

    cfg, clock = config(live={"error_rate": 0.9}), Clock()
    state = LiveState(clock)
    for i in range(3 * MAX_EVENTS):
        state.answered(cfg.live, "big", 503 if i % 2 else 200, 0.1)
    m = state.model("big")
    assert m.counts() == (MAX_EVENTS, MAX_EVENTS // 2)   # the error count follows the evictions


# a qwen3 model whose fallback is a gpt-oss one: the two families switch reasoning differently
TWO_FAMILIES = [{"name": "big", "endpoint": "127.0.0.1:9001", "family": "qwen3"},
                {"name": "oss", "endpoint": "127.0.0.1:9002", "family": "gpt-oss"}]


def test_the_hop_writes_a_responses_body_in_its_own_spelling():
    router = Router(config(models=TWO_FAMILIES, routing={}))
    _, _, sent = _hop(router, "/v1/responses", {"model": "big", "input": "hi"}, "oss")
    assert sent["model"] == "oss" and sent["reasoning"] == {"effort": "high"} and "reasoning_effort" not in sent


def test_the_hop_swaps_the_reasoning_switch_for_the_next_models_family():
    router = Router(config(models=TWO_FAMILIES, routing={}))
    body = {"model": "big", "messages": [], "chat_template_kwargs": {"enable_thinking": True, "other": 1}}
    _, _, sent = _hop(router, "/v1/chat/completions", body, "oss")
    assert sent["reasoning_effort"] == "high" and sent["chat_template_kwargs"] == {"other": 1}
