"""Request validation answers every bad body with a precise OpenAI-style 400, never an exception."""

from __future__ import annotations

import json

import pytest

from router_extproc.openai import APIError, Segment, parse_chat_request


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


def test_segments_name_every_role_and_keep_the_order_of_turns():
    req = parse_chat_request(body(messages=[
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "an old answer"},
        {"role": "function", "name": "f", "content": "function output"},
        {"role": "user", "content": "second"},
    ]))
    assert req.segments() == (
        Segment("system", "You are terse.", 0), Segment("developer", "Use metric units.", 1),
        Segment("user", "first", 2), Segment("assistant", "an old answer", 3),
        Segment("function", "function output", 4), Segment("user", "second", 5),
    )
    assert req.last_user_text() == "second"


def test_every_text_part_type_is_read_and_media_parts_add_no_text():
    req = parse_chat_request(body(messages=[{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "input_text", "text": "b"}, "c",
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "text", "text": 5}, {"type": "text"},
    ]}]))
    assert req.segments() == (Segment("user", "a\nb\nc", 0),)


def test_an_image_only_turn_and_an_empty_turn_give_no_segment():
    req = parse_chat_request(body(messages=[
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]},
        {"role": "user", "content": ""},
    ]))
    assert req.segments() == ()


def test_tool_calls_tool_results_tool_specs_and_documents_are_segments():
    req = parse_chat_request(body(
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "1", "type": "function", "function": {"name": "w", "arguments": '{"city": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "1", "content": [{"type": "text", "text": "sunny"}]},
            {"role": "assistant", "content": None, "function_call": {"name": "w", "arguments": '{"city": "Rome"}'}},
        ],
        tools=[{"type": "function", "function": {
            "name": "w", "description": "Current weather.",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "description": "City name."},
                "description": {"type": "object", "properties": {"lang": {"description": "Language."}}}}}}}],
        documents=["plain text doc", {"title": "Guide", "text": "Body."}, {"data": {"snippet": "Cohere style"}}, 7],
    ))
    assert req.segments() == (
        Segment("user", "weather?", 0),
        Segment("assistant", '{"city": "Paris"}', 1),
        Segment("tool", "sunny", 2),
        Segment("assistant", '{"city": "Rome"}', 3),
        Segment("tool_spec", "Current weather.\nCity name.\nLanguage.", -1),
        Segment("document", "plain text doc", -1),
        Segment("document", "Guide\nBody.", -1),
        Segment("document", "Cohere style", -1),
    )


def test_malformed_optional_fields_never_crash_segments():
    req = parse_chat_request(body(
        messages=[{"role": "assistant", "content": "x", "tool_calls": [5, {"function": "f"}, {"function": {}}],
                   "function_call": "nope"}],
        tools=[5, {"type": "function"}, {"function": {"description": 3}}], documents={"not": "a list"},
    ))
    assert req.segments() == (Segment("assistant", "x", 0),)
