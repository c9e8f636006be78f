"""Response tap: the decision headers on the upstream's answer, and its body teed into the cache stage's store
(or through the PII restorer, which puts redacted values back).

live: the answer is also recorded in live routing's state (live.py: sent, answered, done) and its usage read
(usage.py: tokens, cost, TTFT); the request's trace span ends with the stream (tracing.py). Those hooks are
optional (None: not recorded)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import headers as H
from ..live import LiveHooks
from ..tracing import Tracer
from ..usage import UsageHooks
from . import reply
from .cache import CacheStage
from .exchange import Exchange, ResponsePlan
from .record import Recorder


def response_headers(ex: Exchange, headers: Mapping[str, str], cache: CacheStage, rec: Recorder,
                     live: LiveHooks | None = None, usage: UsageHooks | None = None) -> ResponsePlan:
    status = headers.get(":status", "0")
    ex.response_status = int(status) if status.isascii() and status.isdigit() and len(status) == 3 else 0
    if ex.hop and live is not None:   # live: the fallback attempt's answer says where it came from
        ex.finished = True
        return ResponsePlan(live.hop_mark(ex), False)
    if live is not None and live.answered(ex, headers):   # live: the answer came from Envoy's last attempt
        abandon(ex, cache)   # the cache key names the chosen model, not the one that answered
    out: dict[str, str] = {}
    if ex.chat and ex.decision is not None:
        out = reply.decision_headers(ex)
        if ex.forwarded_at is not None:
            rec.metrics.upstream_ttfb_seconds.labels(ex.decision.model).observe(time.perf_counter() - ex.forwarded_at)
        rec.metrics.upstream_responses.labels(ex.decision.model, f"{ex.response_status // 100}xx").inc()
    ok = 200 <= ex.response_status < 300
    tap = bool(ex.store and ok and cache.cache is not None)
    restore = _restorer(ex, headers) if ok else None
    if not tap:
        rec.finish(ex, "forwarded" if ok else f"upstream_{ex.response_status}")
    # live: a fallback mark the router did not confirm is the upstream's, not ours: the client never sees it
    remove: tuple[str, ...] = (H.FALLBACK,) if H.FALLBACK in headers and H.FALLBACK not in out else ()
    usage_remove = usage.on_headers(ex, headers, ok) if usage is not None else None   # live: read the usage
    if usage_remove is not None:
        tap, remove = True, (*remove, *usage_remove)
    if restore is None:
        return ResponsePlan(out, tap, remove)
    ex.restorer = restore
    # the restored answer differs in length from what the upstream announced
    return ResponsePlan(out, True, ("content-length", *remove))


def _restorer(ex: Exchange, headers: Mapping[str, str]) -> Any:
    if ex.redaction is None or not ex.redaction.originals or not ex.config.pii.restore:
        return None
    from ..pii.redact import JSONRestorer, SSERestorer

    if reply.SSE in headers.get("content-type", ""):
        return SSERestorer(ex.redaction)
    return JSONRestorer(ex.redaction, ex.config.server.max_body_bytes)


def response_body(ex: Exchange, chunk: bytes, end_of_stream: bool, cache: CacheStage, rec: Recorder,
                  usage: UsageHooks | None = None, tracer: Tracer | None = None) -> bytes | None:
    """Returns the chunk to send on in place of `chunk`, or None to send it unchanged."""
    # live: the answer's usage (a stream's usage-only chunk the router asked for is stripped)
    replaced = usage.on_body(ex, chunk, end_of_stream) if usage is not None and ex.usage_tap is not None else None
    if ex.restorer is not None:
        return ex.restorer.feed(chunk, end_of_stream)
    _tee(ex, chunk, end_of_stream, cache, rec, tracer)
    return replaced


def _tee(ex: Exchange, chunk: bytes, end_of_stream: bool, cache: CacheStage, rec: Recorder,
         tracer: Tracer | None) -> None:
    if not ex.store or ex.finished:
        return
    # SSE framing is several times the size of the completion it carries; the stored completion's own
    # size limit is checked once it is assembled.
    limit = ex.config.semantic_cache.max_response_bytes * 8
    ex.response_bytes += len(chunk)
    if ex.response_bytes > limit:
        ex.store = False
        ex.response_chunks.clear()
        rec.metrics.cache_stores.labels("too_large").inc()
        rec.finish(ex, "forwarded")
        return
    ex.response_chunks.append(chunk)
    if end_of_stream:
        with (tracer or Tracer.disabled()).stage(ex.span, "store"):   # live: the store's span
            cache.store(ex, b"".join(ex.response_chunks))
        ex.response_chunks.clear()
        rec.finish(ex, "forwarded")


def stream_end(ex: Exchange, cache: CacheStage, rec: Recorder, live: LiveHooks | None = None,
               tracer: Tracer | None = None) -> None:
    """The gRPC stream closed. A leader that never stored lets its followers go upstream."""
    if ex.span is not None and tracer is not None:   # live: the request's span ends with its stream
        d = ex.decision
        tracer.end(ex.span, **{"router.model": d.model if d else None, "router.cache": ex.cache_state,
                               "router.fallback": ex.fallback or None,
                               "http.response.status_code": ex.response_status})
        ex.span = None
    if live is not None:
        live.stream_end(ex)   # live: no longer in flight; forwarded and never answered is an error
    cache.release(ex)
    if ex.chat and not ex.finished and ex.decision is not None and ex.cache_state != "hit":
        rec.finish(ex, "incomplete")


def abandon(ex: Exchange, cache: CacheStage) -> None:
    """Stop tapping this exchange's answer (it still reaches the client); followers go upstream."""
    ex.store = False
    ex.response_chunks.clear()
    cache.release(ex)
