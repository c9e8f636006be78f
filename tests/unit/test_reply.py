"""Every reply the router writes itself comes from stages/reply.py: errors, blocks, cache hits, decision headers."""

from __future__ import annotations

import dataclasses
import json

from router_extproc import headers as H
from router_extproc.cache import assemble_sse
from router_extproc.decision import Decision
from router_extproc.openai import APIError, parse_chat_request
from router_extproc.stages import reply
from router_extproc.stages.exchange import Exchange
from tests.fakes import FakeHit, chat, router_config


def exchange(stream: bool = False, **decision) -> Exchange:
    ex = Exchange(config=router_config(), path="/v1/chat/completions")
    ex.request = parse_chat_request(json.dumps(chat("hi", stream=stream)).encode())
    ex.decision = Decision(model="large", auto=False, **decision)
    return ex


def test_decision_headers_name_the_model_and_only_the_signals_that_were_measured():
    h = reply.decision_headers(exchange(category="math", confidence=0.91234))
    assert h[H.MODEL] == "large" and h[H.CATEGORY] == "math" and h[H.CONFIDENCE] == "0.912"
    assert h[H.REASONING] == "off" and h[H.CACHE] == "bypass"
    assert H.COMPLEXITY not in h and H.PII not in h and H.BLOCKED not in h


def test_an_error_is_openai_shaped_and_never_claims_a_cache_state():
    r = reply.error(APIError(413, "too big", code="request_too_large"))
    assert r.status == 413 and r.headers[H.CACHE] == "bypass"
    assert json.loads(r.body)["error"]["code"] == "request_too_large"


def test_a_block_is_a_403_error_or_a_content_filter_completion_as_configured():
    d = Decision(model="large", auto=False, blocked="jailbreak")
    ex = exchange(blocked="jailbreak")
    r = reply.blocked(ex, d)
    assert r.status == 403 and json.loads(r.body)["error"]["code"] == "jailbreak_detected"
    assert r.headers[H.BLOCKED] == "jailbreak"
    ex.config = dataclasses.replace(ex.config, guards=dataclasses.replace(ex.config.guards,
                                                                         block_response="completion"))
    r = reply.blocked(ex, d)
    assert r.status == 200 and json.loads(r.body)["choices"][0]["finish_reason"] == "content_filter"


def test_a_hit_is_the_stored_answer_under_a_fresh_id_as_json_or_as_the_stream_asked_for():
    stored = {"id": "chatcmpl-old", "object": "chat.completion", "created": 1, "model": "large",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                           "finish_reason": "stop"}]}
    r = reply.hit(exchange(), False, FakeHit(stored))
    body = json.loads(r.body)
    assert r.headers[H.CACHE] == "hit" and body["id"] != "chatcmpl-old" and body["created"] > 1
    assert stored["id"] == "chatcmpl-old"   # the cache's copy is left as it was
    s = reply.hit(exchange(stream=True), True, FakeHit(stored))
    assert s.headers["content-type"] == "text/event-stream"
    assert assemble_sse(s.body)["choices"][0]["message"]["content"] == "Paris."
