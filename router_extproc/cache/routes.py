"""Literal repeats skip the signal pass.

The full request path embeds and classifies the prompt (several milliseconds of CPU) before it can build the
cache key, because the key names the *chosen* model. For a request that is byte-for-byte the same as an earlier
one (same tenant, same body apart from ``stream``) the decision is the same: ``decide`` is a pure function of
the config, the body and the signals, and the signals are a pure function of the text. So the router remembers,
per literal request, the decision and cache key the full path produced, and answers a literal repeat from the
exact tier straight away.

Only decisions that allowed lookup and storing are remembered (never a blocked request, never one with PII), and
the memo is emptied whenever the config changes, so a reload that moves a threshold or a model takes effect on
the next request. The cache entry itself still enforces its TTL, scope and ``no-cache``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from router_extproc.cache.keys import CacheKey, _canon

__all__ = ["RouteMemo", "route_key"]

D = TypeVar("D")

# Fields that change how an answer is delivered, not which answer it is.
_DELIVERY_FIELDS = frozenset({"stream", "stream_options"})


def route_key(body: Mapping[str, Any], scope: str) -> str:
    """Identity of a literal request within a tenant: every body field except the delivery ones."""
    rest = {k: v for k, v in body.items() if k not in _DELIVERY_FIELDS}
    return hashlib.sha256(_canon({"scope": scope, "body": rest}).encode()).hexdigest()[:32]


class RouteMemo(Generic[D]):
    """A bounded LRU map from :func:`route_key` to the (decision, cache key) the full path produced."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = max(0, capacity)
        self._items: OrderedDict[str, tuple[D, CacheKey]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> tuple[D, CacheKey] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, decision: D, cache_key: CacheKey) -> None:
        if self.capacity == 0:
            return
        self._items[key] = (decision, cache_key)
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()
