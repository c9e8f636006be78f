"""An approximate nearest-neighbour index for one large bucket of the in-process hot tier.

Below ``ANN_MIN_ROWS`` rows a bucket is searched by brute force (one numpy matrix-vector product); above it, a
graph index (HNSW, from usearch) answers in a fraction of a millisecond however large the bucket grows. Vectors
are kept as int8 in the graph: the graph only proposes candidates, whose similarity is then recomputed in fp32
from the entries' own vectors, so the verifier sees exactly the figures brute force would give it. int8 over
fp16, measured on a 20,000-row bucket of 384-d rows, 500 paraphrase-like queries, ef 128, shared cores: the
exact best row among the 16 candidates for 99.8 % of queries with either; search 0.48 vs 1.71 ms (usearch has
int8 kernels for this CPU, fp16 is converted), build 6.2 vs 13.2 s, half the graph's vector memory.

All writes (the initial build, every add and remove) run on one writer thread, never on the event loop, and never on
the graph lookups are searching once the bucket is large: it then keeps two graphs with the same rows, the writer
updates the one not searched and swaps it in (``BucketANN``). Rows added but not yet in the searched graph are listed in ``pending`` and
searched by brute force meanwhile, so a lookup never misses an entry because the writer is behind. Keys are entry
ids (not slots, which are reused).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import queue
import sys
import threading
import time
from typing import Any, Callable

import numpy as np

__all__ = ["BucketANN", "AnnWriter", "ANN_MIN_ROWS", "TWIN_MIN_ROWS", "expansion_for"]

# Brute force over a gathered bucket cost 0.17 ms p50 at 500 rows of 384 floats and ~1 ms at 2,500 on these
# (shared) cores: past ~2,000 rows it leaves the 1 ms target of the hot tier (docs/cache.md, "Scale").
ANN_MIN_ROWS = 2048
CONNECTIVITY = 16  # HNSW M
EXPANSION_ADD = 64  # efConstruction
# ef grows with the bucket searched (``expansion_for``): EF_MIN up to EF_BASE_ROWS rows, then +32 per doubling
# (a graph search's path grows with the log of its rows), at most EF_MAX. Measured on real embeddings
# (tests/bench/bench_recall.py: QQP questions through the project's encoder, one tenant's 125,000-row bucket of a
# 1M-entry cache, 732 paraphrase and near-miss queries, int8, M 16, shared cores at load 7): rows above the 0.7
# floor that exact search returns and the graph path returns too, 99.53 / 99.80 / 99.87 / 99.87 % at ef
# 16 / 32 / 64 / 128, paraphrase hits 99.3 / 100 / 100 / 100 %; graph search p50 0.07 / 0.10 / 0.16 / 0.28 ms. ef 64
# is where recall stops rising. M 32 gained nothing (99.60 / 99.73 / 99.87 % at ef 32 / 64 / 128) and searched
# slower (0.36 ms at ef 128), so M stays 16. (Random vectors, the graph's worst case, need far more: 80.7 % at
# ef 128 in a 1M-entry tier.)
EF_MIN = 64
EF_BASE_ROWS = 131_072
EF_MAX = 256
EXPANSION_SEARCH = EF_MIN  # the ef a new graph starts with


def expansion_for(rows: int) -> int:
    """Search-time ef for a bucket of ``rows`` rows."""
    if rows <= EF_BASE_ROWS:
        return EF_MIN
    return min(EF_MAX, int(round(EF_MIN + 32 * math.log2(rows / EF_BASE_ROWS))))


# Rows from which a bucket keeps a second graph (below). Below it a lookup may wait for an add on its graph; above it
# every row is added twice. Measured with 2,000 rows/s of writes, interleaved, load ~2 (docs/cache.md, Scale): at
# 100k entries (12,500-row buckets) one graph did better, 0.163 / 3.5 ms p50 / p99 with writes against 0.256 / 4.7 ms
# with two (the second graph's adds cost more CPU than the short waits they save); at 1M (125,000-row buckets) two
# graphs held 0.41 / 4.5 ms where one had held 0.41 / 8.1 ms (an earlier run, load ~4). Between the two sizes, evidence
# is thin; 65,536 splits them.
TWIN_MIN_ROWS = 65_536


class BucketANN:
    """The graphs of one bucket. The event loop stages adds and removes; the writer applies them in batches.
    ``pending`` holds the ids staged or being added, which searches score exactly meanwhile.

    A small graph is written in place under ``_search_lock`` (a lookup may wait for the add in progress). Once it
    holds ``twin_rows`` rows (None: never) the writer copies it, and from then on two graphs hold the same rows:
    lookups search ``front`` only, the writer applies a batch to the other one, publishes it as ``front`` and then
    applies the same batch to the graph it replaced. A search therefore never meets an add in progress (usearch
    makes a search wait for the whole add call on the same graph: 502 ms behind a 3,000-row add), and neither graph
    is searched while it grows. The price: every row added twice and kept twice, ~680 bytes a row for the second
    graph (int8, M 16), and one copy when the bucket crosses ``twin_rows``, which holds the GIL (~0.5 us a row:
    ~35 ms at 65,536 rows; docs/cache.md, Scale)."""

    def __init__(self, dimension: int, *, twin_rows: int | None = TWIN_MIN_ROWS) -> None:
        self.dimension = dimension
        self.twin_rows = twin_rows
        self.front: Any = None  # the graph lookups search; replaced whole by the writer, never written while front
        self._back: Any = None  # the writer's graph (twin only): ``front`` minus nothing once a flush returns
        # rows staged or being added, with their vectors in one matrix, scored exactly beside the graph search
        self._pmat = np.zeros((64, dimension), np.float32)
        self._pid = np.zeros(64, np.uint64)
        self._prow: dict[int, int] = {}
        self.ready = False  # True once the first batch (the build) is in a published graph
        self.lock = threading.Lock()  # guards the staging area between the loop and the writer
        # held by a search for its duration: after publishing a new front the writer takes it once, so that a
        # search still reading the old front finishes before the writer adds to it
        self._search_lock = threading.Lock()
        self._staged: dict[int, np.ndarray] = {}
        self._removed: set[int] = set()
        self._scheduled = False

    @property
    def index(self) -> Any:
        """The graph lookups search (None before the build)."""
        return self.front

    def _new_graph(self) -> Any:
        from usearch.index import Index

        return Index(ndim=self.dimension, metric="ip", dtype="i8", connectivity=CONNECTIVITY,
                     expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)

    def search(self, q: np.ndarray, k: int) -> np.ndarray:
        with self._search_lock:
            g = self.front
            n = 0 if g is None else len(g)
            if n == 0:
                return np.zeros(0, np.uint64)
            ef = expansion_for(n)
            if ef != g.expansion_search:
                g.expansion_search = ef
            return np.asarray(g.search(q, k, threads=1).keys, np.uint64).reshape(-1)

    @property
    def pending(self) -> set[int]:
        with self.lock:
            return set(self._prow)

    def pending_nearest(self, q: np.ndarray, k: int) -> list[int]:
        """The ``k`` pending rows nearest to ``q``, exactly (one product over the pending matrix)."""
        with self.lock:
            n = len(self._prow)
            if n <= k:
                return self._pid[:n].tolist()
            sims = self._pmat[:n] @ q
            return self._pid[np.argpartition(-sims, k - 1)[:k]].tolist()

    def _p_add(self, i: int, v: np.ndarray) -> None:  # under self.lock
        r = self._prow.get(i)
        if r is None:
            r = len(self._prow)
            if r == len(self._pid):
                self._pmat = np.concatenate([self._pmat, np.zeros_like(self._pmat)])
                self._pid = np.concatenate([self._pid, np.zeros_like(self._pid)])
            self._prow[i] = r
            self._pid[r] = i
        self._pmat[r] = v

    def _p_del(self, i: int) -> None:  # under self.lock: the last row moves into the hole
        r = self._prow.pop(i, None)
        if r is None:
            return
        last = len(self._prow)
        if r != last:
            self._pmat[r], self._pid[r] = self._pmat[last], self._pid[last]
            self._prow[int(self._pid[r])] = r
        if len(self._pid) > 64 and last * 4 < len(self._pid):  # a backlog drained: hand its matrix back
            keep = max(64, len(self._pid) // 2)
            self._pmat, self._pid = self._pmat[:keep].copy(), self._pid[:keep].copy()

    # event loop: O(1), returns True when the caller must schedule a flush on the writer
    def stage_add(self, ids: np.ndarray, vecs: np.ndarray) -> bool:
        with self.lock:
            for i, v in zip(ids.tolist(), vecs):
                self._staged[i] = v
                self._removed.discard(i)
                self._p_add(i, v)
            return self._schedule()

    def stage_remove(self, entry_id: int) -> bool:
        with self.lock:
            self._p_del(entry_id)
            if self._staged.pop(entry_id, None) is not None:
                return False
            self._removed.add(entry_id)
            return self._schedule()

    def _schedule(self) -> bool:
        if self._scheduled:
            return False
        self._scheduled = True
        return True

    # writer thread
    @staticmethod
    def _apply(g: Any, ids: np.ndarray, vecs: np.ndarray, removed: set[int]) -> None:
        if len(ids):
            fresh = ~np.asarray(g.contains(ids), bool).reshape(-1)
            if fresh.any():
                g.add(ids[fresh], vecs[fresh], threads=1)  # one core: the other serves the event loop
        for i in removed:
            if g.contains(i):
                g.remove(i)

    def _done(self, staged: dict[int, np.ndarray]) -> None:
        """The staged rows are in the front graph now: no longer pending (unless staged again since)."""
        with self.lock:
            for i in staged:
                if i not in self._staged:
                    self._p_del(i)
        self.ready = True

    def flush(self) -> None:
        with self.lock:
            staged, self._staged = self._staged, {}
            removed, self._removed = self._removed, set()
            self._scheduled = False
        ids = np.fromiter(staged.keys(), np.uint64, len(staged))
        # usearch quantizes to the graph's int8
        vecs = np.stack(list(staged.values()), dtype=np.float32) if staged else np.zeros((0, self.dimension),
                                                                                           np.float32)
        if self._back is None:
            with self._search_lock:  # searches wait for the add: the graph must not grow under them
                if self.front is None:
                    self.front = self._new_graph()
                self._apply(self.front, ids, vecs, removed)
            self._done(staged)
            if self.twin_rows is not None and len(self.front) >= self.twin_rows:
                self._back = self.front.copy()  # the one-off copy (holds the GIL); two graphs from now on
            return
        g = self._back
        self._apply(g, ids, vecs, removed)
        old, self.front = self.front, g  # published: the next search reads g
        with self._search_lock:  # a search that read the old front before the swap is over now
            pass
        self._done(staged)
        self._back = old  # the replaced graph takes the same batch, off the lookups' path
        self._apply(old, ids, vecs, removed)


def _malloc_trim() -> Callable[[], None] | None:
    """glibc's ``malloc_trim(0)``, or None elsewhere (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: fn(0)


TRIM_INTERVAL_S = 5.0
# Niceness the writer adds to its own thread. The graph's adds run outside the GIL, so under load they compete with
# the event loop for the cores, and with the process's threads scheduled as one group (autogroup, or a container's
# cgroup) every core-second the writer takes is one the lookups lose. Niced, it takes what the loop leaves idle; a
# writer that falls behind only lengthens ``pending``, which lookups score by brute force. Evidence is thin: on a
# 200,000-entry tier under 2,000 rows/s, load ~4, lookup p50 went 0.49 -> 0.61 ms with the writer at the loop's
# priority and 0.40 -> 0.42 ms with it niced, in two separate runs; at load ~1.3 (cores to spare) alternating the
# two in one run made no difference (0.44 / 3.6 ms p50 / p99 either way). The benchmarks run at nice 19, where the
# writer cannot go lower, so their rows do not show it.
# In buckets past TWIN_MIN_ROWS lookups no longer wait for the writer's adds (BucketANN's two graphs): before, a graph
# search waited while an add call ran on the same graph (lookup p99 0.57 ms without writes, 8.1 ms with 2,000 rows/s,
# a million entries).
WRITER_NICE = 10


def lower_thread_priority(step: int) -> bool:
    """Add ``step`` to the calling thread's niceness (Linux, where niceness is per thread). False where it is not
    possible; never raises."""
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + step))
    except OSError:
        return False
    return True


class AnnWriter:
    """One daemon thread applying graph writes in order. ``submit`` never blocks.

    When its queue runs dry after a burst of writes (at most every ``TRIM_INTERVAL_S``) it hands the heap's free
    pages back to the system: graph growth and the batches it copies leave freed memory scattered between the
    tier's long-lived entries, which glibc keeps resident otherwise (measured on a 100k-entry tier: 489 -> 423 MB
    RSS). The trim runs here, never on the event loop."""

    def __init__(self) -> None:
        self._q: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self._trim = _malloc_trim()
        self._last_trim = 0.0

    def submit(self, fn: Callable[[], None]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hot-ann-writer", daemon=True)
            self._thread.start()
        self._q.put(fn)

    def _run(self) -> None:
        lower_thread_priority(WRITER_NICE)
        while True:
            fn = self._q.get()
            if fn is None:
                return
            try:
                fn()
            except Exception:  # pragma: no cover - a failed write leaves the id pending: still found by brute force
                self.errors += 1
            if self._trim is not None and self._q.empty() and time.monotonic() - self._last_trim >= TRIM_INTERVAL_S:
                self._trim()
                self._last_trim = time.monotonic()

    def drain(self, timeout_s: float = 30.0) -> None:
        """Wait until every write submitted so far is applied (tests, benchmarks)."""
        if self._thread is None:
            return
        done = threading.Event()
        self._q.put(done.set)
        done.wait(timeout_s)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop after the writes already submitted, and wait for that (blocking: call it off the event loop). A
        daemon thread killed at interpreter exit in the middle of a native graph add aborts the process
        ("terminate called without an active exception")."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout_s)
            self._thread = None
