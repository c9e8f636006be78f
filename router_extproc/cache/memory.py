"""In-process vector index in numpy: the ``memory`` backend, and the hot tier in front of Milvus.

Entries live in a preallocated float32 matrix (one row per slot). Each (scope, filter_key) bucket keeps the
list of its slots, so a search is one small matrix-vector product over that bucket only. Capacity is
``max_entries``; when full, an expired entry is reused first, otherwise the policy picks the victim:
``fifo`` (oldest insert), ``lru`` (least recently served), ``lfu`` (fewest hits, oldest first on ties).
TTL is enforced on read; :meth:`delete_expired` frees expired slots.

A bucket that grows past ``ann_min_rows`` gets a graph index (``ann.py``) built and fed on a writer thread;
from then on its searches ask the graph for candidates and score them exactly here, so a lookup grows with the
log of the bucket (on real embeddings, shared cores: 0.23 ms p50 at 100k entries, 0.55 ms at a million; docs/cache.md,
Scale). In a large bucket writes never make a lookup wait: the writer adds to a second copy of the graph and swaps it
in.
"""

from __future__ import annotations

import asyncio
import time
from typing import Iterable

import numpy as np

from router_extproc.cache.ann import ANN_MIN_ROWS, TWIN_MIN_ROWS, AnnWriter, BucketANN
from router_extproc.cache.base import Candidate, Entry

__all__ = ["MemoryIndex", "MemoryBackend"]


class MemoryIndex:
    """Synchronous index; not thread-safe (used from the event loop only)."""

    def __init__(self, dimension: int, max_entries: int, eviction_policy: str = "fifo", *,
                 ann_min_rows: int | None = ANN_MIN_ROWS, ann_twin_rows: int | None = TWIN_MIN_ROWS) -> None:
        if eviction_policy not in ("fifo", "lru", "lfu"):
            raise ValueError(f"eviction_policy: {eviction_policy!r}")
        self.dimension = dimension
        self.capacity = max(1, int(max_entries))
        self.policy = eviction_policy
        self._vecs = np.zeros((self.capacity, dimension), np.float32)
        self._entries: list[Entry | None] = [None] * self.capacity
        self._inserted = np.zeros(self.capacity, np.int64)
        self._accessed = np.zeros(self.capacity, np.int64)
        self._hits = np.zeros(self.capacity, np.int64)
        self._expires = np.full(self.capacity, np.inf)
        self._occ = np.zeros(self.capacity, bool)
        self._free = list(range(self.capacity - 1, -1, -1))
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._bucket_arr: dict[tuple[str, str], np.ndarray] = {}
        self._by_fp: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, int] = {}
        self._tick = 0
        self.evictions = 0
        self.ann_min_rows = ann_min_rows if ann_min_rows and _ann_available() else None
        self._ann: dict[tuple[str, str], BucketANN] = {}
        # a bucket of this many rows keeps two graphs, so that its lookups never wait for an add (ann.BucketANN)
        self.ann_twin_rows = ann_twin_rows
        self._writer = AnnWriter()

    def __len__(self) -> int:
        return len(self._by_id)

    # ------------------------------------------------------------ writes
    def _next(self) -> int:
        self._tick += 1
        return self._tick

    def _victim(self, now: float) -> int:
        occupied = self._occ
        expired = occupied & (self._expires <= now)
        if expired.any():
            return int(np.argmax(expired))
        if self.policy == "fifo":
            score = self._inserted
        elif self.policy == "lru":
            score = self._accessed
        else:
            # fewest hits first, then oldest access
            score = self._hits * (self._tick + 1) + self._accessed
        score = np.where(occupied, score, np.iinfo(np.int64).max)
        return int(np.argmin(score))

    def add(self, entry: Entry, now: float | None = None) -> None:
        now = time.time() if now is None else now
        old = self._by_fp.get((entry.scope, entry.fingerprint))
        if old is not None:
            self._remove_slot(old)
        if entry.id in self._by_id:
            self._remove_slot(self._by_id[entry.id])
        if not self._free:
            self._remove_slot(self._victim(now))
            self.evictions += 1
        slot = self._free.pop()
        v = np.asarray(entry.embedding, np.float32).reshape(-1)
        if v.shape[0] != self.dimension:
            self._free.append(slot)
            raise ValueError(f"embedding has dimension {v.shape[0]}, index has {self.dimension}")
        b = (entry.scope, entry.filter_key)
        if b not in self._ann:
            # brute-force buckets read the matrix; a graph bucket rescores from the entry's own vector, so its rows
            # are not copied here (a page no brute-force row touches is never resident: ~1.5 KB a row saved)
            self._vecs[slot] = v
        self._entries[slot] = entry
        self._occ[slot] = True
        t = self._next()
        self._inserted[slot] = t
        self._accessed[slot] = t
        self._hits[slot] = 0
        self._expires[slot] = entry.expires_at
        bucket = self._buckets.setdefault(b, [])
        bucket.append(slot)
        self._bucket_arr.pop(b, None)
        ann = self._ann.get(b)
        if ann is not None:
            # staged as a view of the entry's own vector: no per-row copy to allocate and free (heap fragmentation)
            if ann.stage_add(np.asarray([entry.id], np.uint64), v[None, :]):
                self._writer.submit(ann.flush)
        elif self.ann_min_rows is not None and len(bucket) >= self.ann_min_rows:
            self._build_ann(b, bucket)
        self._by_fp[(entry.scope, entry.fingerprint)] = slot
        self._by_id[entry.id] = slot

    def _build_ann(self, b: tuple[str, str], slots: list[int]) -> None:
        ann = self._ann[b] = BucketANN(self.dimension, twin_rows=self.ann_twin_rows)
        arr = np.asarray(slots, np.int64)
        ids = np.asarray([self._entries[s].id for s in slots], np.uint64)  # type: ignore[union-attr]
        if ann.stage_add(ids, self._vecs[arr]):  # fancy indexing: already a copy
            self._writer.submit(ann.flush)

    def _remove_slot(self, slot: int) -> None:
        e = self._entries[slot]
        if e is None:
            return
        b = (e.scope, e.filter_key)
        lst = self._buckets.get(b)
        if lst is not None:
            lst.remove(slot)
            if not lst:
                del self._buckets[b]
        self._bucket_arr.pop(b, None)
        ann = self._ann.get(b)
        if ann is not None:
            if b not in self._buckets:
                del self._ann[b]
            elif ann.stage_remove(e.id):
                self._writer.submit(ann.flush)
        if self._by_fp.get((e.scope, e.fingerprint)) == slot:
            del self._by_fp[(e.scope, e.fingerprint)]
        self._by_id.pop(e.id, None)
        self._entries[slot] = None
        self._occ[slot] = False
        self._expires[slot] = np.inf
        self._free.append(slot)

    def remove_ids(self, ids: Iterable[int]) -> int:
        n = 0
        for i in ids:
            slot = self._by_id.get(i)
            if slot is not None:
                self._remove_slot(slot)
                n += 1
        return n

    def delete_expired(self, now: float) -> int:
        slots = np.nonzero(self._occ & (self._expires <= now))[0]
        for s in slots:
            self._remove_slot(int(s))
        return len(slots)

    def clear(self, scope: str | None = None) -> int:
        for b in [b for b in self._ann if scope is None or b[0] == scope]:
            del self._ann[b]  # dropped whole: no per-row removals for the writer
        slots = [s for s, e in enumerate(self._entries) if e is not None and (scope is None or e.scope == scope)]
        for s in slots:
            self._remove_slot(s)
        return len(slots)

    # ------------------------------------------------------------ reads
    def _touch(self, slot: int) -> None:
        self._accessed[slot] = self._next()
        self._hits[slot] += 1

    def get_exact(self, scope: str, fingerprint: str, now: float) -> Entry | None:
        slot = self._by_fp.get((scope, fingerprint))
        if slot is None:
            return None
        e = self._entries[slot]
        if e is None or e.expires_at <= now:
            return None
        self._touch(slot)
        return e

    def _ann_slots(self, ann: BucketANN, b: tuple[str, str], q: np.ndarray, top_k: int) -> np.ndarray:
        """Candidate slots of a bucket: the graph's nearest plus the nearest of the rows it has not indexed yet."""
        k = max(4 * top_k, 16)
        ids = ann.search(q, k).tolist() + ann.pending_nearest(q, k)
        slots = set()
        for i in ids:
            s = self._by_id.get(int(i))
            if s is not None:
                e = self._entries[s]
                if e is not None and e.scope == b[0] and e.filter_key == b[1]:
                    slots.add(s)
        return np.fromiter(slots, np.int64, len(slots))

    def search(
        self, scope: str, filter_key: str, vector: np.ndarray, *, top_k: int, min_similarity: float, now: float
    ) -> list[Candidate]:
        b = (scope, filter_key)
        q = np.asarray(vector, np.float32).reshape(-1)
        ann = self._ann.get(b)
        if ann is not None and ann.ready:
            arr = self._ann_slots(ann, b, q, top_k)
            if not len(arr):
                return []
            rows = np.stack([np.asarray(self._entries[s].embedding, np.float32).reshape(-1)  # type: ignore[union-attr]
                             for s in arr.tolist()])
            return self._pick(arr, rows @ q, top_k, min_similarity, now)
        arr = self._bucket_arr.get(b)
        if arr is None:
            lst = self._buckets.get(b)
            if not lst:
                return []
            arr = self._bucket_arr[b] = np.asarray(lst, np.int64)
        if len(arr) * 4 > len(self._by_id):  # a big bucket: one pass over the matrix beats a gathered copy
            hi = int(arr.max()) + 1
            sims = (self._vecs[:hi] @ q)[arr]
        else:
            sims = self._vecs[arr] @ q
        return self._pick(arr, sims, top_k, min_similarity, now)

    def _pick(self, arr: np.ndarray, sims: np.ndarray, top_k: int, min_similarity: float,
              now: float) -> list[Candidate]:
        ok = (sims >= min_similarity) & (self._expires[arr] > now)
        if not ok.any():
            return []
        idx = np.nonzero(ok)[0]
        if len(idx) > top_k:
            idx = idx[np.argpartition(-sims[idx], top_k - 1)[:top_k]]
        idx = idx[np.argsort(-sims[idx], kind="stable")]
        out = []
        for i in idx:
            slot = int(arr[i])
            e = self._entries[slot]
            if e is not None:
                out.append(Candidate(e, float(sims[i])))
        return out

    def touch_id(self, entry_id: int) -> None:
        slot = self._by_id.get(entry_id)
        if slot is not None:
            self._touch(slot)

    def drain(self) -> None:
        """Wait for the graph writer (tests and benchmarks; never on the request path)."""
        self._writer.drain(600.0)

    def close(self) -> None:
        """Stop the graph writer once its queued writes are applied (blocking; the cache's shutdown calls it in a
        worker thread). A later write starts a new writer."""
        self._writer.close()

    def entries(self) -> list[Entry]:
        return [e for e in self._entries if e is not None]

    def count_scope(self, scope: str | None) -> int:
        if scope is None:
            return len(self)
        return sum(1 for e in self._entries if e is not None and e.scope == scope)


class MemoryBackend:
    """The ``memory`` backend: a :class:`MemoryIndex` behind the async :class:`Backend` protocol."""

    name = "memory"

    def __init__(self, dimension: int, max_entries: int, eviction_policy: str = "fifo", **index_kw) -> None:
        self.index = MemoryIndex(dimension, max_entries, eviction_policy, **index_kw)

    @property
    def available(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await asyncio.to_thread(self.index.close)

    async def search(self, scope, filter_key, vector, *, top_k, min_similarity, now):
        return self.index.search(scope, filter_key, vector, top_k=top_k, min_similarity=min_similarity, now=now)

    async def insert(self, entries: list[Entry]) -> None:
        for e in entries:
            self.index.add(e)

    async def delete_expired(self, now: float) -> int:
        return self.index.delete_expired(now)

    async def clear(self, scope: str | None = None, *, cleared_at: float | None = None) -> int:
        return self.index.clear(scope)

    async def count(self) -> int:
        return len(self.index)


def _ann_available() -> bool:
    try:
        import usearch.index  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency; without it big buckets stay brute force
        return False
    return True
