"""Signals stage: one pass of the signal model over the reads `signals/inputs.plan` chooses, and the redaction of
the PII the policy replaces by placeholders."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..metrics import Metrics
from ..openai import APIRequest
from ..signals.inputs import plan
from .contracts import SignalSource, SignalsLike
from .exchange import Exchange
from .parse import has_text


PLAN_INLINE_CHARS = 4_000   # about 0.2 ms of planning at worst


async def read(ex: Exchange, request: APIRequest, source: SignalSource | None,
               metrics: Metrics) -> SignalsLike | None:
    # A request without text gives the guards nothing to judge: the encoder's score for an empty input is noise
    # (it read as a jailbreak).
    if source is None or not ex.config.signals.any_enabled or not has_text(request):
        return None
    t0 = time.perf_counter()
    rule = ex.config.signals.inputs
    segments = request.segments()
    # plan's paste split is linear but not free (about 4 µs a line at worst): a large request (a long conversation of
    # pasted pages) plans in a worker thread so that it cannot stall the event loop; a small one plans inline, where
    # the thread hop would cost more than the work.
    if sum(len(s.text) for s in segments) > PLAN_INLINE_CHARS:
        reads = await asyncio.to_thread(plan, segments, rule)
    else:
        reads = plan(segments, rule)
    result = await source.analyze_reads(reads, rule.max_tokens_read)
    metrics.signal_seconds.labels("all").observe(time.perf_counter() - t0)
    # The routing embedding is the latest turn's (reads[0]): the cache reuses it when its key text is that turn.
    ex.embedding = result.embedding
    ex.embedded_text = reads[0].text
    ex.reads = reads
    for e in result.pii:
        ex.pii_counts[e.type] = ex.pii_counts.get(e.type, 0) + 1
    return result


def redact(ex: Exchange, body: dict[str, Any], signals: SignalsLike | None, metrics: Metrics) -> dict[str, Any]:
    """The body with the redact-action types replaced by placeholders. Every message is scanned, also the
    turns and tool results the signal pass does not read; the model's finds (names, addresses) add values."""
    cfg = ex.config
    types = cfg.pii.redact_types
    if not types or not (cfg.signals.pii and cfg.guards.pii_enabled):
        return body
    from ..pii.redact import redact_request

    # each entity's offsets point into the text of the Read it was found in; a span across lines by line
    known = [(e.type, part) for e in (signals.pii if signals is not None else ())
             for part in ex.reads[e.read].text[e.start:e.end].split("\n")]
    new, red = redact_request(body, types, known)
    if not red.originals:
        return body
    ex.redaction = red
    for t, n in red.counts.items():
        metrics.pii_redacted.labels(t).inc(n)
    return new
