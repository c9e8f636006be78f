"""OpenTelemetry tracing of the router's work on a request (issue #25). Optional: with the `otlp` extra
(opentelemetry-sdk + the OTLP exporter) and `tracing.enabled`; otherwise every call here is a no-op.

One trace per request, W3C `traceparent` propagation: the router's span `router.request` is a child of the
`traceparent` the request arrived with (the client's, or Envoy's when Envoy traces), its stages are child spans
(`router.signals`, `router.decision`, `router.cache_lookup`, `router.store`), and the request forwarded upstream
carries a `traceparent` naming the router's span, so the upstream's own spans join the same trace.

Sampling: parent-based, else `tracing.sample_ratio` of new traces (default 1 %). An unsampled request gets
non-recording spans (no attributes, no export) and its traceparent passed on unchanged in meaning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config_reader import Reader

log = logging.getLogger("router_extproc.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"


@dataclass(frozen=True, slots=True)
class TracingConfig:
    enabled: bool = False
    sample_ratio: float = 0.01
    otlp_endpoint: str = ""          # e.g. http://otel-collector:4318/v1/traces; empty: no exporter (tests add one)
    service_name: str = "router-extproc"
    # host:port of an OTLP/gRPC collector for Envoy's own spans (envoy-config renders its tracer); empty: Envoy does
    # not trace, and the router's span is a child of the client's traceparent
    envoy_collector: str = ""


def parse(root: Reader) -> TracingConfig:
    r = root.section("tracing")
    d = TracingConfig()
    out = TracingConfig(enabled=r.bool("enabled", d.enabled), sample_ratio=r.float("sample_ratio", d.sample_ratio,
                                                                                     lo=0, hi=1),
                        otlp_endpoint=r.str("otlp_endpoint", d.otlp_endpoint),
                        service_name=r.str("service_name", d.service_name),
                        envoy_collector=r.str("envoy_collector", d.envoy_collector))
    if out.envoy_collector:
        host, sep, port = out.envoy_collector.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise r.error(r.key("envoy_collector"), f"must be host:port, got {out.envoy_collector!r}")
    r.check_unknown()
    return out


class _Stage:
    __slots__ = ("span",)

    def __init__(self, span: Any) -> None:
        self.span = span

    def __enter__(self) -> Any:
        return self.span

    def __exit__(self, typ: Any, value: Any, tb: Any) -> bool:
        if self.span is not None:
            if value is not None:
                self.span.set_attribute("error.type", type(value).__name__)
            self.span.end()
        return False


_NOOP = _Stage(None)


class Tracer:
    """The router's tracer; `Tracer.disabled()` (and a missing SDK) gives one whose calls do nothing."""

    def __init__(self, tracer: Any = None, provider: Any = None) -> None:
        self._tracer = tracer
        self.provider = provider

    @classmethod
    def disabled(cls) -> Tracer:
        return cls()

    @classmethod
    def from_config(cls, cfg: TracingConfig, exporter: Any = None) -> Tracer:
        """`exporter`: a span exporter to use instead of OTLP (the tests' in-memory one)."""
        if not cfg.enabled:
            return cls.disabled()
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
            from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        except ImportError:
            log.warning("tracing.enabled but opentelemetry-sdk is not installed (pip install 'router-extproc[otlp]'); "
                        "tracing off")
            return cls.disabled()
        provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)),
                                  resource=Resource.create({"service.name": cfg.service_name}))
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif cfg.otlp_endpoint:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                log.warning("tracing.otlp_endpoint set but opentelemetry-exporter-otlp-proto-http is not installed")
            else:
                # batches leave on the SDK's own thread: never on the event loop
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=cfg.otlp_endpoint)))
        # the router's own provider, not the global one: no global mutable state
        return cls(provider.get_tracer("router_extproc"), provider)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def start(self, headers: Mapping[str, str], path: str) -> Any:
        """The request's span (a child of its traceparent), or None when tracing is off."""
        if self._tracer is None:
            return None
        from opentelemetry.trace import SpanKind
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier = {k: headers[k] for k in (TRACEPARENT, TRACESTATE) if k in headers}
        ctx = TraceContextTextMapPropagator().extract(carrier)
        span = self._tracer.start_span("router.request", context=ctx, kind=SpanKind.SERVER)
        if span.is_recording():
            span.set_attribute("http.route", path)
        return span

    def stage(self, parent: Any, name: str) -> _Stage:
        """A child span of the request's span for one stage (`with tracer.stage(ex.span, "signals"):`); a no-op
        without one. A class, not a generator: contextlib would set __traceback__ on the router's frozen APIError."""
        if parent is None or self._tracer is None or not parent.get_span_context().trace_flags.sampled:
            return _NOOP
        from opentelemetry import trace

        return _Stage(self._tracer.start_span(f"router.{name}", context=trace.set_span_in_context(parent)))

    @staticmethod
    def inject(span: Any) -> dict[str, str]:
        """The traceparent (and tracestate) headers naming `span`, for the request forwarded upstream."""
        if span is None:
            return {}
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(span))
        return carrier

    @staticmethod
    def end(span: Any, **attributes: Any) -> None:
        if span is None:
            return
        if span.is_recording():
            for k, v in attributes.items():
                if v is not None:
                    span.set_attribute(k, v)
        span.end()

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()
