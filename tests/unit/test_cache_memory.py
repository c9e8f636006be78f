"""The in-process vector index: nearest entries within one tenant and filter, TTL, and eviction policies."""

import time

import numpy as np
import pytest

from router_extproc.cache.base import Entry
from router_extproc.cache.memory import MemoryIndex

DIM = 8


def vec(*xs):
    v = np.zeros(DIM, np.float32)
    v[: len(xs)] = xs
    return v / np.linalg.norm(v)


def entry(i, v, scope="s1", fk="f1", fp=None, expires=1e12):
    return Entry(id=i, scope=scope, filter_key=fk, fingerprint=fp or f"fp{i}", text=f"t{i}", embedding=v,
                 response="{}", created_at=0.0, expires_at=expires)


def search(ix, v, scope="s1", fk="f1", now=1.0, k=4, floor=0.5):
    return ix.search(scope, fk, v, top_k=k, min_similarity=floor, now=now)


def test_search_returns_the_nearest_entries_first():
    ix = MemoryIndex(DIM, 10)
    ix.add(entry(1, vec(1, 0)), now=0)
    ix.add(entry(2, vec(1, 0.3)), now=0)
    ix.add(entry(3, vec(0, 1)), now=0)
    got = search(ix, vec(1, 0.05))
    assert [c.entry.id for c in got] == [1, 2]
    assert got[0].similarity > got[1].similarity > 0.5


def test_entries_of_another_tenant_or_filter_are_invisible():
    ix = MemoryIndex(DIM, 10)
    ix.add(entry(1, vec(1, 0), scope="tenant-b"), now=0)
    ix.add(entry(2, vec(1, 0), fk="other-model"), now=0)
    assert search(ix, vec(1, 0)) == []


def test_expired_entries_are_never_returned_and_are_deleted():
    ix = MemoryIndex(DIM, 10)
    ix.add(entry(1, vec(1, 0), expires=10.0), now=0)
    assert search(ix, vec(1, 0), now=5) and ix.get_exact("s1", "fp1", 5)
    assert search(ix, vec(1, 0), now=11) == [] and ix.get_exact("s1", "fp1", 11) is None
    assert ix.delete_expired(11) == 1 and len(ix) == 0


def test_exact_lookup_finds_the_fingerprint_within_the_scope_only():
    ix = MemoryIndex(DIM, 10)
    ix.add(entry(1, vec(1, 0), fp="abc"), now=0)
    assert ix.get_exact("s1", "abc", 1).id == 1
    assert ix.get_exact("s2", "abc", 1) is None


def test_storing_the_same_fingerprint_again_replaces_the_entry():
    ix = MemoryIndex(DIM, 10)
    ix.add(entry(1, vec(1, 0), fp="abc"), now=0)
    ix.add(entry(2, vec(1, 0), fp="abc"), now=0)
    assert len(ix) == 1 and ix.get_exact("s1", "abc", 1).id == 2


def fill(policy):
    ix = MemoryIndex(DIM, 3, policy)
    for i in (1, 2, 3):
        ix.add(entry(i, vec(1, i)), now=0)
    return ix


def ids(ix):
    return sorted(e.id for e in ix.entries())


def test_fifo_evicts_the_oldest_insert():
    ix = fill("fifo")
    ix.get_exact("s1", "fp1", 1)  # a hit does not save it under fifo
    ix.add(entry(4, vec(1, 4)), now=0)
    assert ids(ix) == [2, 3, 4] and ix.evictions == 1


def test_lru_evicts_the_least_recently_served():
    ix = fill("lru")
    ix.get_exact("s1", "fp1", 1)
    ix.add(entry(4, vec(1, 4)), now=0)
    assert ids(ix) == [1, 3, 4]


def test_lfu_evicts_the_least_often_served():
    ix = fill("lfu")
    for _ in range(3):
        ix.get_exact("s1", "fp1", 1)
    ix.get_exact("s1", "fp3", 1)
    ix.add(entry(4, vec(1, 4)), now=0)
    assert ids(ix) == [1, 3, 4]


def test_an_expired_entry_is_evicted_before_any_live_one():
    ix = MemoryIndex(DIM, 2, "lru")
    ix.add(entry(1, vec(1, 0)), now=0)
    ix.add(entry(2, vec(0, 1), expires=5), now=0)
    ix.add(entry(3, vec(1, 1)), now=10)
    assert ids(ix) == [1, 3]


def test_never_more_than_max_entries():
    ix = MemoryIndex(DIM, 50, "fifo")
    rng = np.random.default_rng(0)
    for i in range(500):
        ix.add(entry(i, rng.normal(size=DIM).astype(np.float32)), now=0)
    assert len(ix) == 50 and ids(ix) == list(range(450, 500))


def test_clear_by_scope_leaves_other_tenants():
    ix = MemoryIndex(DIM, 10)
    ix.add(entry(1, vec(1, 0), scope="a"), now=0)
    ix.add(entry(2, vec(1, 0), scope="b"), now=0)
    assert ix.clear("a") == 1 and ids(ix) == [2]


def test_a_wrong_dimension_is_refused():
    ix = MemoryIndex(DIM, 10)
    with pytest.raises(ValueError):
        ix.add(entry(1, np.ones(DIM + 1, np.float32)), now=0)
    assert len(ix) == 0


# ---------------------------------------------------------------- the graph index of large buckets
W = 64  # wider vectors: a graph over 8 dimensions would be a poor test of recall


def rand(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, W)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def big_index(n, ann_min_rows=500, twin_rows=0):
    pytest.importorskip("usearch")
    ix = MemoryIndex(W, n + 100, ann_min_rows=ann_min_rows, ann_twin_rows=twin_rows)
    for i, v in enumerate(rand(n)):
        ix.add(entry(i + 1, v), now=0)
    ix.drain()
    return ix


def test_a_large_bucket_is_searched_through_a_graph_with_the_same_answers_as_brute_force():
    n = 3000
    ix = big_index(n)
    brute = MemoryIndex(W, n + 100, ann_min_rows=None)
    for e in ix.entries():
        brute.add(e, now=0)
    assert ix._ann[("s1", "f1")].ready
    qs = rand(50, seed=7) * 0.3 + rand(n)[:50]  # near existing rows, as real repeats are
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    agree = 0
    for q in qs:
        a = [(c.entry.id, round(c.similarity, 5)) for c in search(ix, q, floor=-1)]
        b = [(c.entry.id, round(c.similarity, 5)) for c in search(brute, q, floor=-1)]
        agree += a[0] == b[0]
        assert len(a) == 4
    assert agree >= 49  # the best candidate (what the verifier reads) with its exact fp32 similarity


def test_rows_the_graph_writer_has_not_indexed_yet_are_still_found():
    ix = big_index(1000)
    v = rand(1, seed=99)[0]
    ix.add(entry(5000, v), now=0)  # no drain: maybe still queued for the writer
    assert search(ix, v)[0].entry.id == 5000


def test_removed_and_evicted_rows_leave_the_graph_results():
    ix = big_index(1000)
    v = ix.entries()[10].embedding
    victim = ix.entries()[10].id
    assert ix.remove_ids([victim]) == 1
    assert all(c.entry.id != victim for c in search(ix, v, floor=-1))
    ix.drain()
    assert all(c.entry.id != victim for c in search(ix, v, floor=-1))


def test_a_slot_reused_by_another_tenant_never_leaks_through_the_graph():
    ix = big_index(600)
    v = ix.entries()[0].embedding
    ix.remove_ids([ix.entries()[0].id])
    ix.add(entry(9999, v, scope="tenant-b"), now=0)  # likely takes the freed slot
    assert all(c.entry.scope == "s1" for c in search(ix, v, floor=-1))
    assert search(ix, v, scope="tenant-b")[0].entry.id == 9999


def test_clearing_a_scope_drops_its_graph():
    ix = big_index(600)
    assert ix.clear("s1") == 600 and not ix._ann
    assert search(ix, rand(1)[0], floor=-1) == []


def test_the_graph_writer_hands_freed_memory_back_once_per_burst_not_per_write():
    from router_extproc.cache.ann import AnnWriter

    w = AnnWriter()
    trims = []
    w._trim = lambda: trims.append(time.monotonic())
    for _ in range(200):
        w.submit(lambda: None)
    w.drain()
    deadline = time.monotonic() + 2.0
    while not trims and time.monotonic() < deadline:  # the trim follows the burst's last write
        time.sleep(0.01)
    for _ in range(200):  # a second burst within the interval: no second trim
        w.submit(lambda: None)
    w.drain()
    w.close()
    assert len(trims) == 1


def test_the_graph_searches_wider_as_its_bucket_grows():
    from router_extproc.cache.ann import EF_BASE_ROWS, EF_MAX, EF_MIN, expansion_for

    assert expansion_for(2048) == expansion_for(EF_BASE_ROWS) == EF_MIN
    sizes = [EF_BASE_ROWS * 2 ** k for k in range(8)]
    efs = [expansion_for(n) for n in sizes]
    assert efs == sorted(efs) and efs[1] > EF_MIN  # a doubling of the bucket widens the search
    assert expansion_for(10 ** 9) == EF_MAX


def test_a_graph_search_uses_the_width_its_bucket_size_calls_for():
    from router_extproc.cache.ann import expansion_for

    ix = big_index(600)
    search(ix, rand(1)[0], floor=-1)
    assert ix._ann[("s1", "f1")].index.expansion_search == expansion_for(600)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_the_graph_writer_runs_below_the_event_loops_priority():
    import os
    import threading

    from router_extproc.cache.ann import WRITER_NICE, AnnWriter

    w = AnnWriter()
    seen = []
    w.submit(lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
    w.drain()
    w.close()
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen == [min(19, mine + WRITER_NICE)]  # the caller's own priority is untouched
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


# ---------------------------------------------------------------- live writes beside lookups
def test_the_writer_never_adds_to_the_graph_lookups_are_searching():
    from router_extproc.cache.ann import BucketANN

    ix = big_index(600)
    ann = ix._ann[("s1", "f1")]
    written_while_searched = []
    apply = BucketANN._apply

    def spy(g, ids, vecs, removed):
        written_while_searched.append(g is ann.front)
        apply(g, ids, vecs, removed)

    ann._apply = spy  # the instance attribute shadows the static method for this bucket only
    for i, v in enumerate(rand(300, seed=5)):
        ix.add(entry(10_000 + i, v), now=0)
    ix.remove_ids([1, 2, 3])
    ix.drain()
    assert written_while_searched and not any(written_while_searched)


def test_both_graphs_of_a_bucket_hold_the_same_rows_once_the_writer_is_idle():
    ix = big_index(600)
    for i, v in enumerate(rand(100, seed=6)):
        ix.add(entry(10_000 + i, v), now=0)
    ix.remove_ids([5, 6])
    ix.drain()
    ann = ix._ann[("s1", "f1")]
    assert len(ann.front) == len(ann._back) == 698
    assert not ann.pending
    assert not ann.front.contains(5) and not ann._back.contains(6)


def test_a_row_stored_while_the_writer_is_busy_is_found_at_once():
    ix = big_index(600)
    for i, v in enumerate(rand(2000, seed=8)):  # a burst: the writer is behind for a while
        ix.add(entry(20_000 + i, v), now=0)
    v = rand(1, seed=123)[0]
    ix.add(entry(99_999, v), now=0)
    assert search(ix, v)[0].entry.id == 99_999
    ix.drain()
    assert search(ix, v)[0].entry.id == 99_999


def test_a_small_bucket_keeps_one_graph_and_a_large_one_gets_its_second_once_past_the_threshold():
    pytest.importorskip("usearch")
    one = MemoryIndex(W, 3000, ann_min_rows=500, ann_twin_rows=None)
    two = MemoryIndex(W, 3000, ann_min_rows=500, ann_twin_rows=1000)
    for i, v in enumerate(rand(1200)):
        one.add(entry(i + 1, v), now=0)
        two.add(entry(i + 1, v), now=0)
        if i == 700:
            two.drain()
            assert two._ann[("s1", "f1")]._back is None  # 701 rows: below the threshold, one graph
    one.drain()
    two.drain()
    assert one._ann[("s1", "f1")]._back is None
    ann = two._ann[("s1", "f1")]
    assert ann._back is not None and ann._back is not ann.front
    for i, v in enumerate(rand(50, seed=4)):  # writes after the copy reach both graphs
        one.add(entry(5000 + i, v), now=0)
        two.add(entry(5000 + i, v), now=0)
    one.drain()
    two.drain()
    assert len(ann.front) == len(ann._back) == 1250
    for q in rand(20, seed=3):
        assert [c.entry.id for c in search(one, q, floor=-1)][:1] == [c.entry.id for c in search(two, q, floor=-1)][:1]


def test_rows_not_yet_in_the_graph_are_scored_exactly_and_their_matrix_shrinks_once_indexed():
    from router_extproc.cache.ann import BucketANN

    ann = BucketANN(W)
    vs = rand(1000, seed=11)
    ann.stage_add(np.arange(1, 1001, dtype=np.uint64), vs)
    assert ann.pending_nearest(vs[500], 4)[0] == 501
    ann.stage_remove(501)
    assert 501 not in ann.pending_nearest(vs[500], 4)
    ann.flush()
    assert not ann.pending and len(ann._pid) <= 128


async def test_closing_the_backend_stops_the_graph_writer_after_its_queued_writes():
    # a daemon writer killed at interpreter exit inside a native graph add aborts the process: shutdown stops it
    from router_extproc.cache.memory import MemoryBackend

    backend = MemoryBackend(DIM, 100, "lru")
    backend.index._writer.submit(lambda: None)
    thread = backend.index._writer._thread
    await backend.close()
    assert thread is not None and not thread.is_alive()
    await backend.close()   # idempotent
