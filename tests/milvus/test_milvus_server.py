"""The cache on a real Milvus 2.3 standalone server (`milvus-server` from the `milvus` wheel).

One server per session, started on free ports in a temp dir (~300 MB RAM, ~20-60 s to start). Skipped with a
reason when the `milvus` package or its binary is missing.
"""

import asyncio
import time

import pytest

from router_extproc.cache import SemanticCache, build_key
from router_extproc.config_cache import MilvusConfig, SemanticCacheConfig
from tests.fakes import CACHE_DIM as DIM, cache_request as req, cached_completion as completion, vec  # noqa: F401
from tests.milvus.server import restart

pytestmark = pytest.mark.milvus_server

A = {"authorization": "Bearer a"}
B = {"authorization": "Bearer b"}




def config(server, name, **kw):
    mc = MilvusConfig(uri=f"http://127.0.0.1:{server.listen_port}", collection=name, timeout_s=2.0,
                      flush_interval_ms=10, reconnect_interval_s=0.5, consistency_level="Session")
    kw = {"ttl_seconds": 3600.0, **kw}
    return SemanticCacheConfig(enabled=True, backend_type="milvus", similarity_threshold=0.9, milvus=mc, **kw)


async def make(cfg):
    c = SemanticCache.from_config(cfg, dimension=DIM, verifier_path=None)
    await c.start()
    return c


async def settle(c, timeout=5.0):
    """Until every queued entry is written (a search no longer queues behind an insert: it may overtake it)."""
    t0 = time.monotonic()
    while (c._pending or c.counters.get("stored", 0) < c.counters.get("queued", 0)) and time.monotonic() - t0 < timeout:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)


async def server_lookup(c, k, v):
    """A lookup that must go to Milvus: the in-process tier is emptied first (as in another router)."""
    c.hot.clear()
    return await c.lookup(k, v, k.text)


async def test_store_then_lookup_through_the_server(milvus_server):
    cfg = config(milvus_server, "t_store")
    c = await make(cfg)
    assert c.available
    k = build_key(req("What is the capital of France?"), "m1", A, cfg)
    c.store(k, vec(1), completion())
    await settle(c)
    k2 = build_key(req("capital of France"), "m1", A, cfg)
    hit = await server_lookup(c, k2, vec(1, 0.05))
    assert hit is not None and hit.completion["choices"][0]["message"]["content"] == "Paris."
    times = []
    for i in range(30):
        c.hot.clear()
        t0 = time.perf_counter()
        await c.lookup(k2, vec(1, 0.05), k2.text)
        times.append(time.perf_counter() - t0)
    p50 = sorted(times)[15]
    print(f"milvus server lookup p50 (hot tier empty): {p50 * 1000:.1f} ms")
    assert p50 < 0.1
    await c.close()


async def test_a_second_router_sees_the_first_routers_entries(milvus_server):
    cfg = config(milvus_server, "t_shared")
    r1, r2 = await make(cfg), await make(cfg)
    k = build_key(req("What is the capital of France?"), "m1", A, cfg)
    r1.store(k, vec(1), completion())
    await settle(r1)
    await asyncio.sleep(1.0)  # Session consistency is per client; another client sees it within the bound
    hit = await r2.lookup(k, vec(1), k.text)
    assert hit is not None
    await r1.close()
    await r2.close()


async def test_tenants_are_isolated_on_the_server(milvus_server):
    cfg = config(milvus_server, "t_scope")
    c = await make(cfg)
    ka = build_key(req("What is the capital of France?"), "m1", A, cfg)
    kb = build_key(req("What is the capital of France?"), "m1", B, cfg)
    c.store(ka, vec(1), completion())
    await settle(c)
    assert await server_lookup(c, kb, vec(1)) is None
    assert await server_lookup(c, ka, vec(1)) is not None
    await c.close()


async def test_expired_entries_are_not_served_and_are_deleted(milvus_server):
    cfg = config(milvus_server, "t_ttl", ttl_seconds=0.5)
    c = await make(cfg)
    k = build_key(req("Hi"), "m1", A, cfg)
    c.store(k, vec(1), completion())
    await settle(c)
    assert await server_lookup(c, k, vec(1)) is not None
    await asyncio.sleep(0.7)
    assert await server_lookup(c, k, vec(1)) is None
    assert await c.expire() >= 1
    await c.close()


async def test_killing_the_server_degrades_to_misses_and_restarting_it_reconnects(milvus_server):
    cfg = config(milvus_server, "t_fault")
    c = await make(cfg)
    k = build_key(req("What is the capital of France?"), "m1", A, cfg)
    c.store(k, vec(1), completion())
    await settle(c)
    assert await server_lookup(c, k, vec(1)) is not None

    milvus_server.server_proc.kill()
    milvus_server.server_proc.wait()
    t0 = time.monotonic()
    results = [await server_lookup(c, k, vec(1)) for _ in range(3)]
    assert results == [None, None, None]  # no exception, just misses
    assert not c.available
    assert time.monotonic() - t0 < 10
    c.store(build_key(req("queued while down"), "m1", A, cfg), vec(5), completion())  # never raises

    port = milvus_server.listen_port
    restart(milvus_server)  # same data dir and port
    assert milvus_server.listen_port == port
    deadline = time.monotonic() + 60
    while not c.available and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert c.available, "the cache did not reconnect by itself"
    await settle(c, 10)
    deadline = time.monotonic() + 20
    hit = None
    while hit is None and time.monotonic() < deadline:
        hit = await server_lookup(c, k, vec(1))
        await asyncio.sleep(0.5)
    assert hit is not None  # the entry survived the restart
    await c.close()


async def test_max_entries_holds_on_the_server(milvus_server):
    cfg = config(milvus_server, "t_size", max_entries=50)
    c = await make(cfg)
    for i in range(120):
        c.store(build_key(req(f"question {i}"), "m1", A, cfg), vec(i), completion())
        if i % 20 == 19:
            await settle(c)
    await settle(c)
    await c.enforce_size()
    deadline = time.monotonic() + 5  # a delete shows in count(*) once the query nodes apply it (~a time tick)
    while (await c.stats())["entries"] > 50 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    s = await c.stats()
    assert s["entries"] <= 50 and s["counters"]["evicted"] >= 70
    # the newest stayed: the last question is still served from the server
    k = build_key(req("question 119"), "m1", A, cfg)
    assert await server_lookup(c, k, vec(119)) is not None
    await c.close()


async def test_a_server_candidate_carries_the_exact_stored_vector_read_from_its_copy(milvus_server):
    import numpy as np

    cfg = config(milvus_server, "t_copy")
    c = await make(cfg)
    assert c.backend.copy_field == "embedding_b64"  # created with the copy: searches do not fetch the vector field
    k = build_key(req("How tall is the Eiffel tower?"), "m1", A, cfg)
    stored = c._normalize(vec(3))
    c.store(k, vec(3), completion())
    await settle(c)
    (cand,) = await c.backend.search(k.scope, k.filter_key, stored, top_k=4, min_similarity=0.5, now=time.time())
    assert np.array_equal(cand.entry.embedding, stored)
    await c.close()


def bulk_entries(n, dim=DIM, seed=0):
    import numpy as np

    from router_extproc.cache.base import Entry

    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    now = time.time()
    return [Entry(id=i + 1, scope=f"{i % 4:032x}", filter_key="fk", fingerprint=f"fp{i}", text=f"question {i}",
                  embedding=v[i], response='{"n": %d}' % i, created_at=now, expires_at=now + 3600) for i in range(n)]


@pytest.mark.parametrize("index_after", [False, True])
async def test_a_bulk_load_is_searchable_and_indexed_when_it_returns(milvus_server, index_after):
    import numpy as np

    cfg = config(milvus_server, f"t_bulk_{int(index_after)}")
    c = await make(cfg)
    es = bulk_entries(3000)
    took = await c.backend.bulk_insert(es, batch_rows=700, index_after=index_after, timeout_s=300)
    assert took["rows"] == 3000 and took["insert_s"] > 0
    assert await c.backend.count() == 3000
    desc = await c.backend._call(lambda: c.backend._client.describe_index(
        cfg.milvus.collection, c.backend._client.list_indexes(cfg.milvus.collection, field_name="embedding")[0]))
    assert desc["index_type"] == cfg.milvus.index_type and int(desc.get("pending_index_rows", 0)) == 0
    for e in es[::500]:  # every row findable by its own vector, in its own tenant, with the exact stored vector
        (best, *_) = await c.backend.search(e.scope, "fk", e.embedding, top_k=4, min_similarity=0.5, now=time.time())
        assert best.entry.id == e.id and np.array_equal(best.entry.embedding, e.embedding)
    await c.close()
