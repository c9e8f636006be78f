"""``SemanticCache``: the one object the server talks to.

Tiers, fastest first:

1. **Exact path** (:meth:`exact_lookup`) — a dict from (scope, fingerprint) to an in-process entry: literal repeats
   are answered in microseconds, before any embedding is computed.
2. **In-process vector index** (:class:`~router_extproc.cache.memory.MemoryIndex`) — for the ``memory`` backend it
   *is* the store; for ``milvus`` it is a hot tier of up to ``hot_entries`` entries (LRU) holding everything this
   router stored or served, warmed from Milvus at connect. With Milvus Lite (one process owns the file) the hot tier
   is authoritative while it holds every row, so a miss costs no Milvus call at all.
3. **Milvus** — durable and shared between routers; searched on a hot-tier miss (server, or Lite beyond
   ``hot_entries`` rows). Hits are copied into the hot tier.

Every candidate (cosine ≥ floor, same scope and filter_key, not expired) must then pass the verifier (see
``verify.py``); identical semantic text is accepted without asking it. ``store`` only enqueues: the hot tier is
updated at once and a background task inserts into Milvus in batches (every ``flush_interval_ms`` or
``insert_batch_size`` rows); :meth:`close` flushes. Backend errors never propagate: lookups return ``None``,
the metric ``error(op)`` counts them, and the Milvus backend reconnects by itself.

Size: with Milvus, ``max_entries`` bounds the collection (oldest rows deleted in batches, after every
``max_entries / 20`` stored rows and at every cleanup tick); ``hot_entries`` bounds the in-process tier.
Clears reach every router sharing the Milvus within ``invalidation_poll_s`` (see ``coherence.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np

from router_extproc.cache.ann import TWIN_MIN_ROWS
from router_extproc.cache.base import Backend, CacheMetrics, Entry, NoopMetrics, new_id
from router_extproc.cache.coherence import ALL_SCOPES, Clears
from router_extproc.cache.inflight import Inflight
from router_extproc.cache.keys import CacheKey, response_cacheable
from router_extproc.cache.memory import MemoryBackend, MemoryIndex
from router_extproc.cache.replay import refresh
from router_extproc.cache.verify import CosineVerifier, Verifier, load_verifier
from router_extproc.config_cache import MilvusConfig, SemanticCacheConfig
from router_extproc.thresholds import fallback_cosine, search_floor

PAIR_CANDIDATES = 1  # candidates a pair-reading verifier reads per lookup (each costs an encoder row)

# (query text, candidate text) pairs -> the encoder's features of each pair read as one row, [n, D]
PairEncoder = Callable[[list[tuple[str, str]]], Awaitable[np.ndarray]]

__all__ = ["SemanticCache", "CacheHit"]

log = logging.getLogger("router_extproc.cache")
MAX_PENDING = 10_000
NEVER = 4.0e9  # expiry for ttl_seconds: 0 (year 2096; Milvus has no infinity)


@dataclass(frozen=True, slots=True)
class CacheHit:
    completion: dict
    similarity: float
    exact: bool
    age_s: float


class SemanticCache:
    def __init__(self, cfg: SemanticCacheConfig, *, dimension: int, backend: Backend, hot: MemoryIndex,
                 verifier: Verifier, metrics: CacheMetrics | None = None,
                 pair_encoder: PairEncoder | None = None) -> None:
        if verifier.needs_pairs and pair_encoder is None:
            raise ValueError("the verifier reads pair features: give the cache a pair_encoder")
        self.cfg = cfg
        self.pair_encoder = pair_encoder
        self.dimension = dimension
        self.backend = backend
        self.hot = hot
        self.verifier = verifier
        self.metrics: CacheMetrics = metrics or NoopMetrics()
        self.floor = search_floor(cfg.similarity_threshold, verifier.floor)
        # Candidates between rule_floor and floor may only be served as another form of the same request
        # (Verifier.same_form): a typo moves an int8 MiniLM embedding far (cosine 0.4-0.7 for one typo'd word).
        self.candidate_floor = min(self.floor, verifier.rule_floor) if verifier.rule_floor else self.floor
        self.is_memory = isinstance(backend, MemoryBackend)
        mc: MilvusConfig | None = getattr(backend, "cfg", None)
        self.top_k = mc.top_k if mc is not None else 4
        self.batch_size = mc.insert_batch_size if mc is not None else 64
        self.flush_interval_s = (mc.flush_interval_ms if mc is not None else 50) / 1000.0
        self.cleanup_interval_s = mc.cleanup_interval_s if mc is not None else max(1.0, min(60.0, cfg.ttl_seconds))
        self._hot_complete = self.is_memory  # True: a hot miss is a miss (nothing else to search)
        self._pending: deque[Entry] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._closed = False
        self._started = False
        self.inflight = Inflight()
        self.counters: dict[str, int] = {}
        self.clears = Clears()
        self._since_enforce = 0  # rows written to the backend since its size was last enforced
        self.backend_rows: int | None = None
        self._lite_warned = 0

    # ------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg: SemanticCacheConfig, *, dimension: int, verifier_path: Path | None,
                    metrics: CacheMetrics | None = None, pair_encoder: PairEncoder | None = None,
                    pair_dim: int | None = None) -> "SemanticCache":
        """``pair_encoder`` (``SignalEngine.pair_features``) and ``pair_dim`` (its output width) serve a verifier
        that reads pair features; without them such a verifier is not usable and plain cosine takes its place."""
        verifier: Verifier = CosineVerifier(cfg.similarity_threshold)
        fallback = CosineVerifier(fallback_cosine(cfg.similarity_threshold))
        if cfg.verifier and verifier_path is not None:
            try:
                v = load_verifier(verifier_path)
                if v.dimension != dimension:
                    raise ValueError(f"verifier was built for dimension {v.dimension}, model gives {dimension}")
                if v.needs_pairs and (pair_encoder is None or pair_dim != v.pair_dim):
                    raise ValueError(f"verifier reads {v.pair_dim}-dim pair features and the encoder gives "
                                     f"{pair_dim or 'none'} (rebuild the models: make models)")
                if cfg.verifier_threshold is not None:
                    v.threshold = cfg.verifier_threshold
                verifier = v
            except (OSError, ValueError, KeyError) as e:
                verifier = fallback
                log.warning("semantic cache: no usable verifier at %s (%s); falling back to plain cosine >= %.3f",
                            verifier_path, e, verifier.threshold)
        elif cfg.verifier:
            verifier = fallback
            log.warning("semantic cache: no verifier path; plain cosine >= %.3f", verifier.threshold)
        metrics = metrics or NoopMetrics()
        twin = TWIN_MIN_ROWS if cfg.ann_twin_rows is None else (cfg.ann_twin_rows or None)   # 0: never two graphs
        if cfg.backend_type == "milvus":
            from router_extproc.cache.milvus import MilvusBackend

            mc = cfg.milvus or MilvusConfig()
            hot_n = max(1, cfg.hot_entries)
            backend: Backend = MilvusBackend(mc, dimension, on_available=None, load_rows=cfg.hot_entries)
            hot = MemoryIndex(dimension, hot_n, "lru", ann_twin_rows=twin)
        else:
            backend = MemoryBackend(dimension, cfg.max_entries, cfg.eviction_policy, ann_twin_rows=twin)
            hot = backend.index
        self = cls(cfg, dimension=dimension, backend=backend, hot=hot, verifier=verifier, metrics=metrics,
                   pair_encoder=pair_encoder if verifier.needs_pairs else None)
        if not self.is_memory:
            backend._on_available = self._on_available  # type: ignore[attr-defined]
        return self

    # ------------------------------------------------------------ lifecycle
    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _on_available(self, ok: bool) -> None:
        self.metrics.set_available(ok)
        if ok:
            self._absorb_loaded()
            self._wake.set()
        else:
            self._hot_complete = False

    def _absorb_loaded(self) -> None:
        loaded = getattr(self.backend, "loaded", None)
        if loaded is None:
            return
        n = 0
        for e in loaded:
            if self.clears.stale(e):
                continue
            if self.hot.get_exact(e.scope, e.fingerprint, time.time()) is None:
                try:
                    self.hot.add(e)
                    n += 1
                except ValueError:
                    pass
        self.backend.loaded = []  # type: ignore[attr-defined]
        mc = self.backend.cfg  # type: ignore[attr-defined]
        # Lite is single-process: if every live row fits in the hot tier, the hot tier is the whole cache
        self._hot_complete = bool(mc.is_lite and len(loaded) < self.hot.capacity and self.hot.evictions == 0
                                  and self.cfg.hot_entries > 0)
        if n:
            log.info("semantic cache: warmed %d entries from milvus", n)

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            await self.backend.start()
        except Exception as e:
            from router_extproc.errors import ConfigError

            if isinstance(e, ConfigError):
                raise
            log.warning("semantic cache backend failed to start: %s", e)
            self.metrics.error("start")
        self.metrics.set_available(self.available)
        loop = asyncio.get_running_loop()
        if not self.is_memory:
            self._tasks.append(loop.create_task(self._flusher(), name="cache-flusher"))
            mc = getattr(self.backend, "cfg", None)
            if hasattr(self.backend, "read_clears") and mc is not None and not mc.is_lite:
                # Lite is one process: its clears all go through this router, nothing to poll for
                self._tasks.append(loop.create_task(self._invalidation_poller(mc.invalidation_poll_s),
                                                    name="cache-invalidations"))
        self._tasks.append(loop.create_task(self._cleaner(), name="cache-cleaner"))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        if not self.is_memory and self._pending and self.backend.available:
            try:
                while self._pending:
                    batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                    await self.backend.insert(batch)
                    self.metrics.store("stored")
            except Exception as e:
                log.warning("semantic cache: %d pending inserts lost at shutdown: %s", len(self._pending), e)
                self.metrics.error("store")
        if self._pending:
            log.warning("semantic cache: %d pending inserts not written (backend unavailable)", len(self._pending))
        await self.backend.close()
        if self.hot is not None:   # its graph writer (with the memory backend, the same index: closing is idempotent)
            await asyncio.to_thread(self.hot.close)

    @property
    def available(self) -> bool:
        return self.backend.available

    # ------------------------------------------------------------ lookups
    def _hit(self, e: Entry, sim: float, exact: bool) -> CacheHit | None:
        try:
            completion = json.loads(e.response)
        except ValueError:
            return None
        return CacheHit(refresh(completion), float(sim), exact, max(0.0, time.time() - e.created_at))

    def exact_lookup(self, key: CacheKey) -> CacheHit | None:
        if not self.cfg.exact_match:
            return None
        t0 = time.perf_counter()
        e = self.hot.get_exact(key.scope, key.fingerprint, time.time())
        if e is None:
            return None
        hit = self._hit(e, 1.0, True)
        if hit is not None:
            self._count("exact_hit")
            self.metrics.lookup("exact_hit", time.perf_counter() - t0)
        return hit

    async def _verify(self, key: CacheKey, q: np.ndarray, text: str, cands,
                      raise_by: float = 0.0) -> tuple[Entry, float] | None:
        if not cands:
            return None
        same = [c for c in cands if c.entry.text == text and c.similarity >= 0.98]
        if same:
            return same[0].entry, same[0].similarity
        low = [c for c in cands if c.similarity < self.floor]
        if low:
            for c in low:
                if self.verifier.same_form(text, c.entry.text):
                    return c.entry, c.similarity
            cands = [c for c in cands if c.similarity >= self.floor]
            if not cands:
                return None
        pair_feats = None
        if self.pair_encoder is not None:
            # A pair row is a whole encoder pass: candidates the cheap first stage refuses are never read, and of
            # the rest only the most plausible one (the first by similarity when the verifier has no gate).
            pre = self.verifier.prescreen(q, text, [(c.entry.embedding, c.entry.text, c.similarity) for c in cands])
            keep = [i for i in np.argsort(-pre, kind="stable") if pre[i] >= self.verifier.gate][:PAIR_CANDIDATES]
            if not keep:
                self._count("verifier_gated")
                return None
            cands = [cands[i] for i in keep]
            self._count("verifier_pair_rows")
            pair_feats = await self.pair_encoder([(text, c.entry.text) for c in cands])
        scores = self.verifier.scores(q, text, [(c.entry.embedding, c.entry.text, c.similarity) for c in cands],
                                      pair_feats)
        best = int(np.argmax(scores))
        # raise_by: the hit audit's demand for a category with too many false hits (cache/audit.py); the rule
        # hits above (identical text, same_form) are not scored and stay served
        if scores[best] >= self.verifier.threshold + raise_by:
            return cands[best].entry, cands[best].similarity
        return None

    def _normalize(self, embedding: np.ndarray) -> np.ndarray:
        q = np.asarray(embedding, np.float32).reshape(-1)
        n = float(np.linalg.norm(q))
        return q / n if n > 0 else q

    async def lookup(self, key: CacheKey, embedding: np.ndarray, text: str, *,
                     raise_by: float = 0.0) -> CacheHit | None:
        t0 = time.perf_counter()
        result = "miss"
        try:
            q = self._normalize(embedding)
            if q.shape[0] != self.dimension:
                raise ValueError(f"embedding dimension {q.shape[0]} != {self.dimension}")
            now = time.time()
            cands = self.hot.search(key.scope, key.filter_key, q, top_k=self.top_k,
                                    min_similarity=self.candidate_floor, now=now)
            found = await self._verify(key, q, text, cands, raise_by)
            if found is not None:
                self.hot.touch_id(found[0].id)
            elif not self.is_memory and (not self._hot_complete or self.hot.evictions):
                if not self.backend.available:
                    result = "unavailable"
                else:
                    more = await self.backend.search(key.scope, key.filter_key, q, top_k=self.top_k,
                                                     min_similarity=self.candidate_floor, now=now)
                    seen = {c.entry.id for c in cands}
                    more = [c for c in more if c.entry.id not in seen and not self.clears.stale(c.entry)]
                    found = await self._verify(key, q, text, more, raise_by)
                    if found is not None:
                        try:
                            self.hot.add(found[0])
                        except ValueError:
                            pass
                    cands = cands + more
            if found is not None:
                hit = self._hit(found[0], found[1], False)
                if hit is not None:
                    result = "hit"
                    return hit
            if any(c.similarity >= self.floor for c in cands) and result == "miss":
                result = "refused"
            return None
        except Exception as e:
            result = "error"
            self.metrics.error("lookup")
            log.debug("semantic cache lookup failed: %s", e)
            return None
        finally:
            self._count(result)
            self.metrics.lookup(result, time.perf_counter() - t0)

    # ------------------------------------------------------------ stores
    def store(self, key: CacheKey, embedding: np.ndarray, completion: dict) -> None:
        try:
            reason = response_cacheable(200, completion)
            if reason != "ok":
                self._count("not_cacheable")
                self.metrics.store("not_cacheable")
                return
            response = json.dumps(completion, separators=(",", ":"), ensure_ascii=False)
            if len(response.encode()) > self.cfg.max_response_bytes:
                self._count("too_large")
                self.metrics.store("too_large")
                return
            now = time.time()
            if self.hot.get_exact(key.scope, key.fingerprint, now) is not None:
                self._count("duplicate")
                self.metrics.store("duplicate")
                return
            q = self._normalize(embedding)
            e = Entry(id=new_id(), scope=key.scope, filter_key=key.filter_key, fingerprint=key.fingerprint,
                      text=key.text, embedding=q, response=response, created_at=now,
                      expires_at=now + self.cfg.ttl_seconds if self.cfg.ttl_seconds > 0 else NEVER)
            self.hot.add(e, now)
            if self.is_memory:
                self._count("stored")
                self.metrics.store("stored")
                return
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self._count("dropped")
                self.metrics.store("dropped")
            self._pending.append(e)
            self._count("queued")
            self.metrics.store("queued")
            if len(self._pending) >= self.batch_size:
                self._wake.set()
        except Exception as e:
            self._count("store_error")
            self.metrics.error("store")
            log.debug("semantic cache store failed: %s", e)

    async def _flusher(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.flush_interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self._closed:
                return
            if not self.backend.available:
                continue
            try:
                while self._pending and not self._closed:
                    batch = [self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))]
                    try:
                        await self.backend.insert(batch)
                    except Exception:
                        self._pending.extendleft(reversed(batch))
                        raise
                    self._count("stored", len(batch))
                    self._since_enforce += len(batch)
                    for _ in batch:
                        self.metrics.store("stored")
                flush = getattr(self.backend, "flush_if_idle", None)
                if flush is not None:
                    await flush()
                if self._since_enforce >= max(self.batch_size, self.cfg.max_entries // 20):
                    await self.enforce_size()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.metrics.error("store")
                log.debug("semantic cache flush failed: %s", e)

    async def _cleaner(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.cleanup_interval_s)
            await self.expire()
            if not self.is_memory:
                await self.enforce_size()

    async def enforce_size(self) -> int:
        """Keep the backend at ``max_entries`` (oldest rows first, one batched delete); report its size."""
        enforce = getattr(self.backend, "enforce_size", None)
        if enforce is None or not self.backend.available:
            return 0
        self._since_enforce = 0
        try:
            before, deleted = await enforce(self.cfg.max_entries)
        except Exception as e:
            self.metrics.error("evict")
            log.debug("semantic cache size enforcement failed: %s", e)
            return 0
        if deleted:
            self._count("evicted", deleted)
        self._report_rows(before - deleted)
        return deleted

    def _report_rows(self, rows: int) -> None:
        self.backend_rows = rows
        mc = getattr(self.backend, "cfg", None)
        over = bool(mc is not None and mc.is_lite and rows > mc.lite_warn_rows)
        fn = getattr(self.metrics, "backend_rows", None)  # optional in CacheMetrics implementations
        if fn is not None:
            fn(rows, over)
        if over and rows >= 2 * self._lite_warned:  # once, then again each time it doubles
            self._lite_warned = rows
            log.warning("semantic cache: Milvus Lite holds %d rows, past %d its lookups exceed the latency target "
                        "(docs/cache.md, \"Scale\"); point uri: at a Milvus server (uri: http://host:19530)",
                        rows, mc.lite_warn_rows)

    async def _invalidation_poller(self, interval_s: float) -> None:
        while not self._closed:
            await asyncio.sleep(interval_s)
            if not self.backend.available:
                continue
            try:
                self.apply_clears(await self.backend.read_clears())  # type: ignore[attr-defined]
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.metrics.error("invalidations")
                log.debug("semantic cache: reading clears failed: %s", e)

    def apply_clears(self, marks: dict[str, float]) -> int:
        """Drop from the in-process tiers and the insert queue what the newly seen clears cover."""
        advanced = self.clears.merge(marks)
        if not advanced:
            return 0
        self._count("invalidations", len(advanced))
        # only rows created before the stamp: the first poll after a restart brings every stamp ever written, and
        # must not drop what was stored after those old clears
        n = self.hot.remove_ids([e.id for e in self.hot.entries() if self.clears.stale(e)])
        if self._pending:
            self._pending = deque(e for e in self._pending if not self.clears.stale(e))
        return n

    async def expire(self) -> int:
        """Delete expired entries now (also runs periodically)."""
        now = time.time()
        n = self.hot.delete_expired(now) if not self.is_memory else 0
        try:
            if self.backend.available:
                n = max(n, await self.backend.delete_expired(now))
        except Exception as e:
            self.metrics.error("expire")
            log.debug("semantic cache expiry failed: %s", e)
        return n

    # ------------------------------------------------------------ coalescing
    def claim(self, key: CacheKey) -> bool:
        if not self.cfg.coalesce:
            return True
        return self.inflight.claim(key.scope, key.fingerprint)

    async def wait_for_leader(self, key: CacheKey, timeout_s: float | None = None) -> CacheHit | None:
        t = self.cfg.coalesce_timeout_s if timeout_s is None else timeout_s
        completion = await self.inflight.wait(key.scope, key.fingerprint, t)
        if completion is None:
            self._coalesced_metric("leader_failed")
            return None
        self._count("coalesced")
        self._coalesced_metric("served")
        return CacheHit(refresh(completion), 1.0, True, 0.0)

    def _coalesced_metric(self, result: str) -> None:
        fn = getattr(self.metrics, "coalesced", None)  # optional in CacheMetrics implementations
        if fn is not None:
            fn(result)

    def release(self, key: CacheKey, completion: dict | None) -> None:
        self.inflight.release(key.scope, key.fingerprint, completion)

    # ------------------------------------------------------------ admin
    async def stats(self) -> dict:
        backend_entries: Any = None
        try:
            if self.backend.available:
                backend_entries = await self.backend.count()
        except Exception as e:
            backend_entries = f"error: {e}"[:200]
        out = {
            "enabled": self.cfg.enabled,
            "backend": self.cfg.backend_type,
            "available": self.available,
            "entries": backend_entries,
            "hot_entries": len(self.hot),
            "hot_capacity": self.hot.capacity,
            "hot_authoritative": bool(self._hot_complete and not self.hot.evictions),
            "evictions": self.hot.evictions,
            "max_entries": self.cfg.max_entries,
            "pending_inserts": len(self._pending),
            "inflight": len(self.inflight),
            "verifier": {"kind": self.verifier.kind, "threshold": self.verifier.threshold, "floor": self.floor},
            "counters": dict(sorted(self.counters.items())),
        }
        mc = getattr(self.backend, "cfg", None)
        if mc is not None:
            out["uri"] = mc.uri
            out["collection"] = mc.collection
            out["last_error"] = getattr(self.backend, "last_error", None)
        return out

    async def clear(self, scope: str | None = None) -> int:
        n_hot = self.hot.clear(scope)
        if self.is_memory:
            return n_hot
        now = time.time()
        self.clears.merge({scope or ALL_SCOPES: now})
        if scope is None:
            self._pending.clear()
        else:
            self._pending = deque(e for e in self._pending if e.scope != scope)
        try:
            return await self.backend.clear(scope, cleared_at=now)  # type: ignore[call-arg]
        except Exception as e:
            self.metrics.error("clear")
            log.warning("semantic cache clear failed: %s", e)
            return n_hot
