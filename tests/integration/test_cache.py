"""The semantic cache through a real Envoy, with the embedded Milvus Lite store: what is served from the
cache, and what never is."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from .conftest import ROOT, client, needs_models

pytestmark = needs_models

TENANT_A = {"authorization": "Bearer tenant-a"}
TENANT_B = {"authorization": "Bearer tenant-b"}


def cache_config(**cache) -> dict:
    data = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    data["signals"]["jailbreak"] = False    # the guards have their own tests; keep these about caching
    data["semantic_cache"].update(cache)
    return data


@pytest.fixture(scope="module")
def stack(make_stack):
    return make_stack(cache_config(ttl_seconds=3600))


def ask(http, text, headers=TENANT_A, **extra):
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "temperature": 0.7, **extra}
    return http.post("/v1/chat/completions", json=body, headers=headers)


def upstream_calls(stack) -> int:
    return sum(stack.upstream_requests(m.name) for m in stack.config.models)


def unique(text: str) -> str:
    # Each test asks its own question, so tests stay independent on one shared cache. (Random suffixes
    # would look like identifiers to the PII model.)
    return text


def settle():
    time.sleep(0.4)  # stores leave the request path and are written by a background task


def test_the_seed_flow_second_identical_request_is_a_hit_and_the_upstream_is_called_once(http, stack):
    q = "What is the best way to learn Python programming from scratch?"
    before = upstream_calls(stack)
    first = ask(http, q)
    assert first.status_code == 200 and first.headers["x-router-cache"] == "miss"
    settle()
    second = ask(http, q)
    assert second.status_code == 200 and second.headers["x-router-cache"] == "hit"
    assert upstream_calls(stack) == before + 1
    a, b = first.json(), second.json()
    assert b["choices"][0]["message"] == a["choices"][0]["message"]
    assert b["id"] != a["id"], "a hit gets a fresh completion id"
    assert second.headers["x-router-model"] == first.headers["x-router-model"]


def test_a_paraphrase_is_a_hit(http):
    assert ask(http, "How do I learn to play the guitar?").headers["x-router-cache"] == "miss"
    settle()
    r = ask(http, "How can I learn to play guitar?")
    assert r.headers["x-router-cache"] == "hit"


@pytest.mark.parametrize("stored, asked", [
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How do I sort a list in Python?", "How do I sort a list in Java?"),
    ("Is coffee good for your health?", "Is coffee not good for your health?"),
])
def test_near_misses_and_negations_are_refused(http, stored, asked):
    ask(http, stored)
    settle()
    assert ask(http, asked).headers["x-router-cache"] == "miss"


def test_one_tenant_is_never_served_another_tenants_entry(http):
    q = unique("Summarize the plot of Hamlet in two sentences")
    ask(http, q, TENANT_A)
    settle()
    assert ask(http, q, TENANT_B).headers["x-router-cache"] == "miss"
    assert ask(http, q, {}).headers["x-router-cache"] == "bypass"   # anonymous: not cached at all by default
    assert ask(http, q, TENANT_A).headers["x-router-cache"] == "hit"


def test_a_different_model_never_shares_an_entry(http):
    q = unique("Name three rivers in Europe")
    body = lambda model: {"model": model, "messages": [{"role": "user", "content": q}], "temperature": 0}
    http.post("/v1/chat/completions", json=body("qwen3-0.6b"), headers=TENANT_A)
    settle()
    r = http.post("/v1/chat/completions", json=body("qwen3-8b"), headers=TENANT_A)
    assert r.headers["x-router-cache"] == "miss"


def sse_text(r) -> tuple[str, list[dict]]:
    events = [e for e in r.text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks), chunks


def test_a_cached_plain_answer_is_replayed_as_a_valid_stream(http):
    q = unique("List the planets of the solar system")
    plain = ask(http, q)
    settle()
    r = ask(http, q, stream=True)
    assert r.headers["x-router-cache"] == "hit"
    assert r.headers["content-type"].startswith("text/event-stream")
    text, _ = sse_text(r)
    assert text == plain.json()["choices"][0]["message"]["content"]


def test_a_streamed_answer_is_cached_once_complete_and_replayed_both_ways(http, stack):
    q = unique("Explain what a hash table is")
    first = ask(http, q, stream=True)
    assert first.headers["x-router-cache"] == "miss"
    streamed_text, _ = sse_text(first)
    settle()
    again = ask(http, q, stream=True)
    assert again.headers["x-router-cache"] == "hit"
    assert sse_text(again)[0] == streamed_text
    plain = ask(http, q)
    assert plain.headers["x-router-cache"] == "hit"
    assert plain.json()["choices"][0]["message"]["content"] == streamed_text


def test_cache_control_no_cache_skips_lookup_and_no_store_skips_storing(http):
    q = unique("What is the tallest building in the world")
    ask(http, q)
    settle()
    r = ask(http, q, {**TENANT_A, "cache-control": "no-cache"})
    assert r.headers["x-router-cache"] == "bypass"
    q2 = unique("What is the longest river in Africa")
    ask(http, q2, {**TENANT_A, "cache-control": "no-store"})
    settle()
    assert ask(http, q2).headers["x-router-cache"] == "miss"


def test_error_responses_are_not_cached(http):
    q = unique("Describe the water cycle")
    r = ask(http, q, {**TENANT_A, "x-demo-status": "500"})
    assert r.status_code == 500
    settle()
    assert ask(http, q).headers["x-router-cache"] == "miss"


def test_a_truncated_stream_is_not_cached(http):
    q = unique("Tell me about the Roman Empire")
    with http.stream("POST", "/v1/chat/completions", headers={**TENANT_A, "x-demo-drop": "1",
                                                               "x-demo-chunk-delay-ms": "20"},
                     json={"model": "auto", "messages": [{"role": "user", "content": q}], "stream": True}) as r:
        try:
            r.read()
        except Exception:
            pass
    settle()
    assert ask(http, q, stream=True).headers["x-router-cache"] == "miss"


def test_prompts_with_pii_are_never_cached(http):
    q = unique("Please email the meeting notes to jane.doe@example.com")
    first = ask(http, q)
    assert "EMAIL_ADDRESS" in first.headers.get("x-router-pii", "")
    settle()
    assert ask(http, q).headers["x-router-cache"] != "hit"


def test_a_temperature_above_the_limit_is_not_cached(http):
    q = unique("Write a haiku about autumn")
    assert ask(http, q, temperature=1.8).headers["x-router-cache"] == "bypass"


def test_the_cache_survives_a_router_restart(http, stack):
    q = unique("What is the chemical formula of table salt")
    ask(http, q)
    settle()
    stack.stop_process("router")
    stack.start_router()
    time.sleep(0.5)
    assert ask(http, q).headers["x-router-cache"] == "hit"


def test_entries_expire_after_their_ttl(make_stack):
    stack = make_stack(cache_config(ttl_seconds=2))
    with client(stack) as http:
        q = unique("What is the speed of sound in air")
        ask(http, q)
        settle()
        assert ask(http, q).headers["x-router-cache"] == "hit"
        time.sleep(2.5)
        assert ask(http, q).headers["x-router-cache"] == "miss"


def test_audited_semantic_hits_ask_the_upstream_again_and_export_an_estimate(make_stack):
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    stack = make_stack(cache_config(ttl_seconds=3600, audit_share=1.0))
    with client(stack) as c:
        assert ask(c, "What is a leap year?").headers["x-router-cache"] == "miss"
        settle()
        calls = upstream_calls(stack)
        assert ask(c, "Define leap year").headers["x-router-cache"] == "hit"       # semantic: audited
        assert ask(c, "What is a leap year?").headers["x-router-cache"] == "hit"   # exact: never audited
        deadline = time.time() + 10
        while upstream_calls(stack) < calls + 1 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.3)
        assert upstream_calls(stack) == calls + 1  # the audit's call, off the client's path
        with urllib.request.urlopen(stack.metrics_url + "/metrics", timeout=5) as r:
            samples = [s for fam in text_string_to_metric_families(r.read().decode()) for s in fam.samples
                       if s.name.startswith("router_cache_audit")]
        assert any(s.name == "router_cache_audit_total" and s.value == 1 for s in samples)
        assert any(s.name == "router_cache_audit_false_hit_ratio" for s in samples)
