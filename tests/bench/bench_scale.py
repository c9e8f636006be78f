"""Scaling: router throughput vs number of router processes, and cache lookup latency vs entries.

    python -m tests.bench.bench_scale [--quick] [--sizes 1000,100000,1000000] [--budget-s S] [--cache-only]

Lookup latency is measured on the backends the router uses: the in-process hot index (numpy), Milvus
Lite (embedded) and a real Milvus 2.3 standalone server (`milvus-server`, started here on free ports).
Rows are 384-d normalized random vectors spread over 8 tenant scopes; each lookup is a top-4 search
filtered by scope and request filter key, exactly as the router issues it. A size whose insert would
exceed the time budget is reported as skipped, with the measured insert rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import MODEL_DIR, bench_config, load, progress, save

DIM = 384
SCOPES = [f"tenant{i}" for i in range(8)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entries(n: int, start: int, rng: np.random.Generator):
    from router_extproc.cache.base import Entry

    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    now = time.time()
    return [Entry(id=start + i + 1, scope=SCOPES[(start + i) % len(SCOPES)], filter_key="fk", fingerprint=f"fp{start + i}",
                  text=f"question {start + i}", embedding=vecs[i], response='{"choices":[]}', created_at=now,
                  expires_at=now + 86400) for i in range(n)]


def _queries(k: int, rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=(k, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


async def _measure_backend(backend: Any, sizes: list[int], budget_s: float, queries: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    have = 0
    rate = None
    for size in sizes:
        need = size - have
        if rate is not None and need / rate > budget_s:
            rows.append({"entries": size, "skipped": f"insert at {rate:.0f} rows/s would take {need / rate / 60:.0f} min"})
            continue
        t0 = time.perf_counter()
        batch = 5000
        while have < size:
            n = min(batch, size - have)
            await backend.insert(_entries(n, have, rng))
            have += n
            if time.perf_counter() - t0 > budget_s:
                break
        if hasattr(backend, "flush_if_idle"):
            await backend.flush_if_idle(0.0)
        elapsed = time.perf_counter() - t0
        rate = max(need / max(elapsed, 1e-6), 1.0)
        if have < size:
            rows.append({"entries": size, "skipped": f"insert budget exhausted at {have} rows ({rate:.0f} rows/s)"})
            break
        lat = []
        qs = _queries(queries, rng)
        for i, q in enumerate(qs):
            t = time.perf_counter()
            await backend.search(SCOPES[i % len(SCOPES)], "fk", q, top_k=4, min_similarity=-1.0, now=time.time())
            lat.append((time.perf_counter() - t) * 1000)
        lat.sort()
        rows.append({"entries": size, "p50_ms": round(statistics.median(lat), 3),
                     "p99_ms": round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3),
                     "insert_rows_per_s": round(rate)})
        progress(f"  {size:>9,d} entries: p50 {rows[-1]['p50_ms']:.2f} ms  p99 {rows[-1]['p99_ms']:.2f} ms "
                 f"(insert {rate:.0f} rows/s)")
    return rows


async def cache_scaling(sizes: list[int], budget_s: float, queries: int) -> dict[str, Any]:
    from router_extproc.cache.memory import MemoryBackend
    from router_extproc.cache.milvus import MilvusBackend
    from router_extproc.config_cache import MilvusConfig

    out: dict[str, Any] = {}
    progress("cache lookup vs entries: in-process hot index (numpy)")
    mem = MemoryBackend(DIM, max_entries=max(sizes) + 1)
    await mem.start()
    out["memory"] = await _measure_backend(mem, sizes, budget_s, queries)

    progress("cache lookup vs entries: Milvus Lite (embedded)")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    lite = MilvusBackend(MilvusConfig(uri=str(work / "lite.db"), collection="bench", insert_batch_size=2000,
                                      timeout_s=600), DIM)
    await lite.start()
    try:
        out["milvus_lite"] = await _measure_backend(lite, sizes, budget_s, queries)
    finally:
        await lite.close()

    try:
        from milvus import MilvusServer
    except ImportError:
        out["milvus_server"] = [{"skipped": "milvus-server not installed (pip install milvus)"}]
        return out
    progress("cache lookup vs entries: Milvus 2.3 standalone server")
    server = MilvusServer()
    server.set_base_dir(str(work / "server"))
    server.listen_port = _free_port()
    try:
        server.start()
        remote = MilvusBackend(MilvusConfig(uri=f"http://127.0.0.1:{server.listen_port}", collection="bench",
                                            consistency_level="Bounded", timeout_s=600), DIM)
        await remote.start()
        try:
            out["milvus_server"] = await _measure_backend(remote, sizes, budget_s, queries)
        finally:
            await remote.close()
    except Exception as exc:  # an environment problem is a row in the report, not a crash
        out["milvus_server"] = [{"skipped": f"milvus-server failed: {exc}"}]
    finally:
        try:
            server.stop()
        except Exception as exc:  # a slow shutdown (a million rows to flush) must not lose the figures
            progress(f"milvus-server did not stop in time ({exc!r}); killing it")
            proc = getattr(server, "server_proc", None)
            if proc is not None:
                proc.kill()
                proc.wait()
    return out


def worker_scaling(quick: bool) -> list[dict[str, Any]]:
    from router_extproc.dev.stack import Stack

    from . import loadgen
    from .bench_overhead import body, guard_off, prompts_from, questions

    if not (MODEL_DIR / "encoder.onnx").exists():
        return [{"skipped": "models not built"}]
    n = 300 if quick else 1500
    # the overhead benchmark's miss path: in-memory cache on, jailbreak guard off, every prompt new
    fresh, offset = questions(30000, both_sides=True), 0
    rows = []
    for workers in (1, 2):
        data = guard_off(bench_config(signals=True, cache=True))
        data["server"]["workers"] = workers
        with Stack(data, workdir=Path(tempfile.mkdtemp(prefix=f"bench-w{workers}-"))) as stack:
            port = stack.config.envoy.listen_port
            prompts, offset = prompts_from(50, n + 64, fresh, offset)
            reqs = [loadgen.encode_post("127.0.0.1", port, "/v1/chat/completions", body(p),
                                        {"authorization": "Bearer bench"}) for p in prompts]
            asyncio.run(loadgen.run("127.0.0.1", port, reqs[n:], total=64, concurrency=16))
            r = asyncio.run(loadgen.run("127.0.0.1", port, reqs[:n], total=n, concurrency=32, max_seconds=90))
            rows.append({"workers": workers, "rps": round(r.rps, 1), "p50_ms": round(r.p50, 2),
                         "p99_ms": round(r.p99, 2), "errors": r.errors,
                         "statuses": {str(k): v for k, v in r.statuses.items()}})
            progress(f"workers={workers}: {r.rps:.1f} req/s p50 {r.p50:.1f} ms (miss path, all signals, c=32)")
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default=None)
    ap.add_argument("--budget-s", type=float, default=None, help="max insert seconds per backend and size")
    ap.add_argument("--cache-only", action="store_true", help="skip the router-worker rows (keeps the last ones)")
    ap.add_argument("--workers-only", action="store_true", help="skip the cache-size rows (keeps the last ones)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [1000, 20000] if args.quick else [1000, 100000, 1000000])
    budget = args.budget_s or (20.0 if args.quick else 900.0)  # 1M rows into Milvus Lite: ~6 min at 2.6k rows/s
    if args.cache_only:
        workers = (load("scale") or {}).get("workers", [])
    else:
        workers = worker_scaling(args.quick)
    if args.workers_only:
        last = load("scale") or {}
        cache, sizes = last.get("cache", {}), last.get("sizes", sizes)
    else:
        cache = asyncio.run(cache_scaling(sizes, budget, 100 if args.quick else 300))
    result = {"workers": workers,
              "cache": cache,
              "sizes": sizes, "quick": args.quick}
    save("scale", result)
    return result


if __name__ == "__main__":
    main()
    # After a million-row run the killed milvus-server leaves a pymilvus/grpc thread that keeps the interpreter
    # alive (observed: the process never exited); the figures are saved by now, so leave without waiting for it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
