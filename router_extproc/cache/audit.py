"""The hit audit: a live estimate of how often a semantic hit serves a wrong answer, per category.

A configurable share of semantic hits (never exact ones: those are the same request) is also sent to the upstream,
in a background task after the client has been answered. The fresh answer is compared with the one the cache
served (``similarity``: the router passes the cosine of the two answers' embeddings); an agreement under
``agree`` counts as a false hit. Per category, the estimate is the share of false hits among the audited ones,
exported as the gauge ``router_cache_audit_false_hit_ratio{category}`` with the counter
``router_cache_audit_total{category,outcome}`` (``agree``, ``false_hit``, ``error``, ``dropped``).

Two answers to one question differ in wording from one sampling to the next, so the estimate is an upper bound
on false hits unless ``agree`` is set below the agreement two answers to the same request reach.

Optionally, when a category's estimate exceeds ``max_false_hits`` after at least ``min_samples`` audits,
:meth:`HitAudit.threshold_raise` tells the cache to demand ``raise_by`` more of the verifier for that category
(``stages/cache.py`` passes it to ``SemanticCache.lookup``; config: ``semantic_cache.audit_max_false_hits``,
``audit_min_samples``, ``audit_raise_by``).

No state outside the instance; the audit never blocks the request path (``submit`` only schedules), and at most
``max_inflight`` audits run at once (more are dropped and counted, never queued).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

__all__ = ["AuditConfig", "HitAudit", "answer_text", "build_audit"]

log = logging.getLogger("router_extproc.cache.audit")

Fetch = Callable[[dict], Awaitable[Mapping[str, Any] | None]]   # request body -> the upstream's completion
Similarity = Callable[[str, str], Awaitable[float]]              # (served answer, fresh answer) -> agreement 0..1


@dataclass(frozen=True, slots=True)
class AuditConfig:
    share: float = 0.0            # of semantic hits audited; 0 turns the audit off
    agree: float = 0.80           # agreement under which the served answer counts as a false hit
    max_false_hits: float | None = None  # a category above this estimate gets a stricter threshold
    min_samples: int = 20         # audits of a category before its estimate acts
    raise_by: float = 0.05        # how much stricter
    max_inflight: int = 2         # audits at once; more are dropped

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"audit share must be in [0, 1], got {self.share}")
        if not 0.0 <= self.agree <= 1.0:
            raise ValueError(f"audit agree must be in [0, 1], got {self.agree}")


def answer_text(completion: Mapping[str, Any] | None) -> str:
    """The text of a chat completion's choices (tool calls as their JSON), joined."""
    if not isinstance(completion, Mapping):
        return ""
    out = []
    for c in completion.get("choices") or []:
        msg = c.get("message") if isinstance(c, Mapping) else None
        if isinstance(msg, Mapping):
            out.append(str(msg.get("content") or ""))
            if msg.get("tool_calls"):
                out.append(repr(msg["tool_calls"]))
    return "\n".join(t for t in out if t)


class HitAudit:
    def __init__(self, cfg: AuditConfig, *, fetch: Fetch, similarity: Similarity, registry: Any = None,
                 seed: int | None = None) -> None:
        self.cfg = cfg
        self._fetch, self._similarity = fetch, similarity
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task] = set()
        self.counts: dict[str, list[int]] = {}  # category -> [audited, false hits]
        self._gauge = self._total = None
        if registry is not None:
            from prometheus_client import Counter, Gauge

            self._gauge = Gauge("router_cache_audit_false_hit_ratio",
                                "Share of audited semantic hits whose served answer disagreed with a fresh one.",
                                ["category"], registry=registry)
            self._total = Counter("router_cache_audit_total", "Audited semantic hits by outcome.",
                                  ["category", "outcome"], registry=registry)

    @property
    def enabled(self) -> bool:
        return self.cfg.share > 0.0

    def submit(self, category: str, body: Mapping[str, Any], served: Mapping[str, Any]) -> bool:
        """Maybe audit one semantic hit (call after answering the client). True when an audit was scheduled."""
        if not self.enabled or self._rng.random() >= self.cfg.share:
            return False
        if len(self._tasks) >= self.cfg.max_inflight:
            self._count(category, "dropped")
            return False
        task = asyncio.get_running_loop().create_task(self._audit(category, dict(body), dict(served)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _audit(self, category: str, body: dict, served: dict) -> None:
        try:
            fresh = await self._fetch(body)
            if fresh is None:
                self._count(category, "error")
                return
            agreement = await self._similarity(answer_text(served), answer_text(fresh))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an audit must never disturb the router
            log.debug("cache audit failed: %r", exc)
            self._count(category, "error")
            return
        false_hit = agreement < self.cfg.agree
        n = self.counts.setdefault(category, [0, 0])
        n[0] += 1
        n[1] += int(false_hit)
        self._count(category, "false_hit" if false_hit else "agree")
        if self._gauge is not None:
            self._gauge.labels(category).set(n[1] / n[0])

    def _count(self, category: str, outcome: str) -> None:
        if self._total is not None:
            self._total.labels(category, outcome).inc()

    def estimate(self, category: str) -> tuple[float | None, int]:
        """(false-hit estimate or None before any audit, audits) of a category."""
        n = self.counts.get(category)
        return (n[1] / n[0], n[0]) if n and n[0] else (None, 0)

    def threshold_raise(self, category: str) -> float:
        """How much stricter the verifier should be for this category: ``raise_by`` once its estimate exceeds
        ``max_false_hits`` over at least ``min_samples`` audits, else 0."""
        bound = self.cfg.max_false_hits
        est, n = self.estimate(category)
        if bound is None or est is None or n < self.cfg.min_samples or est <= bound:
            return 0.0
        return self.cfg.raise_by

    async def drain(self) -> None:
        """Wait for the audits in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await self.drain()


def build_audit(config: Any, signals: Any, registry: Any = None, *, transport: Any = None) -> HitAudit | None:
    """The audit a router config asks for (``semantic_cache.audit_share`` > 0 and a signal engine to compare
    answers with), or None. It asks the chosen model's upstream directly (``host:port`` of ``models:``, the
    served name in ``model``, never streamed) and compares the two answers by the cosine of their embeddings.
    ``transport``: an httpx transport for tests."""
    sc = config.semantic_cache
    if sc is None or not sc.enabled or sc.audit_share <= 0 or signals is None:
        return None
    import httpx
    import numpy as np

    client = httpx.AsyncClient(timeout=config.envoy.upstream_timeout_s, transport=transport)

    async def fetch(body: dict) -> Mapping[str, Any] | None:
        m = config.model(body.get("model"))
        if m is None:
            return None
        r = await client.post(f"http://{m.host}:{m.port}/v1/chat/completions",
                              json={**body, "model": m.served_name, "stream": False})
        return r.json() if r.status_code == 200 else None

    async def similarity(a: str, b: str) -> float:
        if not a or not b:
            return float(a == b)
        ea = np.asarray((await signals.analyze(a)).embedding, np.float32)
        eb = np.asarray((await signals.analyze(b)).embedding, np.float32)
        return float(ea @ eb / max(1e-12, float(np.linalg.norm(ea) * np.linalg.norm(eb))))

    return HitAudit(AuditConfig(share=sc.audit_share, agree=sc.audit_agree, max_false_hits=sc.audit_max_false_hits,
                                min_samples=sc.audit_min_samples, raise_by=sc.audit_raise_by),
                    fetch=fetch, similarity=similarity, registry=registry)
