"""aurelio semantic-router on the domain test split, run inside .bench-venv (imports only semantic-router + numpy).

    .bench-venv/bin/python tests/bench/peers/semantic_router_eval.py DATA_DIR

DATA_DIR (written by tests/bench/bench_peers.py) holds ``domain_texts.jsonl`` (one JSON string a line),
``domain_emb.npy`` (our encoder's normalized embeddings, same order) and ``domain_rows.jsonl``
({"i", "category", "split": "train"|"test"}). One ``Route`` per category from the train utterances, an
``IndexedRouter`` with its defaults (local index, top_k=5, mean aggregation, no threshold), and a
``DenseEncoder`` subclass that returns our precomputed vectors (no model download). Every test text is routed
with one ``router(text)`` call, timed.

Prints one JSON object: predictions, per-query latencies in ms, versions, setup.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from peer_common import inputs, progress, versions

_LOOKUP: dict[str, np.ndarray] = {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    data = Path(argv[0])
    texts, E, rows = inputs(data, "domain", "rows")
    for t, v in zip(texts, E):
        _LOOKUP[t] = v

    from semantic_router import IndexedRouter, Route
    from semantic_router.encoders import DenseEncoder

    class PrecomputedEncoder(DenseEncoder):
        """Our encoder's vectors, looked up by text (semantic-router's own encoders download models)."""

        name: str = "router-extproc encoder (precomputed)"
        type: str = "precomputed"

        def __call__(self, docs):
            return [_LOOKUP[d].tolist() for d in docs]

    train: dict[str, list[str]] = {}
    for r in rows:
        if r["split"] == "train":
            train.setdefault(r["category"], []).append(texts[r["i"]])
    routes = [Route(name=c, utterances=u) for c, u in sorted(train.items())]
    t0 = time.perf_counter()
    router = IndexedRouter(encoder=PrecomputedEncoder(), routes=routes)
    build_s = time.perf_counter() - t0
    test = [r for r in rows if r["split"] == "test"]
    preds, lat_ms = [], []
    router(texts[test[0]["i"]])  # warm-up (event loop, thread pool)
    t_start = time.time()
    for n, r in enumerate(test):
        t0 = time.perf_counter()
        choice = router(texts[r["i"]])
        lat_ms.append((time.perf_counter() - t0) * 1000)
        preds.append(choice.name)
        progress("semantic-router", n, len(test), 500, t_start)
    print(json.dumps({
        "peer": "semantic-router",
        "versions": versions("semantic-router", "numpy", "pydantic"),
        "setup": {
            "router": f"IndexedRouter(top_k={router.top_k}, aggregation=mean, index={type(router.index).__name__}, "
                      "confidence_threshold=None)",
            "routes": len(routes),
            "utterances_per_route": {c: len(u) for c, u in sorted(train.items())},
            "encoder": "DenseEncoder subclass returning our encoder's precomputed vectors",
            "build_s": round(build_s, 3),
        },
        "pred": preds, "truth": [r["category"] for r in test], "latency_ms": lat_ms,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
