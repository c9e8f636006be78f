"""Tracing (tracing.py): off by default and a no-op without the SDK; with it, one trace per request — the router's
span is a child of the incoming traceparent, its stages are child spans, and the request forwarded upstream carries
a traceparent naming the router's span. Uses the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from router_extproc.config import parse_config
from router_extproc.pipeline import Router
from router_extproc.tracing import Tracer, TracingConfig

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def config(**tracing):
    return parse_config({"models": [{"name": "big", "endpoint": "127.0.0.1:9001"}],
                         "tracing": {"enabled": True, **tracing}}, source=Path("t.yaml"))


def _forward(router: Router, traceparent: str | None = PARENT, model: str = "big"):
    ex = router.new_exchange()
    headers = {":method": "POST", ":path": "/v1/chat/completions"}
    if traceparent:
        headers["traceparent"] = traceparent
    router.on_request_headers(ex, headers, False)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    answer = asyncio.run(router.on_request_body(ex, body))
    return ex, answer


def test_off_by_default_and_a_no_op():
    cfg = parse_config({"models": [{"name": "big", "endpoint": "127.0.0.1:9001"}]}, source=Path("t.yaml"))
    assert cfg.tracing == TracingConfig() and not cfg.tracing.enabled
    router = Router(cfg)
    assert not router.tracer.enabled
    ex, answer = _forward(router)
    assert ex.span is None and "traceparent" not in answer.set_headers


def test_one_trace_across_client_router_and_upstream():
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    cfg = config(sample_ratio=0.0)   # the parent's sampled flag decides (parent-based)
    router = Router(cfg, tracer=Tracer.from_config(cfg.tracing, exporter=exporter))
    ex, answer = _forward(router)
    upstream = answer.set_headers["traceparent"]
    assert upstream.startswith(f"00-{TRACE_ID}-") and int(upstream.split("-")[3], 16) & 1
    router.on_response_headers(ex, {":status": "200"})
    router.on_stream_end(ex)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"router.request", "router.signals", "router.decision", "router.cache_lookup"}
    root = spans["router.request"]
    assert format(root.context.trace_id, "032x") == TRACE_ID
    assert format(root.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert upstream.split("-")[2] == format(root.context.span_id, "016x"), "the upstream is the router span's child"
    assert all(s.parent.span_id == root.context.span_id for n, s in spans.items() if n != "router.request")
    assert root.attributes["router.model"] == "big" and root.attributes["http.response.status_code"] == 200


def test_new_traces_are_sampled_at_the_ratio():
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    cfg = config(sample_ratio=0.0)
    router = Router(cfg, tracer=Tracer.from_config(cfg.tracing, exporter=exporter))
    ex, answer = _forward(router, traceparent=None)
    router.on_stream_end(ex)
    assert exporter.get_finished_spans() == ()
    flags = int(answer.set_headers["traceparent"].split("-")[3], 16)
    assert not flags & 1, "unsampled, and says so upstream"


def test_a_request_the_router_refuses_still_ends_its_span():
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    cfg = config()
    router = Router(cfg, tracer=Tracer.from_config(cfg.tracing, exporter=exporter))
    ex, answer = _forward(router, model="no-such-model")
    assert answer.status == 404
    router.on_stream_end(ex)
    names = [s.name for s in exporter.get_finished_spans()]
    assert "router.request" in names and "router.decision" in names


def test_envoy_traces_into_the_same_trace_when_a_collector_is_named(tmp_path):
    from router_extproc.envoy_config import render, render_yaml
    from router_extproc.server import trace_metadata

    from .test_envoy_config import validate

    cfg = config(envoy_collector="127.0.0.1:4317", sample_ratio=0.01)
    boot = render(cfg)
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["tracing"]["provider"]["name"] == "envoy.tracers.opentelemetry"
    assert hcm["tracing"]["random_sampling"] == {"value": 1.0}
    assert "otel_collector" in {c["name"] for c in boot["static_resources"]["clusters"]}
    assert "tracing" not in render(config())["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]
    out = tmp_path / "envoy.yaml"
    out.write_text(render_yaml(cfg))
    validate(out)

    # Envoy's ext_proc span reaches the router as gRPC metadata of the call
    class Ctx:
        def invocation_metadata(self):
            return (("traceparent", PARENT), ("x-other", "1"), ("grpc-bin", b"\x00"))
    assert trace_metadata(Ctx()) == {"traceparent": PARENT}
    assert trace_metadata(None) == {}


def test_the_ext_proc_calls_traceparent_wins_over_the_clients():
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    cfg = config()
    router = Router(cfg, tracer=Tracer.from_config(cfg.tracing, exporter=exporter))
    ex = router.new_exchange()
    envoy_trace = "0af7651916cd43dd8448eb211c80319c"
    ex.trace_headers = {"traceparent": f"00-{envoy_trace}-b7ad6b7169203331-01"}
    router.on_request_headers(ex, {":method": "POST", ":path": "/v1/chat/completions", "traceparent": PARENT}, False)
    body = json.dumps({"model": "big", "messages": [{"role": "user", "content": "hi"}]}).encode()
    answer = asyncio.run(router.on_request_body(ex, body))
    router.on_stream_end(ex)
    assert answer.set_headers["traceparent"].split("-")[1] == envoy_trace
    root = next(s for s in exporter.get_finished_spans() if s.name == "router.request")
    assert format(root.parent.span_id, "016x") == "b7ad6b7169203331"
