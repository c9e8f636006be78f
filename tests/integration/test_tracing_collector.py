"""One trace across Envoy, the router and the upstream call, seen by an in-process OTLP collector (issue #25): Envoy
exports its spans over OTLP/gRPC (`tracing.envoy_collector`), the router over OTLP/HTTP (`tracing.otlp_endpoint`);
the test's collector receives both and the upstream reports the traceparent it got."""

from __future__ import annotations

import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from router_extproc.dev.stack import free_port

from .conftest import client
from .test_live import _config, chat

pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc  # noqa: E402


class Collector:
    """Spans as (service, name, trace id hex, span id hex, parent span id hex) from both transports."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str, str, str]] = []
        self.lock = threading.Lock()

    def add(self, req: trace_service_pb2.ExportTraceServiceRequest) -> None:
        with self.lock:
            for rs in req.resource_spans:
                service = next((a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "")
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        self.spans.append((service, s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex()))


@pytest.fixture(scope="module")
def collector():
    col = Collector()

    class Grpc(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802 - gRPC method name
            col.add(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Grpc(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    class Http(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            col.add(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

        def log_message(self, *args):
            pass

    http_port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", http_port), Http)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    col.grpc_port, col.http_port = grpc_port, http_port
    yield col
    httpd.shutdown()
    server.stop(0)


def test_envoy_router_and_upstream_in_one_trace(make_stack, collector):
    cfg = _config()
    cfg["tracing"] = {"enabled": True, "sample_ratio": 1.0,
                      "otlp_endpoint": f"http://127.0.0.1:{collector.http_port}/v1/traces",
                      "envoy_collector": f"127.0.0.1:{collector.grpc_port}"}
    # the SDK's batch processor exports every 5 s by default
    stack = make_stack(cfg, env={"OTEL_BSP_SCHEDULE_DELAY": "200"})
    trace_id = "6bf92f3577b34da6a3ce929d0e0e4736"
    with client(stack) as c:
        r = c.post("/v1/chat/completions", json=chat("auto", "one trace please"),
                   headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "x-demo-echo": "1"})
    assert r.status_code == 200
    upstream_parent = r.json()["demo_headers"]["traceparent"].split("-")
    assert upstream_parent[1] == trace_id

    def both() -> bool:
        services = {s[0] for s in collector.spans if s[2] == trace_id}
        return {"envoy", "router-extproc"} <= services
    deadline = time.monotonic() + 15   # Envoy's tracer flushes every 5 s
    while not both() and time.monotonic() < deadline:
        time.sleep(0.2)
    spans = [s for s in collector.spans if s[2] == trace_id]
    assert both(), collector.spans
    names = {s[1] for s in spans}
    assert {"router.request", "router.decision"} <= names, names
    ids = {s[3] for s in spans}
    # the upstream's parent is a span of this trace (Envoy's upstream span, or the router's)
    assert upstream_parent[2] in ids, (upstream_parent, spans)
    router_root = next(s for s in spans if s[1] == "router.request")
    print(f"\n[trace] {len(spans)} spans in one trace: {sorted(names)}; router.request's parent "
          f"{'is an Envoy span' if router_root[4] in ids else 'is the client span'}")
