"""Tokens, cost, TTFT/TPOT and budgets (usage.py): usage read from JSON answers and a stream's final chunk, the
usage chunk the router asked for taken out of what the client gets, bounded tenant labels, 429 once a tenant's
budget is spent and service again in the next window."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from router_extproc.config import parse_config
from router_extproc.errors import ConfigError
from router_extproc.pipeline import Continue, Respond, Router
from router_extproc.usage import Accounting, SSEUsage, UsageConfig, ask_for_usage, cost, read_usage, Usage


def config(**usage):
    return parse_config({"models": [{"name": "big", "endpoint": "127.0.0.1:9001"}],
                         "usage": {"enabled": True, **usage}}, source=Path("u.yaml"))


def sse(*events: dict | str) -> bytes:
    return b"".join(b"data: " + (e if isinstance(e, str) else json.dumps(e)).encode() + b"\n\n" for e in events)


CONTENT = {"choices": [{"index": 0, "delta": {"content": "Hello"}}]}
ROLE = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
USAGE = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}}


def test_config_section():
    cfg = config(prices={"big": {"prompt_per_1m": 1.0, "completion_per_1m": 4.0}}, budget_tokens=100)
    assert cfg.usage.prices == {"big": (1.0, 4.0)} and cfg.usage.budget_tokens == 100
    assert parse_config({"models": [{"name": "big", "endpoint": "127.0.0.1:1"}]}, source=Path("u.yaml")).usage == \
        UsageConfig()
    with pytest.raises(ConfigError, match=r"u.yaml: usage.prices.nope: unknown model"):
        config(prices={"nope": {}})
    with pytest.raises(ConfigError, match=r"u.yaml: usage.budget: unknown key"):
        config(budget=1)


def test_read_usage_both_spellings():
    assert read_usage({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == Usage(3, 4)
    assert read_usage({"usage": {"input_tokens": 3, "output_tokens": 4}}) == Usage(3, 4)   # the Responses API
    assert read_usage({"usage": {"prompt_tokens": True, "completion_tokens": 4}}) is None
    assert read_usage({"usage": None}) is None and read_usage([]) is None


def test_the_usage_chunk_the_router_asked_for_is_read_and_taken_out():
    t = SSEUsage(strip=True, clock=iter([1.0, 2.0, 3.0]).__next__)
    whole = sse(ROLE, CONTENT, CONTENT, USAGE, "[DONE]")
    cut = whole.index(b"data: {\"choices\": []") + 7   # an event split across two chunks
    out = t.feed(whole[:cut], False) + t.feed(whole[cut:], True)
    assert out == sse(ROLE, CONTENT, CONTENT, "[DONE]")
    assert t.usage == Usage(11, 5) and (t.first_token_at, t.last_token_at) == (1.0, 2.0)


def test_a_client_that_asked_for_usage_keeps_it():
    t = SSEUsage(strip=False)
    assert t.feed(sse(CONTENT, USAGE, "[DONE]"), True) is None
    assert t.usage == Usage(11, 5)


def test_ask_for_usage_only_on_streams_that_lack_it():
    body = {"stream": True, "stream_options": {"foo": 1}}
    assert ask_for_usage(body) and body["stream_options"] == {"foo": 1, "include_usage": True}
    assert not ask_for_usage({"stream": True, "stream_options": {"include_usage": True}})
    assert not ask_for_usage({"stream": False})


def test_tenants_are_hashed_and_bounded():
    cfg = UsageConfig(max_tenants=2)
    acc = Accounting()
    t = [Accounting.tenant({"authorization": f"Bearer {i}"}, cfg) for i in range(3)]
    assert all(len(x) == 12 and "Bearer" not in x for x in t)
    assert [acc.label(x, cfg) for x in t] == [t[0], t[1], "other"]
    assert acc.label(t[0], cfg) == t[0]
    assert Accounting.tenant({}, cfg) == "none"


def test_budget_spent_then_refilled_in_the_next_window():
    now = [1000.0]
    cfg = UsageConfig(budget_tokens=100, budget_window_s=60)
    acc = Accounting(clock=lambda: now[0])
    acc.add("t", 99, cfg)
    assert acc.over_budget("t", cfg) is None
    acc.add("t", 5, cfg)
    assert acc.over_budget("t", cfg) == pytest.approx(20.0)   # the window 960-1020 ends in 20 s
    assert acc.over_budget("u", cfg) is None
    now[0] = 1021.0
    assert acc.over_budget("t", cfg) is None


def test_cost():
    assert cost(UsageConfig(prices={"big": (1.0, 4.0)}), "big", Usage(1_000_000, 500_000)) == 3.0


# ── through the pipeline ───────────────────────────────────────────────────────────────────────
def _forward(router: Router, stream: bool, auth: str = "Bearer a"):
    ex = router.new_exchange()
    router.on_request_headers(ex, {":method": "POST", ":path": "/v1/chat/completions", "authorization": auth}, False)
    body = json.dumps({"model": "big", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}).encode()
    return ex, asyncio.run(router.on_request_body(ex, body))


def test_the_pipeline_counts_tokens_and_cost_and_strips_the_chunk_it_asked_for():
    router = Router(config(prices={"big": {"prompt_per_1m": 1e6, "completion_per_1m": 2e6}}))
    ex, answer = _forward(router, stream=True)
    assert isinstance(answer, Continue)
    assert json.loads(answer.body)["stream_options"] == {"include_usage": True}
    plan = router.on_response_headers(ex, {":status": "200", "content-type": "text/event-stream"})
    assert plan.tap_body and "content-length" in plan.remove_headers
    first = router.on_response_body(ex, sse(ROLE, CONTENT), False)
    last = router.on_response_body(ex, sse(USAGE, "[DONE]"), True)
    assert first == sse(ROLE, CONTENT) and last == sse("[DONE]")
    router.on_stream_end(ex)
    # a JSON answer: read, passed through unchanged
    ex, _ = _forward(router, stream=False)
    router.on_response_headers(ex, {":status": "200", "content-type": "application/json"})
    assert router.on_response_body(ex, json.dumps({"choices": [], **USAGE}).encode(), True) is None
    scrape = generate_latest(router.metrics.registry).decode()
    tenant = Accounting.tenant({"authorization": "Bearer a"}, router.config.usage)
    assert (f'router_tokens_total{{decision="explicit",kind="prompt",model="big",tenant="{tenant}"}} 22.0'
            in scrape)
    assert f'router_cost_total{{decision="explicit",model="big",tenant="{tenant}"}} 42.0' in scrape
    assert 'router_time_to_first_token_seconds_count{model="big"} 1.0' in scrape
    assert 'router_time_per_output_token_seconds_count{model="big"} 1.0' in scrape
    assert router.live.snapshot(router.config.live, ["big"])["big"]["tokens_per_s"] > 0   # the live window's


def test_a_tenant_over_its_budget_gets_a_429_with_retry_after():
    router = Router(config(budget_tokens=20, budget_window_s=3600))
    for _ in range(2):
        ex, answer = _forward(router, stream=False)
        assert isinstance(answer, Continue)
        router.on_response_headers(ex, {":status": "200", "content-type": "application/json"})
        router.on_response_body(ex, json.dumps(USAGE).encode(), True)
    _, answer = _forward(router, stream=False)
    assert isinstance(answer, Respond) and answer.status == 429
    err = json.loads(answer.body)["error"]
    assert err["type"] == "rate_limit_error" and err["code"] == "token_budget_exceeded"
    assert 0 < int(answer.headers["retry-after"]) <= 3600
    _, answer = _forward(router, stream=False, auth="Bearer someone-else")
    assert isinstance(answer, Continue), "budgets are per tenant"
