"""Custom routes from example utterances (the `examples` signal, issue #23): no training, only the encoder.

The operator lists example utterances per route (`routes:`, parsed by config_rules.py into `RouteSpec`s). At
config load (and on each hot reload, off the event loop) the router embeds them with the encoder the signal pass
already runs (`build_index`); per request, `RouteIndex.match` compares the request's embedding, which the signal
pass already computed, against every example with one matrix product. A route's score is its nearest example's
cosine; the best-scoring route matches when its score reaches the route's threshold, else no route matches.
An `out_of_scope` route lists what is none of the routes (other topics the operator expects): when it scores
best, no route matches, whatever the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The most examples one config may list, all routes together. Matching is one (N, 384) float32 product, linear in
# N: ~0.1 ms at 1,000 examples (docs/routing.md), so 20,000 stays within ~1 ms; embedding 10,000 short ones at
# load took 7 s on 2 CPU cores. More is rejected at load, naming the key.
MAX_EXAMPLES = 20_000
MAX_EXAMPLE_CHARS = 2_000   # an example is an utterance, not a document; longer ones are rejected at load


@dataclass(frozen=True, slots=True)
class RouteSpec:
    name: str
    examples: tuple[str, ...]
    threshold: float                      # nearest-example cosine at or above which the route matches
    key: str = field(default="", compare=False)   # where it is in the config file
    out_of_scope: bool = False            # its examples are none of the routes: it never matches


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: str | None                     # None: no route reached its threshold
    similarity: float                     # the best route's nearest-example cosine
    nearest: str | None = None            # the best route's name, matched or not (explain prints it)


@dataclass(frozen=True, slots=True)
class RouteIndex:
    """The embedded examples of one config: rows grouped by route, in the config's order."""

    specs: tuple[RouteSpec, ...]
    matrix: np.ndarray = field(compare=False, repr=False)   # (N, D) float32, L2-normalised rows
    starts: np.ndarray = field(compare=False, repr=False)   # first row of each route (np.maximum.reduceat)
    thresholds: np.ndarray = field(compare=False, repr=False)
    vectors: Mapping[str, np.ndarray] = field(compare=False, repr=False, default_factory=dict)  # text -> row

    def scores(self, embedding: np.ndarray) -> np.ndarray:
        """Each route's nearest-example cosine (the request embedding is L2-normalised, as the examples)."""
        sims = self.matrix @ np.asarray(embedding, dtype=np.float32)
        return np.maximum.reduceat(sims, self.starts)

    def match(self, embedding: np.ndarray | None) -> RouteMatch | None:
        """None when there is no embedding (signals off or failed): the route signal was not measured."""
        if embedding is None or not self.specs:
            return None
        per_route = self.scores(embedding)
        best = int(np.argmax(per_route))
        sim = float(per_route[best])
        spec = self.specs[best]
        hit = sim >= self.thresholds[best] and not spec.out_of_scope
        return RouteMatch(spec.name if hit else None, sim, spec.name)


def embed_with(engine: Any, batch: int = 64) -> Callable[[Sequence[str]], np.ndarray]:
    """The signal engine's embedding of whole texts, as a function (each text read as one user turn)."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        rows = []
        for i in range(0, len(texts), batch):
            rows.extend(s.embedding for s in engine.analyze_batch(list(texts[i:i + batch])))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)

    return embed


def build_index(specs: Sequence[RouteSpec], embed: Callable[[Sequence[str]], np.ndarray],
                previous: RouteIndex | None = None) -> RouteIndex:
    """Embeds every example (CPU-heavy: call it off the event loop). Examples the previous index already embedded
    are reused, so a hot reload that edits one route embeds only what changed."""
    known: dict[str, np.ndarray] = dict(previous.vectors) if previous is not None else {}
    texts = [t for s in specs for t in s.examples]
    todo = list(dict.fromkeys(t for t in texts if t not in known))
    if todo:
        vecs = embed(todo)
        for t, v in zip(todo, vecs):
            known[t] = v
    matrix = np.asarray([known[t] for t in texts], dtype=np.float32)
    if len(matrix):
        matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    counts = [len(s.examples) for s in specs]
    starts = np.cumsum([0, *counts[:-1]]).astype(np.intp)
    return RouteIndex(tuple(specs), np.ascontiguousarray(matrix), starts,
                      np.asarray([s.threshold for s in specs], dtype=np.float32),
                      {t: known[t] for t in set(texts)})


def for_config(config: Any, engine: Any, previous: RouteIndex | None = None) -> RouteIndex | None:
    """The config's routes embedded with the running signal engine; None when the config has none. Without an
    engine (signals off: load rejects route predicates then) there is nothing to embed with, and no route matches.
    CPU-heavy: the server calls it in a worker thread, at start and on each reload."""
    specs = getattr(config.decisions, "routes", ())
    if not specs or engine is None:
        return None
    return build_index(specs, embed_with(engine), previous)
