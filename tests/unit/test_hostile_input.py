"""Hostile input never crashes the ext_proc server: every message gets a valid ProcessingResponse of
the matching kind, and bad bodies get the router's own OpenAI-shaped errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router_extproc._proto.envoy.config.core.v3 import base_pb2
from router_extproc._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from router_extproc.config import parse_config
from router_extproc.pipeline import Router
from router_extproc.server import ExternalProcessor

CONFIG = parse_config({
    "models": [{"name": "small", "endpoint": "127.0.0.1:9001"}, {"name": "large", "endpoint": "127.0.0.1:9002"}],
    "default_model": "large",
    "server": {"max_body_bytes": 64 * 1024},
    "signals": {"category": False, "complexity": False, "jailbreak": False, "pii": False},
    "semantic_cache": {"enabled": False},
}, source=Path("test.yaml"))

EXPECTED = {
    "request_headers": {"request_headers", "immediate_response"},
    "request_body": {"request_body", "immediate_response"},
    "response_headers": {"response_headers"},
    "response_body": {"response_body"},
    "request_trailers": {"request_trailers"},
    "response_trailers": {"response_trailers"},
}


def run_stream(messages: list[pb.ProcessingRequest]) -> list[pb.ProcessingResponse]:
    processor = ExternalProcessor(Router(CONFIG))

    async def requests():
        for m in messages:
            yield m

    async def go():
        return [r async for r in processor.Process(requests(), None)]

    return asyncio.run(go())


def headers_msg(pairs, eos=False) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(request_headers=pb.HttpHeaders(
        headers=base_pb2.HeaderMap(headers=[base_pb2.HeaderValue(key=k, raw_value=v) for k, v in pairs]),
        end_of_stream=eos))


def chat_headers(length: int | None = None) -> pb.ProcessingRequest:
    pairs = [(":method", b"POST"), (":path", b"/v1/chat/completions"), ("content-type", b"application/json")]
    if length is not None:
        pairs.append(("content-length", str(length).encode()))
    return headers_msg(pairs)


def body_msg(body: bytes) -> pb.ProcessingRequest:
    return pb.ProcessingRequest(request_body=pb.HttpBody(body=body, end_of_stream=True))


def check(messages, responses):
    # An immediate response ends the exchange; before that, one matching response per message.
    for msg, resp in zip(messages, responses):
        kind = resp.WhichOneof("response")
        assert kind in EXPECTED[msg.WhichOneof("request")], (msg.WhichOneof("request"), kind)
        if kind == "immediate_response":
            status = resp.immediate_response.status.code
            assert 400 <= status < 600 or status == 200
            if status != 200:
                err = json.loads(resp.immediate_response.body)["error"]
                assert isinstance(err["message"], str) and err["type"]


header_pairs = st.lists(st.tuples(
    st.one_of(st.sampled_from([":method", ":path", "content-length", "authorization", "x-selected-model",
                               "x-router-cache", "cache-control"]), st.text(min_size=1, max_size=20)),
    st.binary(max_size=60)), max_size=8)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20)

chat_like = st.fixed_dictionaries({}, optional={
    "model": st.one_of(st.sampled_from(["auto", "small", "large", "nope", ""]), json_values),
    "messages": st.one_of(json_values, st.lists(st.fixed_dictionaries({}, optional={
        "role": st.one_of(st.sampled_from(["user", "system", "assistant", "tool"]), json_values),
        "content": json_values}), max_size=3)),
    "stream": json_values, "temperature": json_values, "n": json_values, "tools": json_values,
})

bodies = st.one_of(
    st.binary(max_size=300),
    chat_like.map(lambda d: json.dumps(d).encode()),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header_pairs, bodies)
def test_random_headers_and_bodies_never_crash_the_server(pairs, body):
    messages = [headers_msg(pairs), body_msg(body)]
    check(messages, run_stream(messages))


@settings(max_examples=150, deadline=None)
@given(bodies)
def test_random_chat_bodies_get_a_decision_or_an_openai_error(body):
    messages = [chat_headers(), body_msg(body)]
    responses = run_stream(messages)
    check(messages, responses)
    assert len(responses) == 2


phases = st.sampled_from(list(EXPECTED))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(phases, st.binary(max_size=100)), min_size=1, max_size=6))
def test_messages_in_any_order_get_a_matching_answer(seq):
    messages = []
    for phase, data in seq:
        if phase.endswith("headers"):
            messages.append(pb.ProcessingRequest(**{phase: pb.HttpHeaders(headers=base_pb2.HeaderMap(
                headers=[base_pb2.HeaderValue(key=":status", raw_value=b"200")]))}))
        elif phase.endswith("body"):
            messages.append(pb.ProcessingRequest(**{phase: pb.HttpBody(body=data, end_of_stream=True)}))
        else:
            messages.append(pb.ProcessingRequest(**{phase: pb.HttpTrailers()}))
    check(messages, run_stream(messages))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_mutated_wire_bytes_that_parse_are_handled(data):
    valid = chat_headers().SerializeToString()
    mutated = bytes(a ^ b for a, b in zip(valid, data)) + valid[len(data):]
    try:
        msg = pb.ProcessingRequest.FromString(mutated)
    except Exception:
        return  # gRPC's deserializer rejects these before our code runs
    if msg.WhichOneof("request") is None:
        return
    check([msg], run_stream([msg]))


def test_a_body_over_the_limit_is_413_from_the_router():
    big = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "x" * 70000}]}).encode()
    for messages in ([chat_headers(len(big))], [chat_headers(), body_msg(big)]):
        responses = run_stream(messages)
        final = responses[-1]
        assert final.immediate_response.status.code == 413
        assert json.loads(final.immediate_response.body)["error"]["code"] == "request_too_large"


def test_client_routing_headers_are_removed():
    msg = headers_msg([(":method", b"POST"), (":path", b"/v1/chat/completions"), ("x-selected-model", b"small"),
                       ("x-router-cache", b"hit"), ("x-router-model", b"small")])
    (resp,) = run_stream([msg])
    assert sorted(resp.request_headers.response.header_mutation.remove_headers) == [
        "x-router-cache", "x-router-model", "x-selected-model"]
