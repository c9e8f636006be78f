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
* **Typos are repaired against the examples' words** (`Speller`, fitted at load): a word of the user's turn that
  is neither a word of the encoder's vocabulary nor of the examples, and is one edit (two for 8+ letters) from a
  word of the examples with the same first letter, is replaced by it ("retrun" -> "return", "invocie" ->
  "invoice"). A misspelt word breaks into word pieces the encoder reads as noise; the repaired turn is embedded
  once more (stages/decide.route_reading: a second encoder pass, only for such requests) and that embedding is
  matched. Text mostly of unknown words (another language) is left alone.
* **"About someone else" raises the bar** by ROUTE_OTHER_PENALTY (`about_someone_else`): a support route's topic
  is also the topic of questions about other companies and of general questions (Netflix's billing, a React
  crash, "what is VAT"), which a topic embedding cannot tell apart. The user's turn is read for whom it is about:
  a proper name the examples never use, a third-party provider (bank, landlord, airline, ...), or the form of a
  general question ("what is", "how does ... work", "explain"), and no word addressing the operator ("you",
  "your"). Such a request needs a closer match.

How the domain signal and the route signal relate: both read the same encoder pass; `domain` is the head's own
answer and is unchanged by routes (a billing question may still be domain `business`); `route` is the custom route
that won the joint ranking, or none when a built-in class won it. Rules read either or both.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rapidfuzz.distance import OSA

from .thresholds import (ROUTE_BASE, ROUTE_HEAD_TEMPERATURE, ROUTE_OTHER_PENALTY, ROUTE_TIGHTNESS,
                         ROUTE_TIGHTNESS_ONE)

# The most examples one config may list, all routes together. Matching is one (N, 384) float32 product plus a few
# O(N) reductions: ~0.03 ms at 1,000 examples (docs/routing.md); embedding 10,000 short ones at load took 7 s on 2
# CPU cores. More is rejected at load, naming the key.
MAX_EXAMPLES = 20_000
MAX_EXAMPLE_CHARS = 2_000   # an example is an utterance, not a document; longer ones are rejected at load
LOO_QUERIES = 512           # leave-one-out reads at most this many of a route's examples (evenly spaced): a median
# Spelling repair reads turns up to this long: a longer one carries enough correctly spelt words, and the repair's
# cost (a Python pass over the words) stays bounded.
REPAIR_MAX_CHARS = 2_000


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
    speller: Speller | None = field(compare=False, repr=False, default=None)   # None: no repair (no examples)
    other_penalty: float = ROUTE_OTHER_PENALTY          # the bar's rise for a request about someone else

    def repair(self, text: str) -> str | None:
        """The user's turn with its typos repaired against the examples' words; None when nothing changed.
        CPU (a pass over the words): call it off the event loop."""
        return self.speller.repair(text) if self.speller is not None else None

    def about_someone_else(self, text: str) -> bool:
        return self.speller is not None and about_someone_else(text, self.speller)

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

    def match(self, embedding: np.ndarray | None, confidence: float | None = None,
              text: str | None = None) -> RouteMatch | None:
        """None when there is no embedding (signals off or failed): the route signal was not measured.
        `confidence`: the category head's top probability (None: the category signal is off, the head does not
        vote). `text`: the user's turn, read for whom it is about (None: not read). The joint ranking is the
        module docstring's."""
        if embedding is None or not self.specs:
            return None
        first, score = self.nearest(embedding)
        margin = score - self.thresholds                 # -inf for out_of_scope routes
        if np.all(self.out_of_scope):
            best = int(np.argmax(score))
            return RouteMatch(None, float(first[best]), self.specs[best].name, float(score[best]), math.inf, 0.0)
        best = int(np.argmax(margin))
        head = self.head_temperature * math.log(min(max(confidence, 1e-6), 1.0)) if confidence is not None else 0.0
        if text is not None and self.about_someone_else(text):
            head += self.other_penalty
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
                previous: RouteIndex | None = None, known_words: frozenset[str] = frozenset()) -> RouteIndex:
    """Embeds every example and fits each route's bar and the speller (CPU-heavy: call it off the event loop).
    Examples the previous index already embedded are reused, so a hot reload that edits one route embeds only
    what changed. `known_words`: the encoder's whole-word vocabulary (never repaired)."""
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
                      np.asarray([s.out_of_scope for s in specs], dtype=bool), {t: known[t] for t in set(texts)},
                      speller=Speller([t for s in specs if not s.out_of_scope for t in s.examples], known_words)
                      if texts else None)


def for_config(config: Any, engine: Any, previous: RouteIndex | None = None) -> RouteIndex | None:
    """The config's routes embedded with the running signal engine; None when the config has none. Without an
    engine (signals off: load rejects route predicates then) there is nothing to embed with, and no route matches.
    CPU-heavy: the server calls it in a worker thread, at start and on each reload."""
    specs = getattr(config.decisions, "routes", ())
    if not specs or engine is None:
        return None
    return build_index(specs, embed_with(engine), previous, encoder_words(engine))


def encoder_words(engine: Any) -> frozenset[str]:
    """The whole words of the encoder's vocabulary (WordPiece: entries without "##"): words the encoder reads
    as themselves, which spelling repair leaves alone."""
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is None:
        return frozenset()
    return frozenset(w for w in tokenizer.get_vocab() if w.isalpha() and not w.startswith("##"))


# ── the user's words: spelling repair and whom the request is about ──────────────────────────────────────────
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Inflections a known stem may carry: "invoices", "refunded", "crashing" are not misspellings.
_SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly", "ies")
REPAIR_MIN_LETTERS = 4        # shorter words are too ambiguous to repair ("dor": door? for?)
REPAIR_TWO_EDITS_FROM = 8     # words this long may be two edits away; shorter ones one (transposition: one)
# Longer "words" are not misspellings (a hash, a base64 blob, keyboard mashing), and a word's two-edit deletes
# grow with the cube of its length: a 1,900-letter word would make ~1.8M strings of ~1,900 characters.
REPAIR_MAX_LETTERS = 24


def _deletes(word: str, edits: int) -> set[str]:
    out = frontier = {word}
    for _ in range(edits):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        out = out | frontier
    return out


class Speller:
    """Repairs a request's misspelt words into the examples' words (symmetric deletes, as SymSpell: each example
    word indexed under its one- or two-letter deletions, so a lookup is a few dict reads, not a scan). Built at
    load, read-only afterwards (thread-safe)."""

    def __init__(self, examples: Sequence[str], known_words: frozenset[str] = frozenset()) -> None:
        self.counts = Counter(w.lower() for t in examples for w in _WORD.findall(t))
        self.vocabulary = frozenset(self.counts)
        self.known_words = known_words
        index: dict[str, set[str]] = {}
        for w in self.counts:
            if len(w) >= REPAIR_MIN_LETTERS - 1:
                for d in _deletes(w, 2 if len(w) >= REPAIR_TWO_EDITS_FROM - 2 else 1):
                    index.setdefault(d, set()).add(w)
        self._index = {k: tuple(sorted(v)) for k, v in index.items()}

    def known(self, word: str) -> bool:
        """A word of the encoder or of the examples, or one of them inflected."""
        vocab, enc = self.counts, self.known_words
        if word in enc or word in vocab or word + "s" in vocab or word + "es" in vocab:
            return True
        for suf in _SUFFIXES:
            stem = word[:-len(suf)]
            if word.endswith(suf) and len(stem) >= 3 and any(
                    x in enc or x in vocab for x in (stem, stem + "e", stem + "y", stem + "es")):
                return True
        return False

    def fix(self, word: str) -> str | None:
        """The example word `word` is a misspelling of (closest; then the most frequent; then alphabetical)."""
        if any(c.isupper() for c in word[1:]):
            return None     # an acronym or a brand ("SAML", "SaaS"), not a typo
        lw = word.lower()
        if not REPAIR_MIN_LETTERS <= len(lw) <= REPAIR_MAX_LETTERS or "'" in lw or "’" in lw or self.known(lw):
            return None
        edits = 2 if len(lw) >= REPAIR_TWO_EDITS_FROM else 1
        best: tuple[int, int, str] | None = None
        for d in _deletes(lw, edits):
            for cand in self._index.get(d, ()):
                if cand[0] != lw[0]:
                    continue    # typos rarely touch the first letter; "lode" is not "code"
                key = (OSA.distance(lw, cand), -self.counts[cand], cand)
                if key[0] <= edits and (best is None or key < best):
                    best = key
        return best[2] if best is not None else None

    def repair(self, text: str) -> str | None:
        """`text` with its misspelt words repaired; None when nothing changed, when it is too long, or when it is
        mostly words neither the encoder nor the examples know (another language: repair would garble it)."""
        if len(text) > REPAIR_MAX_CHARS:
            return None
        words = _WORD.findall(text)
        unknown = sum(1 for w in words if len(w) >= REPAIR_MIN_LETTERS and not self.known(w.lower()))
        if not words or unknown * 3 > len(words):
            return None
        changed = False

        def sub(m: re.Match[str]) -> str:
            nonlocal changed
            fixed = self.fix(m.group(0))
            if fixed is None:
                return m.group(0)
            changed = True
            return fixed

        out = _WORD.sub(sub, text)
        return out if changed else None


# Words addressing the operator: a request that says "you" is about this company, whatever else it names.
_ADDRESSED = re.compile(r"\b(?:you|your|yours|yourselves|u|ur|you're|youre|you've|y'all)\b", re.IGNORECASE)
# Other parties a customer deals with: their bills, accounts and parcels are not this company's.
_THIRD_PARTY = re.compile(
    r"\b(?:bank|landlord|airline|airport|provider|supplier|dealer|dealership|library|electricity|utility|"
    r"utilities|insurer|insurance|employer|government|gym|school|hospital|doctor|isp|telco|broker)s?\b",
    re.IGNORECASE)
# The form of a general question: about how things work, not about the customer's case.
_GENERAL = re.compile(
    r"^\W*(?:what\s+is|what's\s+(?:a|an|the)\b|what\s+are|what\s+does|how\s+does|how\s+do\s+\w+\s+work\b|"
    r"explain\b|how\s+to\b|write\b|tips\b|compare\b|why\s+does)",
    re.IGNORECASE)
_CALENDAR = frozenset("""january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday christmas easter""".split())


def proper_names(text: str, speller: Speller) -> list[str]:
    """Capitalised words the examples never use: other brands and products ("Netflix", "Instagram"). Not
    acronyms, contractions, or days and months; a sentence's first word only when the encoder does not know it
    either and it is no misspelling of an example word ("Spotify billed me", not "Where is")."""
    vocabulary = speller.vocabulary
    out = []
    for m in _WORD.finditer(text):
        w = m.group(0)
        if not w[0].isupper() or w.isupper() or "'" in w or "’" in w:
            continue
        lw = w.lower()
        if lw in _CALENDAR or lw in vocabulary:
            continue
        before = text[:m.start()].rstrip()
        if (not before or before[-1] in ".!?:;¿¡\"'(") and (lw in speller.known_words or speller.fix(w) is not None
                                                           or not speller.known_words):
            continue
        out.append(w)
    return out


def about_someone_else(text: str, speller: Speller) -> bool:
    """The user's turn reads as about another company or as a general question, and does not address the
    operator (module docstring). `speller`: the examples' words and the encoder's."""
    text = text[:REPAIR_MAX_CHARS]
    if _ADDRESSED.search(text):
        return False
    return bool(_GENERAL.search(text) or _THIRD_PARTY.search(text) or proper_names(text, speller))
