"""Request validation answers every bad body with a precise OpenAI-style 400, never an exception."""

from __future__ import annotations

import json

import pytest

from router_extproc.openai import APIError, parse_chat_request


def body(**kw):
    base = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    base.update(kw)
    return json.dumps(base).encode()


def test_a_valid_request_keeps_every_field():
    req = parse_chat_request(body(tools=[{"type": "function"}], stream=True, temperature=0.2, x_custom=1))
    assert req.model == "auto" and req.stream
    assert req.body["tools"] == [{"type": "function"}] and req.body["x_custom"] == 1
    assert req.temperature == 0.2


def test_missing_temperature_means_the_openai_default_of_one():
    assert parse_chat_request(body()).temperature == 1.0


@pytest.mark.parametrize(
    "raw, code, needle",
    [
        (b"{bad", "invalid_json", "not valid JSON"),
        (b"\xff\xfe", "invalid_json", "UTF-8"),
        (b"[1,2]", "invalid_json", "JSON object"),
        (b"[" * 100000 + b"]" * 100000, "invalid_json", "nested"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "missing_required_parameter", "'model'"),
        (body(model=7), "invalid_type", "'model'"),
        (json.dumps({"model": "auto"}).encode(), "missing_required_parameter", "'messages'"),
        (body(messages="hello"), "invalid_type", "'messages'"),
        (body(messages=[]), "invalid_type", "'messages'"),
        (body(messages=[{"role": "wizard", "content": "x"}]), "invalid_value", "role"),
        (body(messages=[{"role": "user", "content": 5}]), "invalid_type", "content"),
        (body(messages=[{"role": "user"}]), "missing_required_parameter", "content"),
        (body(stream="yes"), "invalid_type", "'stream'"),
        (body(temperature="hot"), "invalid_type", "'temperature'"),
        (body(temperature=3), "invalid_value", "'temperature'"),
        (body(n=0), "invalid_value", "'n'"),
        (body(max_tokens=1.5), "invalid_type", "'max_tokens'"),
        (body(tools={"a": 1}), "invalid_type", "'tools'"),
    ],
)
def test_bad_bodies_get_a_400_that_says_what_is_wrong(raw, code, needle):
    with pytest.raises(APIError) as info:
        parse_chat_request(raw)
    err = info.value
    assert err.status == 400 and err.code == code and needle in err.message
    shape = json.loads(err.body())["error"]
    assert set(shape) == {"message", "type", "param", "code"}


def test_prompt_text_reads_system_and_user_turns_not_assistant_turns():
    req = parse_chat_request(body(messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "first"}, {"type": "image_url", "image_url": {}}]},
        {"role": "assistant", "content": "an old answer"},
        {"role": "user", "content": "second"},
    ]))
    assert req.prompt_text() == "You are terse.\nfirst\nsecond"
    assert req.last_user_text() == "second"

