"""Metrics and the decision log of one exchange. Logging never changes the exchange; `finish` is the one
call here that does (it counts the request once, with its outcome)."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..decision import Decision
from ..metrics import Metrics
from ..openai import APIError
from .exchange import Exchange

log = logging.getLogger("router_extproc.decision")


class Recorder:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def finish(self, ex: Exchange, outcome: str) -> None:
        if ex.finished:
            return
        ex.finished = True
        d = ex.decision
        if d is None:
            return
        kind = "blocked" if d.blocked else ("auto" if d.auto else "explicit")
        self.metrics.requests.labels(kind, d.model, d.category or "none", outcome).inc()

    def rejected(self, ex: Exchange, err: APIError) -> None:
        self.metrics.request_errors.labels(str(err.status), err.code or err.type).inc()
        log.info("rejected", extra={"request_id": ex.request_id, "status": err.status, "code": err.code,
                                    "error": err.message[:200]})

    def internal_error(self, ex: Exchange, phase: str) -> None:
        self.metrics.stream_errors.labels(phase).inc()
        log.exception("internal error", extra={"request_id": ex.request_id, "phase": phase})

    def decided(self, decision: Decision) -> None:
        if decision.injection:
            self.metrics.injections.labels(decision.injection).inc()

    def forwarded(self, ex: Exchange) -> None:
        assert ex.forwarded_at is not None
        self.metrics.decision_seconds.observe(ex.forwarded_at - ex.started)
        self.log(ex, "forward")

    def log(self, ex: Exchange, event: str, **extra: Any) -> None:
        d = ex.decision
        fields: dict[str, Any] = {"request_id": ex.request_id, "event": event, "cache": ex.cache_state,
                                  "elapsed_ms": round((time.perf_counter() - ex.started) * 1000, 2)}
        if d is not None:
            fields.update(model=d.model, auto=d.auto, category=d.category, confidence=d.confidence,
                          complexity=d.complexity, reasoning=d.reasoning, blocked=d.blocked,
                          pii=sorted(d.pii_types), injection=d.injection, reason=d.reason)
            if d.pii_types:
                fields["pii_counts"] = {t: ex.pii_counts.get(t, 0) for t in sorted(d.pii_types)}
        if ex.redaction is not None:
            fields["pii_redacted"] = dict(ex.redaction.counts)  # types and counts: never the values
        fields.update(extra)
        if ex.config.logging.log_prompts and log.isEnabledFor(logging.DEBUG) and ex.request is not None:
            fields["prompt"] = ex.request.last_user_text()[:500]
        log.info(event, extra=fields)
