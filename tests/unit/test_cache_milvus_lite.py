"""The Milvus backend on embedded Milvus Lite (a file in a temp dir): durable, scoped, expiring, never blocking."""

import asyncio
import dataclasses
import time

import numpy as np
import pytest

from router_extproc.cache import SemanticCache
from router_extproc.cache.base import Entry, new_id
from router_extproc.cache.milvus import DimensionMismatch, MilvusBackend
from router_extproc.config_cache import MilvusConfig, SemanticCacheConfig
from tests.fakes import CACHE_DIM as DIM, CACHE_TENANT, cache_key, cached_completion as completion, vec

pytest.importorskip("milvus_lite")

A = CACHE_TENANT
B = {"authorization": "Bearer b"}


def cfg_for(tmp_path, **kw):
    mc = MilvusConfig(uri=str(tmp_path / "data/cache/milvus.db"), flush_interval_ms=10, reconnect_interval_s=0.2)
    return SemanticCacheConfig(enabled=True, backend_type="milvus", similarity_threshold=0.9, ttl_seconds=3600,
                               milvus=mc, **kw)


async def make(cfg):
    c = SemanticCache.from_config(cfg, dimension=DIM, verifier_path=None)
    await c.start()
    return c


async def holding(cfg, *tenants):
    """A started cache that has written the same question's answer to Milvus for each tenant (A by default);
    the cache and the keys."""
    c = await make(cfg)
    keys = [cache_key("What is the capital of France?", cfg, t) for t in tenants or (A,)]
    for k in keys:
        c.store(k, vec(1), completion())
    await asyncio.sleep(0.2)  # the flusher writes them
    return c, keys


async def test_the_database_file_and_its_directories_are_created(tmp_path):
    c = await make(cfg_for(tmp_path))
    assert c.available and (tmp_path / "data/cache").is_dir()
    await c.close()


async def test_the_cache_still_answers_after_a_router_restart(tmp_path):
    cfg = cfg_for(tmp_path)
    c = await make(cfg)
    k = cache_key("What is the capital of France?", cfg)
    c.store(k, vec(1), completion())
    await c.close()  # flushes pending inserts

    c2 = await make(cfg)
    assert c2.exact_lookup(k) is not None  # warmed from the file
    k2 = cache_key("capital of France?", cfg)
    hit = await c2.lookup(k2, vec(1, 0.05), k2.text)
    assert hit is not None and hit.completion["choices"][0]["message"]["content"] == "Paris."
    await c2.close()


async def test_milvus_is_searched_when_the_hot_tier_does_not_hold_the_entry(tmp_path):
    cfg = cfg_for(tmp_path)
    c, (k,) = await holding(cfg)
    assert (await c.stats())["entries"] == 1
    c.hot.clear()  # as if another router had stored it
    c._hot_complete = False
    hit = await c.lookup(k, vec(1), k.text)
    assert hit is not None and c.exact_lookup(k) is not None  # and it is now hot
    await c.close()


async def test_milvus_search_is_scoped_to_the_tenant_and_filter(tmp_path):
    b = MilvusBackend(MilvusConfig(uri=str(tmp_path / "m.db")), DIM)
    await b.start()
    now = time.time()
    await b.insert([Entry(new_id(), "tenant_a", "f1", "fp1", "t", vec(1), "{}", now, now + 100),
                    Entry(new_id(), "tenant_b", "f1", "fp2", "t", vec(1), "{}", now, now + 100),
                    Entry(new_id(), "tenant_a", "f2", "fp3", "t", vec(1), "{}", now, now + 100)])
    got = await b.search("tenant_a", "f1", vec(1), top_k=10, min_similarity=0.5, now=now)
    assert [c.entry.fingerprint for c in got] == ["fp1"] and got[0].similarity > 0.99
    assert np.allclose(got[0].entry.embedding, vec(1), atol=1e-5)
    await b.close()


async def test_expired_rows_are_not_returned_and_are_deleted(tmp_path):
    b = MilvusBackend(MilvusConfig(uri=str(tmp_path / "m.db")), DIM)
    await b.start()
    now = time.time()
    await b.insert([Entry(new_id(), "s", "f", "old", "t", vec(1), "{}", now - 10, now - 1),
                    Entry(new_id(), "s", "f", "new", "t", vec(1), "{}", now, now + 100)])
    got = await b.search("s", "f", vec(1), top_k=10, min_similarity=0.5, now=now)
    assert [c.entry.fingerprint for c in got] == ["new"]
    assert await b.delete_expired(now) == 1 and await b.count() == 1
    await b.close()


async def test_clear_removes_one_tenant_or_everything(tmp_path):
    cfg = cfg_for(tmp_path)
    c = await make(cfg)
    for i, h in enumerate((A, B, B)):
        c.store(cache_key(f"q{i}", cfg, h), vec(i), completion())
    await asyncio.sleep(0.2)
    ka = cache_key("q0", cfg)
    assert await c.clear(ka.scope) == 1
    assert (await c.stats())["entries"] == 2
    assert await c.clear() == 2
    await c.close()


async def test_a_collection_with_another_dimension_is_a_clear_error(tmp_path):
    mc = MilvusConfig(uri=str(tmp_path / "m.db"))
    b = MilvusBackend(mc, DIM)
    await b.start()
    await b.close()
    b2 = MilvusBackend(mc, DIM * 2)
    with pytest.raises(DimensionMismatch, match="dimension 16 but the embedding model gives 32"):
        await b2.start()
    await b2.close()


async def test_an_unreachable_milvus_serves_uncached_and_never_raises(tmp_path):
    mc = MilvusConfig(uri="http://127.0.0.1:1", timeout_s=0.5, reconnect_interval_s=0.2)
    cfg = dataclasses.replace(cfg_for(tmp_path), milvus=mc)
    c = await make(cfg)
    assert not c.available
    k = cache_key("Hi", cfg)
    t0 = time.perf_counter()
    assert await c.lookup(k, vec(1), k.text) is None
    assert time.perf_counter() - t0 < 0.05
    c.store(k, vec(2), completion())  # kept in-process, queued for Milvus
    s = await c.stats()
    assert s["available"] is False and s["pending_inserts"] == 1 and s["last_error"]
    await c.close()


async def test_lite_lookup_latency_at_a_few_thousand_rows(tmp_path):
    """Not a benchmark: a guard that a Milvus Lite search stays in the low milliseconds."""
    b = MilvusBackend(MilvusConfig(uri=str(tmp_path / "m.db"), insert_batch_size=500), DIM)
    await b.start()
    rng = np.random.default_rng(0)
    now = time.time()
    for s in range(0, 2000, 500):
        await b.insert([Entry(new_id(), "s", "f", f"fp{i}", "t", rng.normal(size=DIM).astype(np.float32), "{}",
                              now, now + 1000) for i in range(s, s + 500)])
    times = []
    for i in range(30):
        t0 = time.perf_counter()
        await b.search("s", "f", vec(i), top_k=4, min_similarity=-1, now=now)
        times.append(time.perf_counter() - t0)
    p50 = sorted(times)[len(times) // 2]
    print(f"milvus lite search p50 at 2000 rows: {p50 * 1000:.1f} ms")
    assert p50 < 0.1
    await b.close()


def entries(n, start=0, t0=1000.0, scope="s"):
    """n rows created one second apart from ``t0`` (the order eviction keeps)."""
    return [Entry(new_id(), scope, "f", f"fp{i}", "t", vec(i), "{}", t0 + i, time.time() + 1000)
            for i in range(start, start + n)]


async def test_max_entries_holds_on_milvus_by_deleting_the_oldest_rows_in_one_batch(tmp_path):
    b = MilvusBackend(MilvusConfig(uri=str(tmp_path / "m.db"), insert_batch_size=500), DIM)
    await b.start()
    await b.insert(entries(120))
    await b.flush_if_idle(0.0)
    assert await b.enforce_size(200) == (120, 0)  # under the bound: nothing deleted
    before, deleted = await b.enforce_size(100, low_water=80)
    assert before == 120 and 40 <= deleted <= 50  # down to the low-water mark, within the bisection's slack
    left = await b._call(lambda: b._client.query(b.cfg.collection, filter="id != 0", output_fields=["created_at"]))
    oldest_kept = min(r["created_at"] for r in left)
    assert oldest_kept == 1000.0 + deleted  # exactly the oldest went, the newest stayed
    await b.close()


async def test_the_cache_keeps_milvus_at_max_entries_as_it_stores(tmp_path):
    cfg = cfg_for(tmp_path, max_entries=40)
    c = await make(cfg)
    for i in range(100):
        c.store(cache_key(f"question {i}", cfg), vec(i), completion())
        if i % 10 == 9:
            await asyncio.sleep(0.05)  # let the flusher write and check the size
    await asyncio.sleep(0.2)
    await c.enforce_size()
    s = await c.stats()
    assert s["entries"] <= 40 and s["counters"]["evicted"] >= 60
    await c.close()


async def test_a_clear_is_stamped_so_that_other_routers_drop_their_copies(tmp_path):
    cfg = cfg_for(tmp_path)
    c, (k,) = await holding(cfg)
    await c.clear(k.scope)
    marks = await c.backend.read_clears()
    assert set(marks) == {k.scope} and marks[k.scope] <= time.time()
    await c.clear()
    assert set(await c.backend.read_clears()) == {k.scope, "*"}
    await c.close()


async def test_a_router_that_learns_of_a_clear_drops_the_scope_and_never_serves_older_rows(tmp_path):
    cfg = cfg_for(tmp_path)
    c, (ka, kb) = await holding(cfg, A, B)
    # another router cleared tenant A: its stamp arrives by the poll; Milvus still holds A's row here
    assert c.apply_clears({ka.scope: time.time()}) == 1
    assert c.exact_lookup(ka) is None and c.exact_lookup(kb) is not None
    c._hot_complete = False
    assert await c.lookup(ka, vec(1), ka.text) is None  # the row Milvus returns is older than the clear
    c.hot.clear()
    assert await c.lookup(kb, vec(1), kb.text) is not None  # tenant B untouched
    c.store(ka, vec(1), completion("Paris, again."))  # stored after the clear: served
    assert c.exact_lookup(ka) is not None
    assert c.apply_clears({ka.scope: 1.0}) == 0  # an old stamp changes nothing
    await c.close()


async def test_lite_past_its_crossover_warns_in_the_log_and_a_metric(tmp_path, caplog):
    class Rows:
        seen = None

        def __getattr__(self, name):
            return lambda *a: None

        def backend_rows(self, rows, over):
            self.seen = (rows, over)

    mc = MilvusConfig(uri=str(tmp_path / "m.db"), flush_interval_ms=10, lite_warn_rows=5)
    cfg = SemanticCacheConfig(enabled=True, backend_type="milvus", similarity_threshold=0.9, milvus=mc)
    metrics = Rows()
    c = SemanticCache.from_config(cfg, dimension=DIM, verifier_path=None, metrics=metrics)
    await c.start()
    for i in range(8):
        c.store(cache_key(f"q{i}", cfg), vec(i), completion())
    await asyncio.sleep(0.2)
    with caplog.at_level("WARNING"):
        await c.enforce_size()
    assert metrics.seen == (8, True)
    assert "Milvus Lite holds 8 rows" in caplog.text and "uri: http://" in caplog.text
    await c.close()


async def test_old_stamps_read_after_a_restart_keep_what_was_stored_since(tmp_path):
    cfg = cfg_for(tmp_path)
    c = await make(cfg)
    k = cache_key("What is the capital of France?", cfg)
    cleared_long_ago = time.time() - 60
    c.store(k, vec(1), completion())
    assert c.apply_clears({k.scope: cleared_long_ago, "*": cleared_long_ago}) == 0
    assert c.exact_lookup(k) is not None
    await c.close()
