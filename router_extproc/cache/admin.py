"""``router-extproc cache stats|clear [--scope S]``: the work behind the CLI commands.

``--scope`` accepts a scope id as stored (32 hex characters, or ``anon``) or the raw value of the scope header
(e.g. ``"Bearer sk-..."``), which is hashed the way the router hashes it. Milvus Lite allows one process per
database file: run these while the router is stopped (or point them at a Milvus server).
"""

from __future__ import annotations

import re

from router_extproc.cache.keys import scope_of
from router_extproc.cache.service import SemanticCache
from router_extproc.config_cache import SemanticCacheConfig

__all__ = ["resolve_scope", "cache_stats", "cache_clear"]

_SCOPE_ID = re.compile(r"^(anon|[0-9a-f]{32})$")


def resolve_scope(value: str | None, cfg: SemanticCacheConfig) -> str | None:
    if value is None:
        return None
    if _SCOPE_ID.match(value):
        return value
    return scope_of({cfg.scope_headers[0]: value}, cfg.scope_headers[:1])


async def _with_cache(cfg: SemanticCacheConfig, dimension: int, fn):
    cache = SemanticCache.from_config(cfg, dimension=dimension, verifier_path=None)
    await cache.start()
    try:
        return await fn(cache)
    finally:
        await cache.close()


async def cache_stats(cfg: SemanticCacheConfig, *, dimension: int = 384) -> dict:
    return await _with_cache(cfg, dimension, lambda c: c.stats())


async def cache_clear(cfg: SemanticCacheConfig, scope: str | None = None, *, dimension: int = 384) -> int:
    s = resolve_scope(scope, cfg)
    return await _with_cache(cfg, dimension, lambda c: c.clear(s))
