"""Real embeddings for the scale benchmarks: Quora questions embedded by the project's own encoder.

Random unit vectors are the worst case for a graph index (no neighbourhoods: every row is about as far from a
query as every other), while the issue's recall target is about *hits the verifier would accept*: a stored
question and its paraphrase. So the recall rows are measured on real text:

- **stored rows**: every distinct question of QQP dev (``models/data/qqp-dev.jsonl.gz``, else
  ``../shared/data/``) except the query side of the probe pairs, embedded by ``SignalEngine`` (the vector the
  cache stores);
- **queries**: the other side of QQP *duplicate* pairs (a paraphrase of a stored row), plus an equal number of
  hard non-duplicates (near-misses Quora picked to look alike), embedded the same way;
- **padding** past the ~75k real rows: QQP has no million questions and embedding a million texts on these
  cores would take hours, so rows beyond the real ones are *normalized random mixtures of three real embeddings*
  (Dirichlet(1,1,1) weights plus a little noise). They stay in the cone the encoder's outputs occupy, so a query
  meets neighbours at realistic distances, but they are not text: the real rows keep their places among them.

The embeddings are cached in ``~/.cache/router-extproc/bench/`` keyed by the data file's and the encoder's
hashes, so only the first run pays for the encoder (minutes on two shared cores).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .common import MODEL_DIR, ROOT, progress

__all__ = ["RealCorpus", "load_real", "qqp_file"]

CACHE = Path(os.environ.get("ROUTER_EXTPROC_CACHE", Path.home() / ".cache" / "router-extproc")) / "bench"
PROBES = 3000  # duplicate pairs held out as queries (and as many non-duplicate pairs)


def qqp_file() -> Path | None:
    for p in (ROOT / "models" / "data" / "qqp-dev.jsonl.gz", ROOT.parent / "shared" / "data" / "qqp-dev.jsonl.gz"):
        if p.exists():
            return p
    return None


@dataclass
class RealCorpus:
    stored: np.ndarray  # (n_real, dim) unit rows: the real questions a cache would hold
    queries: np.ndarray  # (q, dim) unit rows: paraphrases (label 1) and near-misses (label 0) of stored rows
    targets: np.ndarray  # (q,) the stored row each query was paired with
    labels: np.ndarray  # (q,) 1 = duplicate (a hit the verifier should accept), 0 = near-miss

    def rows(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` rows: the real ones first (all of them, or the first ``n``), then padding mixtures."""
        if n <= len(self.stored):
            return self.stored[:n].copy()
        out = np.empty((n, self.stored.shape[1]), np.float32)
        out[:len(self.stored)] = self.stored
        rng = np.random.default_rng(seed)
        step = 100_000
        for s in range(len(self.stored), n, step):
            m = min(step, n - s)
            pick = rng.integers(0, len(self.stored), size=(m, 3))
            w = rng.dirichlet((1.0, 1.0, 1.0), size=m).astype(np.float32)
            v = np.einsum("mk,mkd->md", w, self.stored[pick])
            v += rng.normal(scale=0.01, size=v.shape).astype(np.float32)
            v /= np.linalg.norm(v, axis=1, keepdims=True)
            out[s:s + m] = v
        return out


def _key(path: Path) -> str:
    h = hashlib.sha256(path.read_bytes())
    for name in ("encoder.onnx", "tokenizer.json"):
        f = MODEL_DIR / name
        h.update(f.stat().st_size.to_bytes(8, "little") + f.read_bytes()[:1 << 20] if f.exists() else b"-")
    h.update(f"probes={PROBES}".encode())
    return h.hexdigest()[:16]


def load_real() -> RealCorpus | None:
    """The real corpus, embedded once and cached; None when QQP or the models are missing."""
    path = qqp_file()
    if path is None or not (MODEL_DIR / "encoder.onnx").exists():
        return None
    cache = CACHE / f"qqp-{_key(path)}.npz"
    if cache.exists():
        z = np.load(cache)
        return RealCorpus(z["stored"], z["queries"], z["targets"], z["labels"])
    with gzip.open(path, "rt", encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f if line.strip()]
    # probes chosen by a stable hash of the pair, not by position
    def h(p: dict) -> str:
        return hashlib.sha1((p["text_a"] + "\x00" + p["text_b"]).encode()).hexdigest()

    dup = sorted((p for p in pairs if int(p["label"]) == 1), key=h)[:PROBES]
    non = sorted((p for p in pairs if int(p["label"]) == 0), key=h)[:PROBES]
    probes = dup + non
    query_texts = {p["text_b"] for p in probes}
    stored_texts = list(dict.fromkeys(t for p in pairs for t in (p["text_a"], p["text_b"])
                                      if t not in query_texts))
    pos = {t: i for i, t in enumerate(stored_texts)}
    probes = [p for p in probes if p["text_a"] in pos]
    from router_extproc.routes import embed_with
    from router_extproc.signals import SignalEngine

    engine = SignalEngine(MODEL_DIR, device="cpu", threads=2, spin=False)
    embed = embed_with(engine, batch=64)
    texts = stored_texts + [p["text_b"] for p in probes]
    progress(f"embedding {len(texts):,} QQP questions once (cached in {cache})")
    chunks = []
    for s in range(0, len(texts), 4096):
        chunks.append(embed(texts[s:s + 4096]))
        progress(f"  {min(s + 4096, len(texts)):,} / {len(texts):,}")
    vecs = np.concatenate(chunks).astype(np.float32)
    vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    corpus = RealCorpus(stored=vecs[:len(stored_texts)], queries=vecs[len(stored_texts):],
                        targets=np.asarray([pos[p["text_a"]] for p in probes], np.int64),
                        labels=np.asarray([int(p["label"]) for p in probes], np.int8))
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, stored=corpus.stored, queries=corpus.queries, targets=corpus.targets, labels=corpus.labels)
    tmp.replace(cache)
    return corpus


if __name__ == "__main__":
    c = load_real()
    print("none" if c is None else f"stored {c.stored.shape}, queries {c.queries.shape}")
