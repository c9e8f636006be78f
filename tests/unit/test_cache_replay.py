"""Cached answers replay as plain completions or as valid SSE streams, whichever way they were produced."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from router_extproc.cache.replay import assemble_sse, refresh, render_sse


def completion(content="Paris is the capital of France.", finish="stop", **msg):
    return {"id": "chatcmpl-orig", "object": "chat.completion", "created": 100, "model": "m1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **msg},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}


def chunks(sse: bytes):
    events = [e for e in sse.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    return [json.loads(e[6:]) for e in events[:-1]]


def test_a_plain_completion_replays_as_role_content_finish_and_done():
    cs = chunks(render_sse(completion(), chunk_chars=8))
    assert cs[0]["choices"][0]["delta"]["role"] == "assistant"
    assert cs[-1]["choices"][0]["finish_reason"] == "stop" and cs[-1]["choices"][0]["delta"] == {}
    assert len(cs) > 3 and all(c["object"] == "chat.completion.chunk" for c in cs)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in cs)
    assert text == "Paris is the capital of France."


def test_replayed_streams_have_a_fresh_id_shared_by_all_chunks():
    cs = chunks(render_sse(completion()))
    assert len({c["id"] for c in cs}) == 1 and cs[0]["id"] != "chatcmpl-orig"


def test_a_stream_round_trips_to_the_same_answer():
    back = assemble_sse(render_sse(completion(), include_usage=True))
    assert back["choices"][0]["message"] == {"role": "assistant", "content": "Paris is the capital of France."}
    assert back["choices"][0]["finish_reason"] == "stop" and back["usage"]["total_tokens"] == 12
    assert back["object"] == "chat.completion"


def test_tool_calls_survive_a_stream_round_trip():
    tc = [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    back = assemble_sse(render_sse(completion(content=None, finish="tool_calls", tool_calls=tc)))
    assert back["choices"][0]["message"]["tool_calls"] == tc
    assert back["choices"][0]["finish_reason"] == "tool_calls"


def upstream_stream(parts, done=True, finish="stop"):
    out = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}]
    out += [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]} for p in parts]
    if finish:
        out.append({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in out)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def test_an_upstream_stream_is_assembled_into_a_completion():
    c = assemble_sse(upstream_stream(["Hel", "lo", " world"]))
    assert c["choices"][0]["message"]["content"] == "Hello world" and c["model"] == "m"


def test_a_stream_without_done_is_incomplete():
    assert assemble_sse(upstream_stream(["Hi"], done=False)) is None


def test_a_stream_without_a_finish_reason_is_incomplete():
    assert assemble_sse(upstream_stream(["Hi"], finish=None)) is None


def test_a_stream_with_an_error_event_is_not_cached():
    body = b'data: {"error": {"message": "overloaded"}}\n\ndata: [DONE]\n\n'
    assert assemble_sse(body) is None


def test_garbage_is_not_a_completion():
    assert assemble_sse(b"data: {not json\n\ndata: [DONE]\n\n") is None
    assert assemble_sse(b"") is None


def test_crlf_framing_is_accepted():
    assert assemble_sse(upstream_stream(["Hi"]).replace(b"\n", b"\r\n"))["choices"][0]["message"]["content"] == "Hi"


def test_refresh_gives_a_fresh_id_and_created_without_touching_the_original():
    c = completion()
    r = refresh(c)
    assert r["id"] != c["id"] and r["created"] >= c["created"] and c["id"] == "chatcmpl-orig"
    assert r["choices"] == c["choices"]


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=400), st.integers(min_value=1, max_value=50))
def test_any_text_replays_losslessly(text, size):
    back = assemble_sse(render_sse(completion(content=text), chunk_chars=size))
    assert back["choices"][0]["message"]["content"] == text


# ── a hostile upstream: any chunk of another shape makes the stream unstorable, never an exception ─────

def stream(*chunks) -> bytes:
    return b"".join(b"data: " + (c if isinstance(c, bytes) else json.dumps(c).encode()) + b"\n\n"
                    for c in chunks) + b"data: [DONE]\n\n"


GOOD = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]}
END = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
BAD_CHUNKS = [
    {"choices": "oops"}, {"choices": [1, 2]}, {"choices": [None]}, {"choices": {"0": {}}},
    {"choices": [{"index": "0", "delta": {"content": "x"}}]}, {"choices": [{"index": 1.5, "delta": {}}]},
    {"choices": [{"index": 0, "delta": "text"}]}, {"choices": [{"index": 0, "delta": {"content": ["x"]}}]},
    {"choices": [{"index": 0, "delta": {"role": 7}}]}, {"choices": [{"index": 0, "finish_reason": 3}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": {"a": 1}}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": ["x"]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": {}}}]}}]},
    b'{"created":' + b"9" * 5000 + b',"choices":[]}',
    b"[" * 100000 + b"]" * 100000,
]


def test_every_malformed_chunk_makes_the_stream_unstorable():
    assert assemble_sse(stream(GOOD, END)) is not None
    for bad in BAD_CHUNKS:
        assert assemble_sse(stream(GOOD, bad, END)) is None, bad


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=15)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(json_values, st.fixed_dictionaries({"choices": st.lists(st.fixed_dictionaries(
    {}, optional={"index": json_values, "delta": st.one_of(json_values, st.fixed_dictionaries(
        {}, optional={"content": json_values, "role": json_values, "tool_calls": json_values})),
        "finish_reason": json_values}), max_size=3)})), max_size=5))
def test_any_stream_assembles_or_is_refused_never_raises(events):
    out = assemble_sse(stream(*events))
    assert out is None or out["object"] == "chat.completion"
