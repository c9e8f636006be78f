"""Coherent invalidation across router replicas that share one Milvus.

Each router holds in-process copies of shared entries (the exact and hot tiers, queued inserts). A clear made
through one router must reach the others, so a clear is *stamped*: the clearing router writes
``(scope or "*", cleared_at)`` into the control collection (``milvus.py``) and every router polls it every
``invalidation_poll_s`` (0.5 s). A router that sees a newer stamp drops that scope from its in-process tiers.

The stamps are also watermarks: an entry created at or before its scope's latest clear is never served, whichever
tier or search returns it. This covers the windows a poll alone leaves open: a Milvus search at Bounded
consistency that still sees rows being deleted, and inserts that were queued before the clear and written after
it. Clocks of the routers are compared (``created_at`` against ``cleared_at``): an entry stored within the clock
skew after a clear may be hidden too, a miss, never a stale hit.
"""

from __future__ import annotations

from collections.abc import Mapping

from router_extproc.cache.base import Entry

__all__ = ["Clears", "ALL_SCOPES"]

ALL_SCOPES = "*"


class Clears:
    """The latest clear time of each scope (``*``: every scope) known to this router."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def cutoff(self, scope: str) -> float:
        return max(self.marks.get(scope, 0.0), self.marks.get(ALL_SCOPES, 0.0))

    def stale(self, entry: Entry) -> bool:
        """True when a clear of the entry's scope happened at or after it was created."""
        return bool(self.marks) and entry.created_at <= self.cutoff(entry.scope)

    def merge(self, marks: Mapping[str, float]) -> list[str]:
        """Take in stamps (from the control collection or from a local clear); the scopes whose stamp advanced."""
        advanced = []
        for scope, t in marks.items():
            if t > self.marks.get(scope, 0.0):
                self.marks[scope] = float(t)
                advanced.append(scope)
        return advanced
