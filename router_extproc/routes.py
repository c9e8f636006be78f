"""Custom routes from example utterances (the `examples` signal, issue #23): no training, only the encoder.

The operator lists example utterances per route (`routes:`, parsed by config_rules.py into `RouteSpec`s). At
config load (and on each hot reload, off the event loop) the router embeds them with the encoder it already runs
and fits the matcher from the examples alone (`build_index`); per request, `RouteIndex.match` compares the
request's embedding, which the signal pass already computed, against every example with one matrix product.

The matcher (calibrated on tests/bench/data/routes/calibration.jsonl + held_out_2.jsonl, bench_routes.py):

* A route's **score** is the mean cosine of the request's two nearest examples of that route (one example: its
  cosine). Two, not one: a single stray example close to a general question no longer pulls it in.
* Each route has its own **bar** τ, fitted from its examples by leave-one-out: τ = ROUTE_BASE + ROUTE_TIGHTNESS ×
  (the median, over the route's examples, of each one's nearest other example's cosine). A tight route (every
  shipping question looks alike) needs a closer match than a loose one (product bugs are about anything); an
  operator's `threshold:` replaces the fitted τ.
* **The built-in categories compete as classes.** The request is ranked in one softmax over the custom routes and
  the category head's 14 classes: a route's logit is (score − τ) / ROUTE_HEAD_TEMPERATURE, a built-in class's is
  the head's log-probability. A route wins when its logit beats every built-in class's, i.e. when
  score − τ ≥ ROUTE_HEAD_TEMPERATURE × log(the head's top probability): a request the head is sure of (a
  generic coding question, "computer science" at 0.9) needs a clearly closer match than one it is unsure of (a
  support ticket, which fits no MMLU category: median confidence 0.51 on calibration.jsonl's route prompts, 0.81
  on its none prompts). Without the category signal (`signals.category: false`) the head does not vote: score ≥ τ.
* An `out_of_scope` route lists what is none of the routes: when its score is at least the winning route's, no
  route matches.

How the domain signal and the route signal relate: both read the same encoder pass; `domain` is the head's own
answer and is unchanged by routes (a billing question may still be domain `business`); `route` is the custom route
that won the joint ranking, or none when a built-in class won it. Rules read either or both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .thresholds import ROUTE_BASE, ROUTE_HEAD_TEMPERATURE, ROUTE_TIGHTNESS, ROUTE_TIGHTNESS_ONE

# The most examples one config may list, all routes together. Matching is one (N, 384) float32 product plus a few
# O(N) reductions: ~0.03 ms at 1,000 examples (docs/routing.md); embedding 10,000 short ones at load took 7 s on 2
# CPU cores. More is rejected at load, naming the key.
MAX_EXAMPLES = 20_000
MAX_EXAMPLE_CHARS = 2_000   # an example is an utterance, not a document; longer ones are rejected at load
LOO_QUERIES = 512           # leave-one-out reads at most this many of a route's examples (evenly spaced): a median


@dataclass(frozen=True, slots=True)
class RouteSpec:
    name: str
    examples: tuple[str, ...]
    threshold: float | None = None        # the operator's bar τ for the route's score; None: fitted at load
    key: str = field(default="", compare=False)   # where it is in the config file
    out_of_scope: bool = False            # its examples are none of the routes: it never matches


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: str | None                     # None: no route won the ranking
    similarity: float                     # the best route's nearest-example cosine
    nearest: str | None = None            # the best route's name, matched or not (explain prints it)
    score: float = 0.0                    # the best route's score (mean cosine of its two nearest examples)
    bar: float = 0.0                      # what that score had to reach: τ + the head's vote (None: τ)
    probability: float = 0.0              # the best route's share of the joint softmax (routes + the head's classes)


@dataclass(frozen=True, slots=True)
class RouteIndex:
    """The embedded examples of one config: rows grouped by route, in the config's order, and each route's bar."""

    specs: tuple[RouteSpec, ...]
    matrix: np.ndarray = field(compare=False, repr=False)   # (N, D) float32, L2-normalised rows
    starts: np.ndarray = field(compare=False, repr=False)   # first row of each route (np.maximum.reduceat)
    thresholds: np.ndarray = field(compare=False, repr=False)   # τ per route (out_of_scope: +inf)
    rows_route: np.ndarray = field(compare=False, repr=False)   # (N,) the route of each row
    counts: np.ndarray = field(compare=False, repr=False)       # examples per route
    out_of_scope: np.ndarray = field(compare=False, repr=False)  # (routes,) bool
    vectors: Mapping[str, np.ndarray] = field(compare=False, repr=False, default_factory=dict)  # text -> row
    head_temperature: float = ROUTE_HEAD_TEMPERATURE   # the head's vote (module docstring); a bench varies it

    def nearest(self, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each route's nearest-example cosine and its score (the mean of its two nearest; the request embedding
        is L2-normalised, as the examples). O(N): one product and three segment reductions, no sort."""
        sims = self.matrix @ np.asarray(embedding, dtype=np.float32)
        first = np.maximum.reduceat(sims, self.starts)
        at_max = sims >= first[self.rows_route]
        ties = np.add.reduceat(at_max, self.starts)
        second = np.maximum.reduceat(np.where(at_max, -np.inf, sims), self.starts)
        second = np.where((ties >= 2) | (self.counts < 2), first, second)
        return first, (first + second) / 2

    def scores(self, embedding: np.ndarray) -> np.ndarray:
        """Each route's score (the mean cosine of its two nearest examples)."""
        return self.nearest(embedding)[1]

    def match(self, embedding: np.ndarray | None, confidence: float | None = None) -> RouteMatch | None:
        """None when there is no embedding (signals off or failed): the route signal was not measured.
        `confidence`: the category head's top probability (None: the category signal is off, the head does not
        vote). The joint ranking is the module docstring's."""
        if embedding is None or not self.specs:
            return None
        first, score = self.nearest(embedding)
        margin = score - self.thresholds                 # -inf for out_of_scope routes
        if np.all(self.out_of_scope):
            best = int(np.argmax(score))
            return RouteMatch(None, float(first[best]), self.specs[best].name, float(score[best]), math.inf, 0.0)
        best = int(np.argmax(margin))
        head = self.head_temperature * math.log(min(max(confidence, 1e-6), 1.0)) if confidence is not None else 0.0
        bar = float(self.thresholds[best]) + head
        logits = margin[~self.out_of_scope] / max(self.head_temperature, 1e-6)
        top = float(logits.max())
        # the head's classes carry its probability mass 1 (logits: its log-probabilities); without it, mass 1 too.
        # In log space: the margins over a small temperature are large.
        total = np.logaddexp(top + math.log(float(np.exp(logits - top).sum())), 0.0)
        prob = math.exp(top - total)
        if self.out_of_scope.any() and float(score[self.out_of_scope].max()) >= float(score[best]):
            oos = int(np.flatnonzero(self.out_of_scope)[np.argmax(score[self.out_of_scope])])
            return RouteMatch(None, float(first[oos]), self.specs[oos].name, float(score[oos]), math.inf, 0.0)
        hit = float(score[best]) >= bar
        name = self.specs[best].name
        return RouteMatch(name if hit else None, float(first[best]), name, float(score[best]), bar, float(prob))


def tightness(rows: np.ndarray) -> float:
    """Leave-one-out over one route's examples: the median of each example's nearest other example's cosine
    (ROUTE_TIGHTNESS_ONE for a single example). Deterministic: at most LOO_QUERIES evenly spaced queries."""
    n = len(rows)
    if n < 2:
        return ROUTE_TIGHTNESS_ONE
    q = np.unique(np.linspace(0, n - 1, min(n, LOO_QUERIES)).round().astype(np.intp))
    sims = rows[q] @ rows.T
    sims[np.arange(len(q)), q] = -np.inf
    return float(np.median(sims.max(axis=1)))


def fitted_threshold(rows: np.ndarray) -> float:
    """τ of a route without an operator `threshold:` (module docstring)."""
    return ROUTE_BASE + ROUTE_TIGHTNESS * tightness(rows)


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
    """Embeds every example and fits each route's bar (CPU-heavy: call it off the event loop). Examples the
    previous index already embedded are reused, so a hot reload that edits one route embeds only what changed."""
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
    counts = np.asarray([len(s.examples) for s in specs], dtype=np.intp)
    starts = np.cumsum([0, *counts[:-1]]).astype(np.intp)
    thresholds = np.asarray([
        math.inf if s.out_of_scope else
        s.threshold if s.threshold is not None else fitted_threshold(matrix[a:a + n])
        for s, a, n in zip(specs, starts, counts)], dtype=np.float32)
    return RouteIndex(tuple(specs), np.ascontiguousarray(matrix), starts, thresholds,
                      np.repeat(np.arange(len(specs)), counts), counts,
                      np.asarray([s.out_of_scope for s in specs], dtype=bool), {t: known[t] for t in set(texts)})


def for_config(config: Any, engine: Any, previous: RouteIndex | None = None) -> RouteIndex | None:
    """The config's routes embedded with the running signal engine; None when the config has none. Without an
    engine (signals off: load rejects route predicates then) there is nothing to embed with, and no route matches.
    CPU-heavy: the server calls it in a worker thread, at start and on each reload."""
    specs = getattr(config.decisions, "routes", ())
    if not specs or engine is None:
        return None
    return build_index(specs, embed_with(engine), previous)
