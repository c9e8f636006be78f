"""`router-extproc cache stats|clear [--scope S]` on a Milvus Lite file."""

import numpy as np

from router_extproc.cache import SemanticCache, build_key
from router_extproc.cache.admin import cache_clear, cache_stats, resolve_scope
from router_extproc.config_cache import MilvusConfig, SemanticCacheConfig

DIM = 8


def cfg_for(tmp_path):
    return SemanticCacheConfig(enabled=True, backend_type="milvus",
                               milvus=MilvusConfig(uri=str(tmp_path / "c.db"), flush_interval_ms=10))


def completion():
    return {"object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


def test_a_scope_is_given_as_an_id_or_as_the_raw_header_value():
    cfg = SemanticCacheConfig()
    key = build_key({"messages": [{"role": "user", "content": "hi"}]}, "m", {"authorization": "Bearer t"}, cfg)
    assert resolve_scope("Bearer t", cfg) == key.scope
    assert resolve_scope(key.scope, cfg) == key.scope
    assert resolve_scope("anon", cfg) == "anon" and resolve_scope(None, cfg) is None


async def test_stats_and_clear_by_tenant_on_a_stopped_routers_file(tmp_path):
    cfg = cfg_for(tmp_path)
    c = SemanticCache.from_config(cfg, dimension=DIM, verifier_path=None)
    await c.start()
    for i, tenant in enumerate(["Bearer a", "Bearer b", "Bearer b"]):
        k = build_key({"messages": [{"role": "user", "content": f"q{i}"}]}, "m", {"authorization": tenant}, cfg)
        c.store(k, np.eye(DIM, dtype=np.float32)[i], completion())
    await c.close()

    s = await cache_stats(cfg, dimension=DIM)
    assert s["entries"] == 3 and s["available"] and s["backend"] == "milvus"
    assert await cache_clear(cfg, "Bearer b", dimension=DIM) == 2
    assert (await cache_stats(cfg, dimension=DIM))["entries"] == 1
    assert await cache_clear(cfg, dimension=DIM) == 1
