"""Hot-tier graph settings on real embeddings: recall of the hits the verifier could accept vs lookup time.

    python -m tests.bench.bench_recall [--entries 1000000] [--m 16,32] [--ef 32,64,128]

One tenant's bucket of a cache holding ``--entries`` rows over 8 tenants (so 1/8 of them), built from
``real_vectors`` (QQP questions embedded by the project's encoder, padded past the real rows). Queries are the
paraphrases and near-misses of stored questions. For each (M, ef): the graph proposes its candidates
(``memory.MemoryIndex`` asks for max(16, 4 x top-k)), they are rescored exactly, and the top 4 above the
similarity floor are compared with exact search over the whole bucket:

- ``recall``: share of the exact top-4 rows above the floor that the graph path returns too;
- ``dup_recall``: for duplicate pairs whose stored question exact search puts in its top 4 above the floor,
  the share the graph path returns (the hits the verifier is there to accept);
- ``p50_ms`` / ``p99_ms``: the graph search alone, one query at a time (inflated by the shared cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from .common import progress, save
from .real_vectors import load_real

FLOOR = 0.7  # config/config.yaml cache.similarity_threshold: the lowest floor shipped
TOP_K = 4
SCOPES = 8


def exact_top(bucket: np.ndarray, qs: np.ndarray) -> list[set[int]]:
    out = []
    for s in range(0, len(qs), 256):
        sims = bucket @ qs[s:s + 256].T
        for j in range(sims.shape[1]):
            col = sims[:, j]
            top = np.argpartition(-col, TOP_K)[:TOP_K]
            out.append({int(i) for i in top if col[i] >= FLOOR})
    return out


def sweep(entries: int, ms: list[int], efs: list[int], threads: int = 2) -> dict:
    from usearch.index import Index

    corpus = load_real()
    if corpus is None:
        return {"skipped": "QQP data or models missing"}
    rows = corpus.rows(entries)
    bucket = np.ascontiguousarray(rows[0::SCOPES])  # tenant 0's rows: entry i belongs to tenant i % 8
    mine = corpus.targets % SCOPES == 0
    qs, targets, labels = corpus.queries[mine], corpus.targets[mine] // SCOPES, corpus.labels[mine]
    del rows
    t = time.perf_counter()
    exact = exact_top(bucket, qs)
    progress(f"bucket {len(bucket):,} rows, {len(qs)} queries; exact search {time.perf_counter() - t:.1f} s")
    eligible = sum(len(e) for e in exact)
    dups = [i for i in range(len(qs)) if labels[i] == 1 and int(targets[i]) in exact[i]]
    out = {"entries": entries, "bucket_rows": len(bucket), "queries": len(qs), "eligible_rows": eligible,
           "eligible_duplicates": len(dups), "floor": FLOOR, "load_1m": round(os.getloadavg()[0], 1), "runs": []}
    keys = np.arange(len(bucket), dtype=np.uint64)
    for m in ms:
        ix = Index(ndim=bucket.shape[1], metric="ip", dtype="i8", connectivity=m, expansion_add=64)
        t = time.perf_counter()
        ix.add(keys, bucket, threads=threads)
        build_s = time.perf_counter() - t
        for ef in efs:
            ix.expansion_search = ef
            lat, found, dup_found = [], 0, 0
            got_all = []
            for i, q in enumerate(qs):
                t = time.perf_counter()
                cand = np.asarray(ix.search(q, max(16, 4 * TOP_K)).keys, np.int64).reshape(-1)
                lat.append((time.perf_counter() - t) * 1000)
                sims = bucket[cand] @ q
                keep = np.argsort(-sims)[:TOP_K]
                got = {int(cand[k]) for k in keep if sims[k] >= FLOOR}
                got_all.append(got)
                found += len(got & exact[i])
            dup_found = sum(int(targets[i]) in got_all[i] for i in dups)
            lat.sort()
            r = {"M": m, "ef": ef, "build_s": round(build_s, 1),
                 "recall": round(found / max(eligible, 1), 4),
                 "dup_recall": round(dup_found / max(len(dups), 1), 4),
                 "p50_ms": round(statistics.median(lat), 3), "p99_ms": round(lat[int(0.99 * len(lat))], 3)}
            out["runs"].append(r)
            progress(f"  {json.dumps(r)}")
        del ix
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--m", default="16,32")
    ap.add_argument("--ef", default="32,64,128")
    a = ap.parse_args(argv)
    res = sweep(a.entries, [int(x) for x in a.m.split(",")], [int(x) for x in a.ef.split(",")])
    save("recall", res)
    return res


if __name__ == "__main__":
    main()
