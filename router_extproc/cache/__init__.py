"""Semantic cache: exact and semantic lookups, verified hits, Milvus/in-memory backends, stream replay.

The server uses :class:`SemanticCache` (``service.py``), :func:`build_key` / :func:`decide_policy` (``keys.py``)
and the SSE helpers in ``replay.py``. See docs/cache.md.
"""

from router_extproc.cache.base import CacheMetrics, NoopMetrics
from router_extproc.cache.keys import CacheKey, CachePolicy, build_key, decide_policy, response_cacheable, scope_of
from router_extproc.cache.replay import assemble_sse, refresh, render_sse
from router_extproc.cache.service import CacheHit, SemanticCache
from router_extproc.config_cache import SemanticCacheConfig

__all__ = [
    "CacheHit",
    "CacheKey",
    "CacheMetrics",
    "CachePolicy",
    "NoopMetrics",
    "SemanticCache",
    "SemanticCacheConfig",
    "assemble_sse",
    "build_key",
    "decide_policy",
    "refresh",
    "render_sse",
    "response_cacheable",
    "scope_of",
]
