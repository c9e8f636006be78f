"""GPTCache on the QQP test pairs, run inside .bench-venv (imports only GPTCache + numpy).

    .bench-venv/bin/python tests/bench/peers/gptcache_eval.py DATA_DIR [CACHE_DIR_PARENT [MAX_PAIRS]]

DATA_DIR (written by tests/bench/bench_peers.py) holds ``qqp_texts.jsonl`` (one JSON string a line),
``qqp_emb.npy`` (our encoder's normalized embeddings, same order) and ``qqp_pairs.jsonl`` ({"a", "b", "label"},
indices into the texts). The cache is GPTCache's documented similar cache (``init_similar_cache``: sqlite +
faiss data manager, ``SearchDistanceEvaluation()``, ``Config()`` default threshold, temperature_softmax
post-processing); only the embedding function is replaced, by a lookup of our precomputed vectors, so both
caches see identical embeddings. For each pair in order: ``put(text_a, str(a))`` then ``get(text_b)``.
GPTCache's sqlite + faiss files go to a fresh folder under CACHE_DIR_PARENT (default: the system temp dir; pass
/dev/shm to take disk fsyncs out of its latency); MAX_PAIRS caps the pairs (first N, same order).

Prints one JSON object: per-query returned entry (text index of the cached question, -1 on a miss), the
best candidate's rank and answer (for the threshold sweep), lookup latencies in ms, versions.
"""

from __future__ import annotations

import atexit
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from peer_common import inputs, progress, versions


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    data = Path(argv[0])
    texts, E, pairs = inputs(data, "qqp", "pairs")
    if len(argv) > 2 and int(argv[2]) > 0:
        pairs = pairs[:int(argv[2])]
    index = {t: i for i, t in enumerate(texts)}

    from gptcache import Cache, Config
    from gptcache.adapter.api import get, init_similar_cache, put
    from gptcache.embedding.base import BaseEmbedding
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    class Precomputed(BaseEmbedding):
        """GPTCache embedding whose vectors are ours (no model download)."""

        def to_embeddings(self, data, **_):
            return E[index[data]]

        @property
        def dimension(self):
            return int(E.shape[1])

    seen: list[tuple[float, str]] = []

    class Recording(SearchDistanceEvaluation):
        """The default evaluator, unchanged, also noting each candidate's rank for the threshold sweep."""

        def evaluation(self, src_dict, cache_dict, **kw):
            r = super().evaluation(src_dict, cache_dict, **kw)
            seen.append((float(r), str(cache_dict["answer"])))
            return r

    config = Config()  # similarity_threshold default
    evaluation = Recording()
    workdir = tempfile.mkdtemp(prefix="gptcache-bench-", dir=argv[1] if len(argv) > 1 else None)
    # registered before GPTCache's own exit hook (which saves the faiss index), so it runs after it
    atexit.register(shutil.rmtree, workdir, True)
    cache = Cache()
    init_similar_cache(data_dir=workdir, cache_obj=cache, embedding=Precomputed(), evaluation=evaluation,
                       config=config)
    returned, best_rank, best_answer, lat_ms, put_ms = [], [], [], [], []
    t_start = time.time()
    for n, p in enumerate(pairs):
        t0 = time.perf_counter()
        put(texts[p["a"]], str(p["a"]), cache_obj=cache)
        put_ms.append((time.perf_counter() - t0) * 1000)
        seen.clear()
        t0 = time.perf_counter()
        ans = get(texts[p["b"]], cache_obj=cache)
        lat_ms.append((time.perf_counter() - t0) * 1000)
        returned.append(int(ans) if ans is not None else -1)
        if seen:
            r, a = max(seen)
            best_rank.append(r)
            best_answer.append(int(a))
        else:
            best_rank.append(-1.0)
            best_answer.append(-1)
        progress("gptcache", n, len(pairs), 1000, t_start, " pairs")
    lo, hi = evaluation.range()
    print(json.dumps({
        "peer": "gptcache",
        "versions": versions("gptcache", "faiss-cpu", "numpy", "sqlalchemy"),
        "setup": {
            "init": "gptcache.adapter.api.init_similar_cache (sqlite + faiss data manager)",
            "similarity_evaluation": f"SearchDistanceEvaluation(max_distance={evaluation.max_distance}, "
                                     f"positive={evaluation.positive})",
            "similarity_threshold": config.similarity_threshold,
            "rank_range": [lo, hi],
            "top_k": "faiss default (1)",
            "embedding": "our encoder's precomputed vectors (lookup by text)",
            "data_dir": workdir,
        },
        "returned": returned, "best_rank": best_rank, "best_answer": best_answer,
        "lookup_ms": lat_ms, "put_ms": put_ms,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
