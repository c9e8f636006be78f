"""The ext_proc gRPC server: one bidirectional stream per HTTP request.

This is the only module that knows protobuf. Each incoming ProcessingRequest is handed to the
`pipeline.Router`, and its answer is turned into the matching ProcessingResponse.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ._proto.envoy.config.core.v3 import base_pb2
from ._proto.envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from ._proto.envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from ._proto.envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from ._proto.envoy.type.v3 import http_status_pb2
from .pipeline import Router
from .stages.exchange import Continue, Exchange, Respond

log = logging.getLogger("router_extproc.server")

SERVICE_NAME = "envoy.service.ext_proc.v3.ExternalProcessor"
# Bodies arrive whole (BUFFERED) in one message: the default 4 MiB gRPC limit would cut big prompts.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_Mode = processing_mode_pb2.ProcessingMode


def header_map(headers: base_pb2.HeaderMap) -> dict[str, str]:
    # Envoy sends raw_value (bytes) by default and value on older versions: accept both.
    out: dict[str, str] = {}
    for h in headers.headers:
        value = h.raw_value.decode("utf-8", "replace") if h.raw_value else h.value
        key = h.key.lower()
        out[key] = f"{out[key]},{value}" if key in out else value
    return out


def _mutation(set_headers: Mapping[str, str], remove: tuple[str, ...] = ()) -> pb.HeaderMutation:
    return pb.HeaderMutation(
        set_headers=[
            base_pb2.HeaderValueOption(
                header=base_pb2.HeaderValue(key=k, raw_value=v.encode()),
                append_action=base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD,
            )
            for k, v in set_headers.items()
        ],
        remove_headers=list(remove),
    )


def immediate(answer: Respond) -> pb.ProcessingResponse:
    return pb.ProcessingResponse(
        immediate_response=pb.ImmediateResponse(
            status=http_status_pb2.HttpStatus(code=answer.status),
            headers=_mutation(answer.headers),
            body=answer.body,
            details=answer.details.replace(" ", "_")[:64],
        )
    )


class ExternalProcessor(pb_grpc.ExternalProcessorServicer):
    def __init__(self, router: Router) -> None:
        self.router = router

    async def Process(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[pb.ProcessingRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ProcessingResponse]:
        router = self.router
        ex = router.new_exchange()
        # live: Envoy's ext_proc span (when Envoy traces) arrives as gRPC metadata: the router's span is its child
        ex.trace_headers = trace_metadata(context)
        metrics = router.metrics
        metrics.streams_active.inc()
        phase = "request_headers"
        try:
            async for msg in request_iterator:
                phase = msg.WhichOneof("request") or "unknown"
                try:
                    response = await self._handle(ex, msg, phase)
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - every fault gets a defined answer (see _recover)
                    response = self._recover(ex, phase)
                if response is not None:
                    yield response
        except asyncio.CancelledError:
            raise
        except Exception:
            metrics.stream_errors.labels(phase).inc()
            log.exception("ext_proc stream failed", extra={"phase": phase, "request_id": ex.request_id})
            raise
        finally:
            metrics.streams_active.dec()
            try:
                router.on_stream_end(ex)
            except Exception:  # noqa: BLE001 - bookkeeping after the last answer must not fail the stream
                log.exception("stream end bookkeeping failed", extra={"request_id": ex.request_id})

    async def _handle(self, ex: Exchange, msg: pb.ProcessingRequest, phase: str) -> pb.ProcessingResponse | None:
        router = self.router
        if phase == "request_headers":
            answer = router.on_request_headers(ex, header_map(msg.request_headers.headers),
                                               msg.request_headers.end_of_stream)
            if isinstance(answer, Respond):
                return immediate(answer)
            resp = pb.ProcessingResponse(
                request_headers=pb.HeadersResponse(
                    response=pb.CommonResponse(header_mutation=_mutation(answer.set_headers, answer.remove_headers))
                )
            )
            if answer.skip_body:
                # Not a chat completion: let its body stream straight to the upstream.
                resp.mode_override.CopyFrom(_Mode(request_body_mode=_Mode.NONE, response_header_mode=_Mode.SKIP))
            return resp

        if phase == "request_body":
            if not ex.chat:
                return pb.ProcessingResponse(request_body=pb.BodyResponse(response=pb.CommonResponse()))
            answer = await router.on_request_body(ex, msg.request_body.body)
            if isinstance(answer, Respond):
                return immediate(answer)
            return self._continue_body(answer)

        if phase == "response_headers":
            plan = router.on_response_headers(ex, header_map(msg.response_headers.headers))
            resp = pb.ProcessingResponse(
                response_headers=pb.HeadersResponse(response=pb.CommonResponse(
                    header_mutation=_mutation(plan.set_headers, plan.remove_headers)))
            )
            if plan.tap_body:
                resp.mode_override.CopyFrom(_Mode(response_body_mode=_Mode.STREAMED))
            return resp

        if phase == "response_body":
            body = router.on_response_body(ex, msg.response_body.body, msg.response_body.end_of_stream)
            common = pb.CommonResponse()
            if body is not None:
                # STREAMED mode: this chunk is replaced by `body` (empty while a restorer holds text back)
                common.body_mutation.body = body
            return pb.ProcessingResponse(response_body=pb.BodyResponse(response=common))

        if phase == "request_trailers":
            return pb.ProcessingResponse(request_trailers=pb.TrailersResponse())
        if phase == "response_trailers":
            return pb.ProcessingResponse(response_trailers=pb.TrailersResponse())
        return None

    def _recover(self, ex: Exchange, phase: str) -> pb.ProcessingResponse | None:
        """The answer to a message whose handling raised. A broken stream would be Envoy's 500, or with
        failure_mode_allow an unguarded forward: request phases answer an OpenAI-shaped 500 instead, response
        phases let the upstream's answer through untouched and stop tapping it."""
        if phase in ("request_headers", "request_body"):
            return immediate(self.router.internal_error(ex, phase))
        self.router.metrics.stream_errors.labels(phase).inc()
        log.exception("response phase failed; answer passed through", extra={"phase": phase,
                                                                            "request_id": ex.request_id})
        self.router.abandon_store(ex)
        return _passthrough(phase)

    @staticmethod
    def _continue_body(answer: Continue) -> pb.ProcessingResponse:
        set_headers = dict(answer.set_headers)
        common = pb.CommonResponse(clear_route_cache=answer.clear_route_cache)
        if answer.body is not None:
            # Envoy answers 500 if content-length disagrees with the rewritten body.
            set_headers["content-length"] = str(len(answer.body))
            common.body_mutation.body = answer.body
        common.header_mutation.CopyFrom(_mutation(set_headers, answer.remove_headers))
        return pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))


def trace_metadata(context: grpc.aio.ServicerContext | None) -> dict[str, str]:
    """live: traceparent / tracestate of the ext_proc call itself (tracing.py)."""
    if context is None:
        return {}
    try:
        md = context.invocation_metadata() or ()
    except Exception:  # noqa: BLE001 - a context without metadata (tests, older grpc) traces from the HTTP headers
        return {}
    return {k: v for k, v in md if k in ("traceparent", "tracestate") and isinstance(v, str)}


def _passthrough(phase: str) -> pb.ProcessingResponse | None:
    """The do-nothing answer to a message of this phase."""
    if phase in ("request_headers", "response_headers"):
        return pb.ProcessingResponse(**{phase: pb.HeadersResponse()})
    if phase in ("request_body", "response_body"):
        return pb.ProcessingResponse(**{phase: pb.BodyResponse()})
    if phase in ("request_trailers", "response_trailers"):
        return pb.ProcessingResponse(**{phase: pb.TrailersResponse()})
    return None


def build_server(router: Router, address: str, *, max_concurrent_rpcs: int | None = None,
                 ) -> tuple[grpc.aio.Server, health.aio.HealthServicer, int]:
    server = grpc.aio.server(
        # Beyond this many open streams gRPC refuses new ones (RESOURCE_EXHAUSTED) instead of queueing them.
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
    )
    pb_grpc.add_ExternalProcessorServicer_to_server(ExternalProcessor(router), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    return server, health_servicer, port


async def set_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, status)


def install_signal_handlers(stop: asyncio.Event, reload: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, reload.set)
