"""Response tap: the decision headers on the upstream's answer, and its body teed into the cache stage's store
(or through the PII restorer, which puts redacted values back)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from . import reply
from .cache import CacheStage
from .exchange import Exchange, ResponsePlan
from .record import Recorder


def response_headers(ex: Exchange, headers: Mapping[str, str], cache: CacheStage, rec: Recorder) -> ResponsePlan:
    status = headers.get(":status", "0")
    ex.response_status = int(status) if status.isascii() and status.isdigit() and len(status) == 3 else 0
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
    if restore is None:
        return ResponsePlan(out, tap)
    ex.restorer = restore
    # the restored answer differs in length from what the upstream announced
    return ResponsePlan(out, True, ("content-length",))


def _restorer(ex: Exchange, headers: Mapping[str, str]) -> Any:
    if ex.redaction is None or not ex.redaction.originals or not ex.config.pii.restore:
        return None
    from ..pii.redact import JSONRestorer, SSERestorer

    if reply.SSE in headers.get("content-type", ""):
        return SSERestorer(ex.redaction)
    return JSONRestorer(ex.redaction, ex.config.server.max_body_bytes)


def response_body(ex: Exchange, chunk: bytes, end_of_stream: bool, cache: CacheStage,
                  rec: Recorder) -> bytes | None:
    """Returns the chunk to send on in place of `chunk`, or None to send it unchanged."""
    if ex.restorer is not None:
        return ex.restorer.feed(chunk, end_of_stream)
    if not ex.store or ex.finished:
        return None
    # SSE framing is several times the size of the completion it carries; the stored completion's own
    # size limit is checked once it is assembled.
    limit = ex.config.semantic_cache.max_response_bytes * 8
    ex.response_bytes += len(chunk)
    if ex.response_bytes > limit:
        ex.store = False
        ex.response_chunks.clear()
        rec.metrics.cache_stores.labels("too_large").inc()
        rec.finish(ex, "forwarded")
        return None
    ex.response_chunks.append(chunk)
    if end_of_stream:
        cache.store(ex, b"".join(ex.response_chunks))
        ex.response_chunks.clear()
        rec.finish(ex, "forwarded")
    return None


def stream_end(ex: Exchange, cache: CacheStage, rec: Recorder) -> None:
    """The gRPC stream closed. A leader that never stored lets its followers go upstream."""
    cache.release(ex)
    if ex.chat and not ex.finished and ex.decision is not None and ex.cache_state != "hit":
        rec.finish(ex, "incomplete")


def abandon(ex: Exchange, cache: CacheStage) -> None:
    """Stop tapping this exchange's answer (it still reaches the client); followers go upstream."""
    ex.store = False
    ex.response_chunks.clear()
    cache.release(ex)
