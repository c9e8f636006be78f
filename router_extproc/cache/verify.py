"""The hit verifier: a second opinion beyond one cosine threshold, so that near-misses are refused.

A candidate returned by the vector search (cosine ≥ the floor) is served only if a small pair classifier says
the two requests ask the same thing. The classifier is an ensemble of one-hidden-layer MLPs over

* the two embeddings: ``u*v`` and ``|u-v|`` (384 each), cosine and cosine²;
* lexical features of the two texts: word/bigram/character-trigram overlap, IDF-weighted overlap, the rarest
  differing content word, a number mismatch, a negation/polarity mismatch, first/last word agreement, lengths;
* in a verifier that reads pairs (``needs_pairs``): the encoder's frozen features of the pair read as one row,
  ``[CLS] query [SEP] candidate [SEP]`` (``SignalEngine.pair_features``), standardised.

A pair row is a whole encoder pass, so the shipped verifier is a cascade (``gate`` in ``verifier.json``): a first
model over the embedding and lexical features alone (``prescreen``) refuses candidates that are plainly not
duplicates, and only a candidate scoring at least ``gate`` there is read as a pair row and decided by the second.

Two guards then refuse a pair outright: a negation guard when the negation parity differs ("is X good" / "is X
not good"), and a quantity guard when the two texts name different numbers, ordinals included ("causes of the
First World War" / "... Second World War", "15% of 200" / "20% of 200"). QQP has few such pairs, and models
trained on it learnt no reliable answer to them: the pair model scored the World War pair 0.97.

It is trained on QQP by ``python -m models.build_verifier`` (see docs/cache.md for the figures) and evaluated
here with numpy only: ``verifier.json`` (metadata, IDF table, threshold) + ``verifier.npz`` (weights).
Without a usable verifier the cache falls back to plain cosine against ``max(similarity_threshold, 0.90)``
(``SemanticCache.from_config``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

__all__ = ["Verifier", "CosineVerifier", "PairVerifier", "lexical_features", "pair_features", "words",
           "build_idf", "N_LEXICAL", "NEG_MISMATCH", "negation_guard", "quantities", "quantity_guard",
           "load_verifier"]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
NEGATIONS = frozenset(
    "not no never nor without cannot neither none nobody nothing nowhere n't".split()
)
STOPWORDS = frozenset(
    "a an the of to in on for and or is are was were be been being do does did what which who whom whose why how "
    "when where i me my we our you your he she it its they them their this that these those with as at by from "
    "about into can could would should will shall may might must have has had there here if then than so such "
    "very just also more most some any all".split()
)
N_LEXICAL = 17
NEG_MISMATCH = 6  # index of the negation-parity mismatch among the lexical features


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?|[a-z]+")
# "one" and "i" are left out: as a pronoun and a personal pronoun they are far more common than as numbers.
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero _ two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split()) if w != "_"}
_NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)})
_NUMBER_WORDS.update(hundred="100", thousand="1000", million="1000000", billion="1000000000",
                     trillion="1000000000000", dozen="12")
_NUMBER_WORDS.update({w: str(i) for i, w in enumerate(
    "_ first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()) if w != "_"})
_NUMBER_WORDS.update({w: str(i) for i, w in enumerate("_ _ ii iii iv v vi vii viii ix x xi xii".split())
                      if len(w) > 1 and w != "_"})


def quantities(text: str) -> frozenset[str]:
    """The numbers a text names, each as its value: digits (``1,000`` → ``1000``, ``2nd`` → ``2``), number words
    from zero up (not "one"), ordinals, and Roman numerals from II. "First" and "1st" are the same quantity."""
    out = set()
    for tok in _NUMBER.findall(text.lower()):
        if tok[0].isdigit():
            v = tok.replace(",", "")
            v = v[:-2] if v[-2:] in ("st", "nd", "rd", "th") else v
            out.add(v.rstrip("0").rstrip(".") if "." in v else v.lstrip("0") or "0")
        elif tok in _NUMBER_WORDS:
            out.add(_NUMBER_WORDS[tok])
    return frozenset(out)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def build_idf(texts: Iterable[str], min_df: int = 2) -> tuple[dict[str, float], float]:
    df: dict[str, int] = {}
    n = 0
    for t in texts:
        n += 1
        for w in set(words(t)):
            df[w] = df.get(w, 0) + 1
    idf = {w: round(math.log((n + 1) / (c + 1)) + 1, 4) for w, c in df.items() if c >= min_df}
    return idf, math.log(n + 1) + 1


def _neg_parity(ws: list[str]) -> int:
    return sum(1 for w in ws if w in NEGATIONS or w.endswith("n't")) % 2


def _bigrams(ws: list[str]) -> set[str]:
    return {a + " " + b for a, b in zip(ws, ws[1:])}


def _trigrams(ws: list[str]) -> set[str]:
    t = " ".join(ws)
    return {t[i:i + 3] for i in range(max(0, len(t) - 2))}


def _jac(a: set, b: set) -> float:
    return len(a & b) / max(1, len(a | b))


def lexical_features(a: str, b: str, idf: Mapping[str, float], unk: float) -> list[float]:
    """``N_LEXICAL`` symmetric features of a text pair, each roughly in [0, 1]."""
    wa, wb = words(a), words(b)
    sa, sb = set(wa), set(wb)
    ca, cb = sa - STOPWORDS, sb - STOPWORDS

    def g(w: str) -> float:
        return idf.get(w, unk)

    inter, uni = sa & sb, sa | sb
    weighted = sum(g(w) for w in inter) / max(1e-6, sum(g(w) for w in uni))
    diff = ca ^ cb
    max_diff = max((g(w) for w in diff), default=0.0) / unk
    sum_diff = sum(g(w) for w in diff) / unk
    na = {w for w in sa if w.isdigit()}
    nb = {w for w in sb if w.isdigit()}
    num_mismatch = float(bool(na or nb) and na != nb)
    neg_mismatch = float(_neg_parity(wa) != _neg_parity(wb))
    la, lb = len(wa), len(wb)
    only_a, only_b = len(ca - cb), len(cb - ca)
    return [
        _jac(sa, sb),
        _jac(ca, cb),
        weighted,
        max_diff,
        min(sum_diff, 5.0) / 5.0,
        num_mismatch,
        neg_mismatch,
        float(wa[:1] == wb[:1]),
        min(la, lb) / max(1, la, lb),
        min(abs(la - lb), 20) / 20.0,
        float(wa == wb),
        min(only_a, only_b) / 5.0,
        max(only_a, only_b) / 10.0,
        float(not diff),
        _jac(_bigrams(wa), _bigrams(wb)),
        _jac(_trigrams(wa), _trigrams(wb)),
        float(wa[-1:] == wb[-1:]),
    ]


def pair_features(u: np.ndarray, v: np.ndarray, lex: np.ndarray) -> np.ndarray:
    """Rows of [u*v, |u-v|, cos, cos², lexical...] for aligned batches ``u``, ``v`` (L2-normalized)."""
    u = np.atleast_2d(u).astype(np.float32, copy=False)
    v = np.atleast_2d(v).astype(np.float32, copy=False)
    cos = (u * v).sum(1, keepdims=True)
    return np.concatenate([u * v, np.abs(u - v), cos, cos * cos, np.atleast_2d(lex).astype(np.float32)], 1)


class Verifier:
    """Decides whether a candidate may be served. ``floor`` is the cosine below which nothing is considered.
    A verifier with ``needs_pairs`` must be given the encoder's features of each (query, candidate) pair."""

    floor: float = 0.0
    threshold: float = 0.0
    gate: float = 0.0
    kind = "base"
    needs_pairs = False

    def prescreen(self, query: np.ndarray, text: str, cands: list[tuple[np.ndarray, str, float]]) -> np.ndarray:
        """Scores that need no pair features; a candidate under ``gate`` is refused without a pair row."""
        return np.ones(len(cands), np.float32)

    def scores(self, query: np.ndarray, text: str, cands: list[tuple[np.ndarray, str, float]],
               pair_feats: np.ndarray | None = None) -> np.ndarray:
        raise NotImplementedError

    def accept(self, query: np.ndarray, text: str, cands: list[tuple[np.ndarray, str, float]],
               pair_feats: np.ndarray | None = None) -> np.ndarray:
        return self.scores(query, text, cands, pair_feats) >= self.threshold


class CosineVerifier(Verifier):
    """Plain cosine: the score is the similarity itself."""

    kind = "cosine"

    def __init__(self, threshold: float) -> None:
        self.floor = self.threshold = float(threshold)

    def scores(self, query, text, cands, pair_feats=None):
        return np.array([c[2] for c in cands], np.float32)


class PairVerifier(Verifier):
    kind = "mlp"

    def __init__(self, meta: Mapping, weights: Mapping[str, np.ndarray], *, threshold: float | None = None,
                 floor: float | None = None) -> None:
        self.meta = dict(meta)
        self.idf: dict[str, float] = dict(meta["idf"])
        self.unk = float(meta["unk"])
        self.floor = float(meta["floor"] if floor is None else floor)
        self.threshold = float(meta["threshold"] if threshold is None else threshold)
        self.dimension = int(meta["dimension"])
        self.negation_guard = bool(meta.get("negation_guard", False))
        self.quantity_guard = bool(meta.get("quantity_guard", False))
        cross = meta.get("cross")
        self.needs_pairs = bool(cross)
        self.pair_dim = int(cross["dim"]) if cross else 0
        if cross:
            self.cross_mu = np.asarray(weights["cross_mu"], np.float32).reshape(-1)
            self.cross_sd = np.asarray(weights["cross_sd"], np.float32).reshape(-1)
        self.layers = _members(weights, "", int(meta["members"]))
        gate = meta.get("gate")
        if gate and not cross:
            raise ValueError("a verifier with a gate must read pair features (cross)")
        self.gate = float(gate["threshold"]) if gate else 0.0
        self.gate_layers = _members(weights, "gate_", int(gate["members"])) if gate else []
        if gate:
            self.kind = "mlp-cascade"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return _predict(self.layers, x)

    def prescreen(self, query, text, cands):
        if not self.gate_layers or not cands:
            return np.ones(len(cands), np.float32)
        lex = self._lexical(text, cands)
        s = _predict(self.gate_layers, self._features(query, cands, lex, None, cross=False))
        return self._guard(s, lex, text, cands)

    def _guard(self, s: np.ndarray, lex: np.ndarray, text: str, cands) -> np.ndarray:
        if self.negation_guard:
            s = negation_guard(s, lex)
        if self.quantity_guard:
            s = quantity_guard(s, text, [c[1] for c in cands])
        return s

    def _lexical(self, text: str, cands) -> np.ndarray:
        return np.array([lexical_features(text, c[1], self.idf, self.unk) for c in cands], np.float32)

    def _features(self, query, cands, lex: np.ndarray, pair_feats, *, cross: bool = True) -> np.ndarray:
        q = np.asarray(query, np.float32).reshape(1, -1)
        v = np.stack([np.asarray(c[0], np.float32).reshape(-1) for c in cands])
        x = pair_features(np.repeat(q, len(cands), 0), v, lex)
        if not (cross and self.needs_pairs):
            return x
        if pair_feats is None:
            raise ValueError("this verifier reads the encoder's pair features: pass pair_feats")
        f = np.asarray(pair_feats, np.float32).reshape(len(cands), -1)
        if f.shape[1] != self.pair_dim:
            raise ValueError(f"pair features have {f.shape[1]} dimensions, the verifier was built for {self.pair_dim}")
        return np.concatenate([(f - self.cross_mu) / self.cross_sd, x], 1)

    def scores(self, query, text, cands, pair_feats=None):
        if not cands:
            return np.zeros(0, np.float32)
        lex = self._lexical(text, cands)
        s = self.predict(self._features(query, cands, lex, pair_feats))
        return self._guard(s, lex, text, cands)


def _members(weights: Mapping[str, np.ndarray], prefix: str, n: int) -> list:
    def w(name: str, i: int) -> np.ndarray:
        return np.asarray(weights[f"{prefix}{name}_{i}"], np.float32)

    return [(w("w1", i), w("b1", i), w("w2", i).reshape(-1), float(w("b2", i).reshape(-1)[0])) for i in range(n)]


def _predict(layers: list, x: np.ndarray) -> np.ndarray:
    """Mean probability of an ensemble of one-hidden-layer ReLU MLPs."""
    p = np.zeros(len(x), np.float64)
    for w1, b1, w2, b2 in layers:
        h = np.maximum(x @ w1 + b1, 0.0)
        p += 1.0 / (1.0 + np.exp(-(h @ w2 + b2)))
    return (p / len(layers)).astype(np.float32)


def negation_guard(scores: np.ndarray, lex: np.ndarray) -> np.ndarray:
    """Score 0 for every pair whose negation parity differs (the lexical feature NEG_MISMATCH)."""
    return np.where(np.asarray(lex)[:, NEG_MISMATCH] > 0.5, 0.0, scores).astype(np.float32)


def quantity_guard(scores: np.ndarray, text: str, others: list[str]) -> np.ndarray:
    """Score 0 for every ``others[i]`` that names different numbers than ``text`` (see :func:`quantities`)."""
    q = quantities(text)
    differs = np.array([quantities(o) != q for o in others], bool)
    return np.where(differs, 0.0, scores).astype(np.float32)


def load_verifier(path: Path | str) -> PairVerifier:
    """Load ``verifier.json`` + ``verifier.npz`` (``path`` may name either file or their directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / "verifier.json"
    meta_path, npz_path = p.with_suffix(".json"), p.with_suffix(".npz")
    meta = json.loads(meta_path.read_text())
    with np.load(npz_path) as z:
        weights = {k: z[k] for k in z.files}
    return PairVerifier(meta, weights)
