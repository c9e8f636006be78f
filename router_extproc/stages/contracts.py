"""What the stages need from their two collaborators: the signal source and the semantic cache.

`signals.engine.SignalEngine` and `cache.SemanticCache` satisfy these; the unit tests use tests/fakes.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..signals.inputs import Read


class SignalsLike(Protocol):
    """One signal pass's result, as the stages read it (decision.py reads the scores)."""

    category: str
    category_confidence: float
    complexity: float
    jailbreak: float
    injection: float                   # read with getattr: an older engine or a test double may lack it
    embedding: Any
    pii: Any                           # entities with .type, .read, .start, .end

    @property
    def pii_types(self) -> frozenset[str]: ...


class LanguageReading(Protocol):
    """The language detector's reading of the user's text (language.Language), as the decision reads it: the
    rules read its code, the custom routes how likely the text is in a route's languages."""

    code: str | None

    def share(self, codes: Iterable[str]) -> float: ...


class SignalSource(Protocol):
    labels: Mapping[str, Any]          # the model's labels.json (its calibrated thresholds)

    async def analyze_reads(self, reads: tuple[Read, ...], budget: int | None) -> SignalsLike: ...

    async def analyze(self, text: str, budget: int | None = None) -> SignalsLike: ...


class HitLike(Protocol):
    completion: Mapping[str, Any]
    similarity: float
    exact: bool


class Cache(Protocol):
    def exact_lookup(self, key: Any) -> HitLike | None: ...

    async def lookup(self, key: Any, embedding: Any, text: str, *, raise_by: float = 0.0) -> HitLike | None: ...

    def claim(self, key: Any) -> bool: ...

    async def wait_for_leader(self, key: Any, timeout_s: float | None = None) -> HitLike | None: ...

    def release(self, key: Any, completion: dict | None) -> None: ...

    def store(self, key: Any, embedding: Any, completion: dict) -> None: ...
