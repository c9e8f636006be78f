"""One router replica's cache in its own process, driven line by line over stdin/stdout (JSON).

    python -m tests.milvus.replica_proc <milvus uri> <collection>

Commands: {"op": "store"|"lookup"|"exact"|"clear"|"stats", "q": text, "tenant": name, "seed": int}. The cache
is the router's own ``SemanticCache`` (exact tier, hot tier, Milvus behind them), built as the router builds it.
"""

from __future__ import annotations

import asyncio
import json
import sys

from router_extproc.cache import SemanticCache, build_key
from router_extproc.config_cache import MilvusConfig, SemanticCacheConfig
from tests.fakes import CACHE_DIM as DIM, cached_completion as completion, vec

async def main(uri: str, collection: str) -> None:
    mc = MilvusConfig(uri=uri, collection=collection, timeout_s=5.0, flush_interval_ms=10, reconnect_interval_s=0.5,
                      consistency_level="Bounded", invalidation_poll_s=0.5)
    cfg = SemanticCacheConfig(enabled=True, backend_type="milvus", similarity_threshold=0.9, ttl_seconds=3600,
                              milvus=mc)
    cache = SemanticCache.from_config(cfg, dimension=DIM, verifier_path=None)
    await cache.start()
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": cache.available}), flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd = json.loads(line)
        op = cmd["op"]
        out: dict = {}
        if op in ("store", "lookup", "exact"):
            body = {"messages": [{"role": "user", "content": cmd["q"]}], "temperature": 0.7}
            key = build_key(body, "m1", {"authorization": f"Bearer {cmd['tenant']}"}, cfg)
            if op == "store":
                cache.store(key, vec(cmd["seed"]), completion(cmd.get("answer", cmd["q"])))
                while cache._pending or cache.counters.get("stored", 0) < cache.counters.get("queued", 0):
                    await asyncio.sleep(0.01)  # written to Milvus before the next command
            elif op == "exact":
                hit = cache.exact_lookup(key)
                out["hit"] = None if hit is None else hit.completion["choices"][0]["message"]["content"]
            else:
                hit = cache.exact_lookup(key) or await cache.lookup(key, vec(cmd["seed"], cmd.get("noise", 0.0)),
                                                                    key.text)
                out["hit"] = None if hit is None else hit.completion["choices"][0]["message"]["content"]
            out["scope"] = key.scope
        elif op == "clear":
            out["cleared"] = await cache.clear(cmd.get("scope"))
        elif op == "stats":
            out = await cache.stats()
        print(json.dumps(out, default=str), flush=True)
    await cache.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
