"""The whole request path through a real Envoy: routing, rewrites, errors, streaming, failure modes."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from .conftest import BACKBONE, chat, client

ECHO = {"x-demo-echo": "1"}


def test_an_explicit_model_reaches_its_own_upstream_with_the_served_name(http):
    r = http.post("/v1/chat/completions", json=chat("small"), headers=ECHO)
    assert r.status_code == 200, r.text
    assert r.headers["x-demo-upstream"] == "demo/small-0.6b"
    assert r.headers["x-router-model"] == "small"
    assert r.json()["demo_received"]["model"] == "demo/small-0.6b"


@pytest.mark.parametrize("auto_name", ["auto", "MoM"])
def test_auto_goes_to_the_default_model_without_signals(http, auto_name):
    r = http.post("/v1/chat/completions", json=chat(auto_name), headers=ECHO)
    assert r.status_code == 200, r.text
    assert r.headers["x-demo-upstream"] == "demo/large-8b"
    assert r.headers["x-router-model"] == "large"
    assert r.headers["x-router-cache"] == "bypass"


def test_the_rewritten_body_keeps_other_fields_and_a_matching_content_length(http):
    extra = {"temperature": 0.3, "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
             "response_format": {"type": "json_object"}, "stream_options": {"include_usage": True},
             "user": "ünïcode ✓"}
    r = http.post("/v1/chat/completions", json=chat("small", **extra), headers=ECHO)
    received = r.json()["demo_received"]
    assert received == {**chat("small", **extra), "model": "demo/small-0.6b"}
    sent_length = int(r.json()["demo_headers"]["content-length"])
    assert sent_length == len(json.dumps(received, ensure_ascii=False, separators=(",", ":")).encode())


def test_a_client_cannot_steer_routing_or_fake_router_headers(http):
    spoof = {**ECHO, "x-selected-model": "small", "x-router-cache": "hit", "x-router-model": "small"}
    r = http.post("/v1/chat/completions", json=chat("large"), headers=spoof)
    assert r.headers["x-demo-upstream"] == "demo/large-8b"
    assert r.headers["x-router-cache"] == "bypass"
    upstream_saw = r.json()["demo_headers"]
    assert upstream_saw["x-selected-model"] == "large"
    assert "x-router-cache" not in upstream_saw and "x-router-model" not in upstream_saw


@pytest.mark.parametrize(
    "content, status, code",
    [
        (b"{not json", 400, "invalid_json"),
        (json.dumps({"model": "auto"}).encode(), 400, "missing_required_parameter"),
        (json.dumps({"model": "auto", "messages": "hi"}).encode(), 400, "invalid_type"),
        (json.dumps(chat("gpt-17")).encode(), 404, "model_not_found"),
    ],
)
def test_bad_requests_get_openai_shaped_errors_from_the_router(http, stack, content, status, code):
    before = stack.upstream_requests("large") + stack.upstream_requests("small")
    r = http.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == code
    assert stack.upstream_requests("large") + stack.upstream_requests("small") == before


def test_a_body_over_the_limit_gets_413_from_the_router(http):
    big = json.dumps(chat("large", content="x" * (9 * 1024 * 1024))).encode()
    r = http.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large"


def test_a_chunked_body_over_the_limit_also_gets_413(http):
    def gen():
        yield b'{"model":"large","messages":[{"role":"user","content":"'
        for _ in range(9):
            yield b"x" * (1024 * 1024)
        yield b'"}]}'

    r = http.post("/v1/chat/completions", content=gen(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_a_5mb_prompt_is_routed(http):
    r = http.post("/v1/chat/completions", json=chat("small", content="lorem ipsum " * 440_000))
    assert r.status_code == 200, r.text[:300]
    assert r.headers["x-router-model"] == "small"


def test_a_request_without_body_is_a_400(http):
    r = http.post("/v1/chat/completions")
    assert r.status_code == 400


def test_models_are_listed_from_config(http):
    r = http.get("/v1/models")
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["small", "large", "auto", "MoM"]


def test_other_paths_are_refused_by_envoy_unless_listed_as_passthrough(http, stack):
    # (envoy.passthrough_paths: tests/integration/test_edge.py)
    before = stack.upstream_requests("large") + stack.upstream_requests("small")
    r = http.post("/v1/embeddings", json={"input": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    assert stack.upstream_requests("large") + stack.upstream_requests("small") == before


def test_sse_streams_pass_through_unchanged(http):
    with http.stream("POST", "/v1/chat/completions", json=chat("small", stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-router-model"] == "small"
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    text = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text.startswith("[demo upstream demo/small-0.6b")


def test_the_official_openai_client_works_unchanged(stack):
    openai = pytest.importorskip("openai")
    oc = openai.OpenAI(base_url=stack.url + "/v1", api_key="test-token")
    resp = oc.chat.completions.create(model="small", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content.startswith("[demo upstream demo/small-0.6b")
    stream = oc.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.startswith("[demo upstream demo/large-8b")
    with pytest.raises(openai.NotFoundError):
        oc.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])


def test_the_router_adds_little_latency_over_the_upstream(http):
    # Behaviour, not a benchmark: a trivial request completes well under Envoy's message timeout.
    t0 = time.perf_counter()
    for _ in range(20):
        assert http.post("/v1/chat/completions", json=chat("small")).status_code == 200
    assert (time.perf_counter() - t0) / 20 < 1.0


@pytest.mark.parametrize("allow, expected", [(False, 500), (True, 200)])
def test_router_down_follows_failure_mode_allow(make_stack, allow, expected):
    stack = make_stack({**BACKBONE, "envoy": {"failure_mode_allow": allow, "message_timeout_ms": 1000}})
    stack.stop_process("router")
    with client(stack, timeout=15) as c:
        r = c.post("/v1/chat/completions", json=chat("large"))
    assert r.status_code == expected
    if allow:
        # Fail open: the request reaches the default model's upstream unmodified.
        assert r.headers["x-demo-upstream"] == "demo/large-8b"
        assert "x-router-model" not in r.headers
