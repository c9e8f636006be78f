"""Coalescing of concurrent identical misses (same scope + fingerprint).

The first request to miss :meth:`claim`\\ s the fingerprint and goes upstream (the leader). Equal requests that
arrive while it is in flight wait, bounded, in :meth:`wait` and receive the leader's completion when it
:meth:`release`\\ s it; a failed or uncacheable answer (``None``), a leader that never releases, or a timeout makes
the followers go upstream themselves. Single event loop, no locks.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Inflight"]


class _Flight:
    __slots__ = ("future", "started", "followers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.future: asyncio.Future = loop.create_future()
        self.started = time.monotonic()
        self.followers = 0


class Inflight:
    def __init__(self, max_age_s: float = 300.0) -> None:
        self._flights: dict[tuple[str, str], _Flight] = {}
        self.max_age_s = max_age_s  # a leader that never released is forgotten after this long

    def __len__(self) -> int:
        return len(self._flights)

    def claim(self, scope: str, fingerprint: str) -> bool:
        """True if the caller is now the leader for this request; False if a leader is already in flight."""
        k = (scope, fingerprint)
        f = self._flights.get(k)
        if f is not None and not f.future.done() and time.monotonic() - f.started < self.max_age_s:
            return False
        if f is not None and not f.future.done():
            f.future.set_result(None)  # stale leader: release its followers
        self._flights[k] = _Flight(asyncio.get_running_loop())
        return True

    async def wait(self, scope: str, fingerprint: str, timeout_s: float) -> dict | None:
        """The leader's completion, or None (no leader, failure, or timeout)."""
        f = self._flights.get((scope, fingerprint))
        if f is None:
            return None
        f.followers += 1
        try:
            return await asyncio.wait_for(asyncio.shield(f.future), timeout=max(0.0, timeout_s))
        except asyncio.TimeoutError:
            return None

    def release(self, scope: str, fingerprint: str, completion: dict | None) -> int:
        """Hand the leader's result to its followers; returns how many were waiting."""
        f = self._flights.pop((scope, fingerprint), None)
        if f is None:
            return 0
        if not f.future.done():
            f.future.set_result(completion)
        return f.followers
