"""The small interfaces of the cache: an entry, a backend protocol, and a metrics sink."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Entry", "Candidate", "Backend", "CacheMetrics", "NoopMetrics", "new_id"]


def new_id() -> int:
    """A random positive 63-bit primary key (unique across routers sharing one Milvus)."""
    return int.from_bytes(os.urandom(8), "big") & 0x7FFF_FFFF_FFFF_FFFF or 1


@dataclass(slots=True)
class Entry:
    """One cached completion. ``embedding`` is float32, L2-normalized; ``response`` is the completion JSON text."""

    id: int
    scope: str
    filter_key: str
    fingerprint: str
    text: str
    embedding: np.ndarray
    response: str
    created_at: float
    expires_at: float


@dataclass(slots=True)
class Candidate:
    entry: Entry
    similarity: float


@runtime_checkable
class Backend(Protocol):
    """A vector store of entries. All methods may raise; the facade turns errors into misses."""

    name: str

    @property
    def available(self) -> bool: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def search(
        self, scope: str, filter_key: str, vector: np.ndarray, *, top_k: int, min_similarity: float, now: float
    ) -> list[Candidate]: ...

    async def insert(self, entries: list[Entry]) -> None: ...

    async def delete_expired(self, now: float) -> int: ...

    async def clear(self, scope: str | None = None, *, cleared_at: float | None = None) -> int: ...

    async def count(self) -> int: ...


class CacheMetrics(Protocol):
    """What the cache reports. ``result`` values: lookup → hit|exact_hit|miss|refused|error|skipped;
    store → stored|queued|too_large|not_cacheable|dropped|error."""

    def lookup(self, result: str, seconds: float) -> None: ...

    def store(self, result: str) -> None: ...

    def error(self, op: str) -> None: ...

    def set_available(self, available: bool) -> None: ...

    # optional: ``coalesced(result)`` with result served|leader_failed is called when present;
    # ``backend_rows(rows, over_target)`` after each size check of a Milvus backend


class NoopMetrics:
    def lookup(self, result: str, seconds: float) -> None:
        pass

    def store(self, result: str) -> None:
        pass

    def error(self, op: str) -> None:
        pass

    def set_available(self, available: bool) -> None:
        pass

    def coalesced(self, result: str) -> None:
        pass

    def backend_rows(self, rows: int, over_target: bool) -> None:
        pass
