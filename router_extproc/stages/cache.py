"""Cache stage: policy, key, the key's own embedding, lookup, coalescing of identical misses (leader/follower),
the literal-repeat route memo (cache/routes.py) and the store of a tapped answer.

Only chat answers are cached, and a redacted request is neither looked up nor stored (docs/cache.md). A decision's
route policy (rules.CachePolicy, docs/routing.md) narrows the section's: off for the route, a higher similarity bar,
a shorter age for the answers it is served.
"""

from __future__ import annotations

import asyncio

from dataclasses import replace
from typing import Any

from ..cache.keys import build_key, decide_policy, response_cacheable, scope_of
from ..cache.replay import assemble_sse
from ..cache.routes import RouteMemo, route_key
from ..config import RouterConfig
from ..decision import Decision, with_system_prompt
from ..errors import Overloaded
from ..metrics import Metrics
from ..openai import APIError, ChatRequest, load_json_object
from ..pii.answers import answer_pii_types
from ..thresholds import route_cache_similarity
from .contracts import Cache, HitLike, SignalSource, SignalsLike
from .exchange import Exchange
from .parse import PARSE_INLINE_BYTES
from .record import log

ROUTE_MEMO_MAX = 10_000  # literal requests whose decision is remembered (see cache/routes.py)


class CacheStage:
    def __init__(self, cache: Cache | None, signals: SignalSource | None, metrics: Metrics) -> None:
        self.cache = cache
        self.signals = signals
        self.metrics = metrics
        # A remembered route only answers while its entry is in the cache's in-process tier, where exact lookups
        # look: a memo larger than that tier would only hold the routes of evicted entries.
        hot = getattr(cache, "hot", None)
        self.routes: RouteMemo[Decision] = RouteMemo(min(ROUTE_MEMO_MAX, getattr(hot, "capacity", ROUTE_MEMO_MAX)))
        # a cache.audit.HitAudit re-asking a share of semantic hits off the client's path (None: off; set by app.py)
        self.audit: Any = None

    def config_changed(self) -> None:
        # Remembered decisions were made under the old config: a reload must be able to change them.
        self.routes.clear()

    def _enabled(self, cfg: RouterConfig) -> bool:
        return self.cache is not None and cfg.semantic_cache is not None and cfg.semantic_cache.enabled

    # ── literal repeats ─────────────────────────────────────────────────────────────────────────
    def literal_repeat(self, ex: Exchange, request: ChatRequest, current: RouterConfig) -> HitLike | None:
        """The cached answer to a byte-for-byte repeat of a cached request, found without the signal pass.
        Sets the exchange's decision and key as the first request's full path made them."""
        cfg = ex.config.semantic_cache
        if not self._enabled(ex.config) or not cfg.exact_match or ex.config is not current:
            return None
        # PII is unknown before the signal pass; remembered decisions never carry PII (see _remember).
        if not decide_policy(request.body, ex.headers, cfg, has_pii=False).lookup:
            return None
        remembered = self.routes.get(route_key(request.body, scope_of(ex.headers, cfg.scope_headers)))
        if remembered is None:
            return None
        decision, cache_key = remembered
        assert self.cache is not None
        hit = self._admit(ex.config, decision, self.cache.exact_lookup(cache_key))
        if hit is None:
            return None
        ex.decision, ex.cache_key = decision, cache_key
        return hit

    @staticmethod
    def _admit(cfg: RouterConfig, decision: Decision, hit: HitLike | None) -> HitLike | None:
        """The hit, unless the decision's route policy refuses it: a semantic hit under the route's similarity bar,
        or an answer older than the route's ttl_s (entries live the section's ttl_seconds; each route reads only
        those young enough for it, so routes sharing a model share entries without sharing a policy)."""
        route = decision.cache
        if hit is None or route is None:
            return hit
        bar = route_cache_similarity(route.threshold, cfg.semantic_cache.similarity_threshold)
        if bar is not None and not hit.exact and hit.similarity < bar:
            return None
        if route.ttl_s is not None and getattr(hit, "age_s", 0.0) > route.ttl_s:
            return None
        return hit

    def _remember(self, ex: Exchange, request: ChatRequest, decision: Decision, key: Any,
                  current: RouterConfig) -> None:
        # Called once the full path allowed lookup and storing, so the policy and the tenant scope are known.
        if (decision.blocked or decision.pii_types or ex.config is not current
                or not ex.config.semantic_cache.exact_match):
            return
        # a hit only needs scope + fingerprint: do not keep a second copy of every prompt in memory
        self.routes.put(route_key(request.body, key.scope), decision, replace(key, text=""))

    # ── lookup ─────────────────────────────────────────────────────────────────────────────────
    async def lookup(self, ex: Exchange, request: ChatRequest, decision: Decision, signals: SignalsLike | None,
                     current: RouterConfig) -> HitLike | None:
        try:
            hit = await self._lookup(ex, request, decision, signals, current)
        except Overloaded:
            # The cache key's own embedding could not be queued: the request is answered uncached.
            ex.store, ex.cache_state = False, "bypass"
            return None
        if hit is not None and not hit.exact and self.audit is not None:
            # The upstream is asked too, in the background, for a live false-hit estimate (cache/audit.py).
            self.audit.submit(decision.category or "none", {**request.body, "model": decision.model}, hit.completion)
        return hit

    async def _lookup(self, ex: Exchange, request: ChatRequest, decision: Decision, signals: SignalsLike | None,
                      current: RouterConfig) -> HitLike | None:
        cache, cfg = self.cache, ex.config
        if cache is None or not self._enabled(cfg):
            return None
        # the key is the request the model will read: with the route's system prompt (act.forward applies the same)
        body = with_system_prompt(request.body, decision)
        policy = decide_policy(body, ex.headers, cfg.semantic_cache, has_pii=bool(decision.pii_types))
        if ex.body_bytes < PARSE_INLINE_BYTES:
            key = build_key(body, decision.model, ex.headers, cfg.semantic_cache)
        else:   # normalising megabytes of pasted text takes tens of ms: off the event loop, like the parse
            key = await asyncio.get_running_loop().run_in_executor(
                None, build_key, body, decision.model, ex.headers, cfg.semantic_cache)
        ex.cache_key = key
        # Entries are indexed by the prompt embedding: with the signal model off nothing can be stored. A prompt the
        # PII tagger could not read whole (the signal budget) is not stored: "PII is never cached" needs every token.
        ex.store = policy.store and signals is not None and not getattr(signals, "unread_tokens", 0)
        ex.persona_names = getattr(signals, "operator_names", frozenset())
        ex.cache_state = "miss"
        if decision.cache is not None and not decision.cache.enabled:   # the route switched the cache off
            ex.store = False
            policy = replace(policy, lookup=False)
        if not policy.lookup:
            ex.cache_state = "bypass"
            self.metrics.cache_lookups.labels("skipped").inc()
            return None
        if ex.store:
            self._remember(ex, request, decision, key, current)
        hit = self._admit(cfg, decision, cache.exact_lookup(key))
        if hit is None and ex.store and not key.exact_only:
            if key.text != ex.embedded_text:
                # The cache's semantic key (recent turns, system prompt as a hard filter) differs from the
                # classification text for multi-turn requests: embed it on its own (micro-batched).
                assert self.signals is not None
                ex.embedding = (await self.signals.analyze(key.text, cfg.signals.inputs.max_tokens_read)).embedding
                ex.embedded_text = key.text
            # a category whose audited false-hit estimate is over its bound demands more of the verifier
            raise_by = self.audit.threshold_raise(decision.category or "none") if self.audit is not None else 0.0
            found = await (cache.lookup(key, ex.embedding, key.text, raise_by=raise_by) if raise_by
                           else cache.lookup(key, ex.embedding, key.text))
            hit = self._admit(cfg, decision, found)
        if hit is None and ex.store:
            # Coalesce identical concurrent misses: one leader goes upstream, followers wait for it.
            if cache.claim(key):
                ex.leader = True
            else:
                hit = await cache.wait_for_leader(key, cfg.semantic_cache.coalesce_timeout_s)
        return hit

    # ── store ──────────────────────────────────────────────────────────────────────────────────
    def store(self, ex: Exchange, raw: bytes) -> None:
        """Store the tapped upstream answer if it is cacheable; a leader hands it to its followers either way."""
        assert self.cache is not None
        comp: dict[str, Any] | None
        if ex.request is not None and ex.request.stream:
            comp = assemble_sse(raw)   # None unless the stream finished with [DONE]
        else:
            try:
                # The upstream's JSON passes the same checks as a client's: what is stored can be hashed and served.
                comp = load_json_object(raw)
            except APIError:
                comp = None
        try:
            verdict = "incomplete" if comp is None else response_cacheable(
                ex.response_status or 0, comp, max_bytes=ex.config.semantic_cache.max_response_bytes)
            # An answer is replayed to later askers: one carrying PII of its own is not stored, like a prompt with
            # PII. The rules only (linear, no model), over at most max_response_bytes: a few ms at the 60 KB cap.
            if verdict == "ok" and answer_pii_types(comp, ex.persona_names):
                verdict = "pii"
        except (ValueError, TypeError, RecursionError) as exc:   # UnicodeEncodeError is a ValueError
            log.warning("upstream answer not storable", extra={"request_id": ex.request_id, "error": repr(exc)[:200]})
            verdict = "invalid"
        if verdict != "ok":
            comp = None
            self.metrics.cache_stores.labels(f"skipped_{verdict}").inc()
        else:
            self.cache.store(ex.cache_key, ex.embedding, comp)
        if ex.leader:
            self.cache.release(ex.cache_key, comp)
            ex.leader = False

    def release(self, ex: Exchange) -> None:
        """A leader that will not store lets its followers go upstream."""
        if ex.leader and self.cache is not None:
            ex.leader = False
            self.cache.release(ex.cache_key, None)
