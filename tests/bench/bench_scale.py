"""Scaling: router throughput vs number of router processes, and cache lookup latency vs entries.

    python -m tests.bench.bench_scale [--quick] [--sizes 1000,100000,1000000] [--budget-s S] [--cache-only]

Lookup latency is measured on the backends the router uses: the in-process hot index (numpy + a usearch graph
per large bucket), Milvus Lite (embedded) and a real Milvus 2.3 standalone server (`milvus-server`, started here
on free ports). Rows are spread over 8 tenant scopes; each lookup is a top-4 search filtered by scope and request
filter key, exactly as the router issues it. Vectors (``--vectors``): ``real`` (default) are QQP questions
embedded by the project's encoder, padded past the ~66k real ones with mixtures of real embeddings, queried with
the paraphrases and near-misses of stored questions (``real_vectors.py``); ``random`` are random unit vectors
queried at cosine 0.75-0.98 from a stored row, the graph's worst case. A size whose insert would exceed the time
budget is reported as skipped, with the measured insert rate.

Per size and backend: bulk insert rate; the wait for the index (Milvus server: flush + HNSW build over the
sealed segments; hot tier: the graph writer); idle lookup p50/p99; agreement with exact search (the rows above
the similarity floor exact search returns, the paraphrase hits among them, and whether the exact best row is the
first candidate the verifier reads); and lookup p50/p99 while another writer inserts 500 and 2,000 rows/s. Then
the RSS of a process holding a 100k-entry hot tier.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import MODEL_DIR, bench_config, free_port, load, progress, save

DIM = 384
SCOPES = [f"tenant{i}" for i in range(8)]


def _entries(n: int, start: int, rng: np.random.Generator, pool: np.ndarray | None = None):
    """Rows ``start`` .. ``start + n``: entry id row + 1, tenant row % 8; vectors from ``pool`` (real
    embeddings) or random unit vectors."""
    from router_extproc.cache.base import Entry

    if pool is not None:
        vecs = pool[start:start + n]
    else:
        vecs = rng.normal(size=(n, DIM)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    now = time.time()
    return [Entry(id=start + i + 1, scope=SCOPES[(start + i) % len(SCOPES)], filter_key="fk", fingerprint=f"fp{start + i}",
                  text=f"question {start + i}", embedding=vecs[i], response='{"choices":[]}', created_at=now,
                  expires_at=now + 86400) for i in range(n)]


def _queries(k: int, rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=(k, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _near(v: np.ndarray, cos: float, rng: np.random.Generator) -> np.ndarray:
    """A paraphrase-like query: at cosine ``cos`` from ``v`` (a random direction orthogonal to it)."""
    u = rng.normal(size=v.shape).astype(np.float32)
    u -= (u @ v) * v
    u /= np.linalg.norm(u)
    q = cos * v + np.sqrt(1 - cos * cos) * u
    return (q / np.linalg.norm(q)).astype(np.float32)


class Probes:
    """Lookup queries: random unit vectors (``real`` None), or the QQP paraphrases and near-misses of stored
    questions, each asked in the tenant of the question it was paired with."""

    def __init__(self, real: Any = None) -> None:
        self.real = real

    def __call__(self, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self.real is None:
            return _queries(k, rng), np.arange(k) % len(SCOPES)
        idx = rng.integers(0, len(self.real.queries), size=k)
        return self.real.queries[idx], self.real.targets[idx] % len(SCOPES)


async def _latency(backend: Any, qs: tuple[np.ndarray, np.ndarray]) -> list[float]:
    lat = []
    vecs, scopes = qs
    for i, q in enumerate(vecs):
        t = time.perf_counter()
        await backend.search(SCOPES[int(scopes[i])], "fk", q, top_k=4, min_similarity=-1.0, now=time.time())
        lat.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0)  # requests interleave with the router's other work (here: the insert feed)
    return sorted(lat)


def _pct(lat: list[float]) -> tuple[float, float]:
    return round(statistics.median(lat), 3), round(lat[min(len(lat) - 1, int(0.99 * len(lat)))], 3)


FLOOR = 0.7  # the shipped similarity floor: no row below it reaches the verifier


async def _recall(backend: Any, vecs: np.ndarray, have: int, rng: np.random.Generator, n: int = 300) -> dict:
    """Against exact search, on paraphrase-like queries (cosine 0.75-0.98 to a stored row): the share of rows
    exact search puts above the similarity floor (the ones the verifier could accept) that the backend returns
    too, and the share of queries whose exact best row is the backend's first candidate (the one it reads).
    The other rows of the top 4 are random rows at cosine ~0.1: which of them come back is noise."""
    per = len(SCOPES)
    qs, exact_ids = [], []
    for k in range(n):
        s = k % per
        target = s + per * int(rng.integers(0, (have - 1 - s) // per + 1))  # a row of scope s (rows s, s+8, ...)
        qs.append(_near(vecs[target], float(rng.uniform(0.75, 0.98)), rng))
    for s in range(per):  # exact search, one product per scope (a scope's rows copied once, not once per query)
        ks = list(range(s, n, per))
        rows = np.arange(s, have, per)
        sims = np.ascontiguousarray(vecs[s:have:per]) @ np.stack([qs[k] for k in ks]).T
        for j, k in enumerate(ks):
            col = sims[:, j]
            top = np.argpartition(-col, 3)[:4] if len(col) > 4 else np.arange(len(col))
            order = top[np.argsort(-col[top], kind="stable")]
            exact_ids.append((k, [int(rows[i]) + 1 for i in order],  # entry ids are row + 1
                              {int(rows[i]) + 1 for i in order if sims[i, j] >= FLOOR}))
    first = found = eligible = 0
    for k, exact, above in sorted(exact_ids):
        got = [c.entry.id for c in await backend.search(SCOPES[k % per], "fk", qs[k], top_k=4, min_similarity=-1.0,
                                                          now=time.time())]
        first += bool(got) and got[0] == exact[0]
        found += len(above & set(got))
        eligible += len(above)
    return {"above_floor_recall": round(found / max(eligible, 1), 4),
            "first_candidate_agreement": round(first / n, 4), "queries": n}


async def _recall_real(backend: Any, vecs: np.ndarray, have: int, real: Any, n: int = 3000) -> dict:
    """Against exact search, on real queries (QQP paraphrases and near-misses of stored questions, asked in the
    tenant of their pair): the share of the exact top-4 rows above the similarity floor (the ones the verifier
    could accept) the backend returns too; the same for the duplicate pairs alone (a paraphrase whose stored
    question exact search returns above the floor: the hits the verifier is there to accept); and the share of
    queries whose exact best row is the backend's first candidate."""
    per = len(SCOPES)
    pick = np.linspace(0, len(real.queries) - 1, min(n, len(real.queries))).astype(np.int64)
    qs, scopes = real.queries[pick], real.targets[pick] % per
    dup = real.labels[pick] == 1
    first = found = eligible = dup_found = dup_eligible = 0
    for s in range(per):
        ks = np.nonzero(scopes == s)[0]
        if not len(ks) or s >= have:
            continue
        rows = np.arange(s, have, per)
        sims = np.ascontiguousarray(vecs[s:have:per]) @ qs[ks].T
        for j, k in enumerate(ks.tolist()):
            col = sims[:, j]
            top = np.argpartition(-col, 3)[:4] if len(col) > 4 else np.arange(len(col))
            order = top[np.argsort(-col[top], kind="stable")]
            exact = [int(rows[i]) + 1 for i in order]  # entry ids are row + 1
            above = {int(rows[i]) + 1 for i in order if col[i] >= FLOOR}
            got = [c.entry.id for c in await backend.search(SCOPES[s], "fk", qs[k], top_k=4, min_similarity=-1.0,
                                                              now=time.time())]
            first += bool(got) and got[0] == exact[0]
            found += len(above & set(got))
            eligible += len(above)
            pair = int(real.targets[pick[k]]) + 1
            if dup[k] and pair in above:
                dup_eligible += 1
                dup_found += pair in got
    return {"above_floor_recall": round(found / max(eligible, 1), 4),
            "duplicate_recall": round(dup_found / max(dup_eligible, 1), 4), "eligible_rows": eligible,
            "eligible_duplicates": dup_eligible, "first_candidate_agreement": round(first / len(pick), 4),
            "queries": int(len(pick))}


async def _under_inserts(backend: Any, writer: Any, qs: np.ndarray, rate: int, start_id: int) -> dict:
    """Lookup latency while ``writer`` inserts ``rate`` rows/s (batches every 0.1 s), as another router would."""
    rng = np.random.default_rng(1)
    done = asyncio.Event()
    written = 0

    async def feed() -> None:
        nonlocal written
        per = max(1, rate // 10)
        t0 = time.perf_counter()
        while not done.is_set():
            batch = _entries(per, start_id + written, rng)
            await writer.insert(batch)
            written += per
            await asyncio.sleep(max(0.0, t0 + written / rate - time.perf_counter()))

    task = asyncio.get_running_loop().create_task(feed())
    await asyncio.sleep(1.0)
    t0, w0 = time.perf_counter(), written
    lat = await _latency(backend, qs)
    while time.perf_counter() - t0 < 3.0:  # long enough for the insert rate to be a rate, not one batch
        lat = sorted(lat + await _latency(backend, (qs[0][:50], qs[1][:50])))
    achieved = (written - w0) / (time.perf_counter() - t0)
    done.set()
    await task
    p50, p99 = _pct(lat)
    return {"p50_ms": p50, "p99_ms": p99, "insert_rows_per_s": round(achieved)}


class CpuSampler:
    """CPU seconds a process (the Milvus server) spends, sampled every 0.1 s on a thread while a block runs, so
    that a bulk load's phases (insert, flush, index build) can each be given their share: the rows/s a load reaches
    on cores shared with other work says how much of the cores it got; CPU seconds per row say what it costs."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = None
        self._thread = None

    def _cpu(self) -> float:
        f = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def __enter__(self) -> "CpuSampler":
        import threading

        if self.pid is None or not Path(f"/proc/{self.pid}/stat").exists():
            return self
        self._stop = threading.Event()
        self.samples.append((time.perf_counter(), self._cpu()))

        def run() -> None:
            while not self._stop.wait(0.1):
                try:
                    self.samples.append((time.perf_counter(), self._cpu()))
                except OSError:
                    return

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.samples.append((time.perf_counter(), self._cpu()))

    def phases(self, rows: int, durations: list[float], names: list[str]) -> dict[str, float]:
        """CPU seconds per 100 000 rows in each phase, the phases being consecutive ``durations`` from the start."""
        if len(self.samples) < 2 or rows <= 0:
            return {}
        t0 = self.samples[0][0]

        def at(t: float) -> float:
            return min(self.samples, key=lambda x: abs(x[0] - t))[1]

        out, start = {}, t0
        for name, d in zip(names, durations):
            end = start + d
            out[name] = round((at(end) - at(start)) * 100_000 / rows, 1)
            start = end
        return out


async def _interleaved(backend: Any, writer: Any, qs: tuple[np.ndarray, np.ndarray], rate: int, start_id: int, *,
                       rounds: int = 4, seconds: float = 2.5, feed: np.ndarray | None = None,
                       alt: Any = None) -> dict:
    """Lookups without and with a writer inserting ``rate`` rows/s (batches every 0.1 s, as the router's store
    queue sends them), in alternating rounds of ``seconds`` each: the cores are shared with other work whose load
    drifts, so a quiet and a loaded figure measured minutes apart are not comparable, while alternating rounds see
    the same drift. The written rows come from ``feed`` (real-like vectors; random unit vectors when None). Lookups
    run back to back, yielding to the writer between them. ``alt``: a second backend holding the same rows in
    another configuration (the hot tier with one graph a bucket), measured the same way inside the same rounds
    (series ``alt_without`` / ``alt_with``), its writer writing into it."""
    rng = np.random.default_rng(2)
    lat: dict[str, list[float]] = {"without": [], "with": []}
    if alt is not None:
        lat.update({"alt_without": [], "alt_with": []})
    written = rows = 0
    with_s = 0.0

    async def lookups(b: Any, name: str, until: float) -> None:
        vecs, scopes = qs
        i = 0
        while time.perf_counter() < until:
            q, s = vecs[i % len(vecs)], SCOPES[int(scopes[i % len(vecs)])]
            i += 1
            t = time.perf_counter()
            await b.search(s, "fk", q, top_k=4, min_similarity=-1.0, now=time.time())
            lat[name].append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0)

    async def loaded(b: Any, w: Any, name: str) -> None:
        nonlocal written, rows, with_s
        done = asyncio.Event()

        async def write() -> None:
            nonlocal written
            per, t0, n = max(1, rate // 10), time.perf_counter(), 0
            while not done.is_set():
                batch = _entries(per, start_id + written, rng)
                if feed is not None:  # the same rows with real-like vectors: a graph inserts random ones slowest
                    for j, e in enumerate(batch):
                        e.embedding = feed[(written + j) % len(feed)]
                await w.insert(batch)
                written += per
                n += per
                await asyncio.sleep(max(0.0, t0 + n / rate - time.perf_counter()))

        task = asyncio.get_running_loop().create_task(write())
        await asyncio.sleep(0.3)  # the writer under way before the round's first lookup
        w0, t1 = written, time.perf_counter()
        await lookups(b, name, t1 + seconds)
        if name == "with":
            rows += written - w0
            with_s += time.perf_counter() - t1
        done.set()
        await task

    for _ in range(rounds):
        await lookups(backend, "without", time.perf_counter() + seconds)
        await loaded(backend, writer, "with")
        if alt is not None:
            await lookups(alt, "alt_without", time.perf_counter() + seconds)
            await loaded(alt, alt, "alt_with")
    out: dict[str, Any] = {"rounds": rounds, "round_s": seconds, "load_1m": round(os.getloadavg()[0], 1)}
    for name, v in lat.items():
        p50, p99 = _pct(sorted(v))
        out[name] = {"p50_ms": p50, "p99_ms": p99, "lookups": len(v)}
    out["with"]["insert_rows_per_s"] = round(rows / max(with_s, 1e-6))
    # the written rows go again: they are real-like, so a later size's recall against exact search (which knows
    # only the loaded rows) would count them, found in a top 4, as a stored row missed
    for w in (writer, alt):  # each removes the ids it holds; the others' are absent there, which is harmless
        if w is None:
            continue
        if hasattr(w, "index"):
            w.index.remove_ids(range(start_id + 1, start_id + written + 1))
        else:
            await w._guard(w._delete_sync, f"id > {start_id} and id <= {start_id + written}")
    return out


async def _ef_sweep(backend: Any, efs: list[int], vecs: np.ndarray, have: int, queries: int,
                    rng: np.random.Generator, real: Any = None) -> dict[str, dict]:
    """Milvus server: idle p50/p99 and agreement with exact search for each search-time ``ef`` on the same rows
    (1 000 recall queries each, so one lost row is 0.1 %)."""
    import dataclasses

    base = backend.cfg
    out = {}
    try:
        for ef in efs:
            backend.cfg = dataclasses.replace(base, search_params={**dict(base.search_params), "ef": ef})
            p50, p99 = _pct(await _latency(backend, Probes(real)(queries, rng)))
            rec = (await _recall_real(backend, vecs, have, real, n=1000) if real is not None
                   else await _recall(backend, vecs, have, rng, n=1000))
            out[str(ef)] = {"p50_ms": p50, "p99_ms": p99, **rec}
            progress(f"    ef {ef}: {json.dumps(out[str(ef)])}")
    finally:
        backend.cfg = base
    return out


async def _server_variants(backend: Any, probes: Probes, rng: np.random.Generator, rounds: int = 3,
                           per: int = 150) -> dict[str, dict]:
    """Milvus server, at the largest size: idle lookup p50/p99 for the knobs the issue names, each changed alone,
    run in interleaved rounds (the cores' load drifts: a knob measured minutes after another is not comparable).
    ``shipped``: the config as shipped; ``ef 64``; ``Eventually`` consistency; ``vector field read``: the rows'
    vectors read from the vector field instead of their base64 copy; ``no vector output``: the same search without
    fetching the rows' vectors at all (the floor: the verifier reads them);
    and ``scalar indexes`` (Trie on scope and filter_key, STL_SORT on expires_at), built at the end of each round,
    measured, and dropped again, so that it sees the same drift as the others."""
    import dataclasses

    from router_extproc.cache import milvus as M

    base = backend.cfg
    qs = probes(per, rng)
    copy = backend.copy_field

    def plain(**kw: Any):
        return lambda: setattr(backend, "cfg", dataclasses.replace(base, **kw))

    def no_vec(scope, filter_key, vector, top_k, now):
        expr = f"scope == {M._q(scope)} and filter_key == {M._q(filter_key)} and expires_at > {now:.3f}"
        backend._client.search(
            base.collection, data=[np.asarray(vector, np.float32).tolist()], anns_field=base.vector_field,
            filter=expr, limit=top_k, output_fields=M._FIELDS, timeout=base.search_timeout_s,
            search_params={"metric_type": base.metric_type, "params": dict(base.search_params)},
            consistency_level=base.consistency_level)
        return []

    def vector_field() -> None:
        backend.copy_field = None

    def without_vectors() -> None:
        backend._search_sync = no_vec  # the instance attribute shadows the method for this round only

    variants = {"shipped": plain(), "ef 64": plain(search_params={**dict(base.search_params), "ef": 64}),
                "Eventually": plain(consistency_level="Eventually")}
    if copy:
        variants["vector field read (no copy)"] = vector_field
    variants["no vector output"] = without_vectors
    lat: dict[str, list[float]] = {k: [] for k in [*variants, "scalar indexes"]}

    async def timed(name: str) -> None:
        lat[name] += await _latency(backend, qs)

    c = backend._client
    scalar = [("scope", "Trie", "scope_trie"), ("filter_key", "Trie", "filter_key_trie"),
              ("expires_at", "STL_SORT", "expires_at_sort")]

    def build() -> None:
        c.release_collection(base.collection)
        ip = c.prepare_index_params()
        for field, kind, name in scalar:
            ip.add_index(field_name=field, index_type=kind, index_name=name)
        c.create_index(base.collection, ip, timeout=1800)
        c.load_collection(base.collection, timeout=1800)

    def drop() -> None:
        c.release_collection(base.collection)
        for _, _, name in scalar:
            c.drop_index(base.collection, name, timeout=600)
        c.load_collection(base.collection, timeout=1800)

    loop = asyncio.get_running_loop()
    builds: list[float] = []
    try:
        for _ in range(rounds):
            for name, apply in variants.items():
                apply()
                try:
                    await timed(name)
                finally:
                    backend.cfg, backend.copy_field = base, copy
                    backend.__dict__.pop("_search_sync", None)
            # scalar indexes in the same rounds: built, measured, dropped again before the next round's others
            t = time.perf_counter()
            try:
                await loop.run_in_executor(backend._executor, build)
            except Exception as exc:  # a server that refuses them: a note, not a crash
                progress(f"    scalar indexes: {exc!r}")
                break
            builds.append(time.perf_counter() - t)
            await timed("scalar indexes")
            await loop.run_in_executor(backend._executor, drop)
    finally:
        backend.cfg = base
    out = {}
    for name, v in lat.items():
        if v:
            p50, p99 = _pct(sorted(v))
            out[name] = {"p50_ms": p50, "p99_ms": p99, "lookups": len(v)}
    if "scalar indexes" in out and builds:
        out["scalar indexes"]["build_s"] = round(statistics.median(builds), 1)
    progress(f"    variants: {json.dumps(out)}")
    return out


async def _measure_backend(backend: Any, sizes: list[int], budget_s: float, queries: int, *,
                           writer: Any = None, recall: bool = True, efs: list[int] | None = None,
                           real: Any = None, variants: bool = False, alt_factory: Any = None,
                           alt_max: int = 100_000, server_pid: int | None = None) -> list[dict[str, Any]]:
    """``alt_factory``: makes a second, empty backend of another configuration which, at sizes up to ``alt_max``,
    is filled with the same rows and measured inside the same interleaved rounds (``_interleaved``'s ``alt``)."""
    rng = np.random.default_rng(0)
    rows: list[dict[str, Any]] = []
    have = 0
    rate = None
    probes = Probes(real)
    # every stored vector, for exact search: the real corpus (its entries' embeddings are views of it), or filled
    # with the random rows as they are made
    pool = real.rows(max(sizes)) if real is not None else None
    # rows the live writer stores: real-like vectors not among the stored ones (another seed's mixtures)
    feed = real.rows(len(real.stored) + 20_000, seed=9)[len(real.stored):] if real is not None else None
    bulk = bool(getattr(backend, "bulk_insert", None)) and not backend.cfg.is_lite
    vecs = pool if pool is not None else np.zeros((max(sizes), DIM), np.float32)
    for size in sizes:
        need = size - have
        if rate is not None and need / rate > budget_s:
            rows.append({"entries": size, "skipped": f"insert at {rate:.0f} rows/s would take {need / rate / 60:.0f} min"})
            continue
        t0 = time.perf_counter()
        spent = 0.0  # seconds inside backend.insert: the rate is the backend's, not this script's row generation
        batch = 5000
        unindexed = 0
        server_cpu: dict[str, float] = {}
        if bulk:
            # the bulk path (MilvusBackend.bulk_insert): returns once the rows are flushed and indexed; the index
            # is dropped for the load and built once after it
            es = _entries(need, have, rng, pool)
            if pool is None:
                vecs[have:size] = np.stack([e.embedding for e in es])
            with CpuSampler(server_pid) as cpu:
                took = await backend.bulk_insert(es, index_after=True, timeout_s=3600.0)
            del es
            have = size
            rate = max(need / max(took["insert_s"], 1e-6), 1.0)
            whole = need / max(took["insert_s"] + took["flush_s"] + took["index_s"], 1e-6)
            seal_s = took["flush_s"] + took["index_s"]
            server_cpu = cpu.phases(need, [took["insert_s"], took["flush_s"], took["index_s"]],
                                    ["insert", "flush", "index"])
        while have < size:
            n = min(batch, size - have)
            es = _entries(n, have, rng, pool)
            if pool is None:
                vecs[have:have + n] = np.stack([e.embedding for e in es])
            t = time.perf_counter()
            await backend.insert(es)
            spent += time.perf_counter() - t
            have += n
            if time.perf_counter() - t0 > budget_s:
                break
        if hasattr(backend, "flush_if_idle") and not bulk:
            t = time.perf_counter()
            await backend.flush_if_idle(0.0)
            spent += time.perf_counter() - t
        if not bulk:
            rate = max(need / max(spent, 1e-6), 1.0)
        if have < size:
            rows.append({"entries": size, "skipped": f"insert budget exhausted at {have} rows ({rate:.0f} rows/s)"})
            break
        t_seal = time.perf_counter()
        if hasattr(backend, "seal") and not bulk:
            # flush + wait for the HNSW index over every sealed segment (a million rows on the loaded cores took
            # over the 600 s once allowed: rows still unindexed are searched by brute force, and are reported)
            desc = await backend.seal(timeout_s=1800.0)
            unindexed = int((desc or {}).get("pending_index_rows", 0))
        if hasattr(backend, "index"):
            await asyncio.get_running_loop().run_in_executor(None, backend.index.drain)  # the hot tier's graph
        if not bulk:
            seal_s = time.perf_counter() - t_seal
            whole = need / max(spent + seal_s, 1e-6)
        p50, p99 = _pct(await _latency(backend, probes(queries, rng)))
        row: dict[str, Any] = {"entries": size, "p50_ms": p50, "p99_ms": p99, "insert_rows_per_s": round(rate),
                               "load_rows_per_s": round(whole), "bulk_path": bulk,
                               "index_wait_s": round(seal_s, 1),
                               "load_1m": round(os.getloadavg()[0], 1)}  # the neighbours' share of the cores
        if unindexed:
            row["unindexed_rows"] = unindexed
        if bulk and server_cpu:
            row["server_cpu_s_per_100k"] = server_cpu
        if recall:
            row["vs_exact"] = (await _recall_real(backend, vecs, have, real) if real is not None
                               else await _recall(backend, vecs, have, rng))
        if efs and hasattr(backend, "seal"):
            row["ef_sweep"] = await _ef_sweep(backend, efs, vecs, have, queries, rng, real)
        if writer is not None:
            qs = probes(queries, rng)
            row["under_500_rows_s"] = await _under_inserts(backend, writer, qs, 500, 10**12 + size * 10)
            row["under_2000_rows_s"] = await _under_inserts(backend, writer, qs, 2000, 2 * 10**12 + size * 10)
            alt = None
            if alt_factory is not None and size <= alt_max:
                alt = alt_factory()
                for s0 in range(0, size, 10_000):
                    await alt.insert(_entries(min(10_000, size - s0), s0, rng, pool))
                await asyncio.get_running_loop().run_in_executor(None, alt.index.drain)
            row["interleaved_2000"] = await _interleaved(backend, writer, qs, 2000, 3 * 10**12 + size * 10, feed=feed,
                                                         alt=alt)
            del alt
            progress(f"    interleaved 2,000 rows/s: {json.dumps(row['interleaved_2000'])}")
        if variants and hasattr(backend, "seal") and size == max(sizes):
            row["variants"] = await _server_variants(backend, probes, rng)
        rows.append(row)
        progress(f"  {size:>9,d} entries: p50 {p50:.2f} ms  p99 {p99:.2f} ms (insert {rate:.0f} rows/s, index wait "
                 f"{seal_s:.1f} s) {json.dumps({k: v for k, v in row.items() if isinstance(v, dict)})}")
    return rows


def hot_tier_rss(n: int) -> dict[str, Any]:
    """RSS of a fresh process holding an ``n``-entry hot tier (graph built), as the router would after warm-up."""
    code = f"""
import time, numpy as np, resource
from router_extproc.cache.memory import MemoryIndex
from router_extproc.cache.base import Entry
def rss():
    return int([l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]) // 1024
base = rss()
rng = np.random.default_rng(0); ix = MemoryIndex({DIM}, {n}, 'lru')
pad = 'x' * 580
for s0 in range(0, {n}, 10000):
    v = rng.normal(size=(min(10000, {n} - s0), {DIM})).astype(np.float32); v /= np.linalg.norm(v, axis=1, keepdims=True)
    for j in range(len(v)):
        i = s0 + j
        # every entry its own strings, as stored answers are: a shared constant would cost nothing
        resp = '{{"choices":[{{"message":{{"content":"' + f'{{i:020d}}' + pad + '"}}}}]}}'
        ix.add(Entry(i + 1, f't{{i % 8}}', 'fk', f'{{i:032x}}', f'question text {{i:012d}} ' * 4, v[j], resp, 0.0, 1e12),
               now=0)
ix.drain()
import json; print(json.dumps({{"entries": {n}, "rss_mb": rss(), "baseline_rss_mb": base}}))
"""
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800,
                         cwd=Path(__file__).resolve().parents[2])
    if out.returncode != 0:
        return {"entries": n, "skipped": out.stderr[-300:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


BACKENDS = ("memory", "milvus_lite", "milvus_server")


async def cache_scaling(sizes: list[int], budget_s: float, queries: int, *, lite_max: int = 20_000,
                        backends: tuple[str, ...] = BACKENDS, efs: list[int] | None = None,
                        real: Any = None, variants: bool = False) -> dict[str, Any]:
    from router_extproc.cache.memory import MemoryBackend
    from router_extproc.cache.milvus import MilvusBackend
    from router_extproc.config_cache import MilvusConfig

    out: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    if "memory" in backends:
        progress("cache lookup vs entries: in-process hot tier (graph index past 2,048 rows a bucket)")
        mem = MemoryBackend(DIM, max_entries=max(sizes) + 10**6)
        await mem.start()
        # the same rows in a hot tier whose every graph bucket keeps two graphs from its first row (the shipped tier
        # does from ann.TWIN_MIN_ROWS rows), measured in the same rounds, up to 100k entries
        out["memory"] = await _measure_backend(
            mem, sizes, budget_s, queries, writer=mem, real=real,
            alt_factory=lambda: MemoryBackend(DIM, max_entries=max(sizes) + 10**6, ann_twin_rows=0))
        del mem

    if "milvus_lite" in backends:
        progress("cache lookup vs entries: Milvus Lite (embedded)")
        lite = MilvusBackend(MilvusConfig(uri=str(work / "lite.db"), collection="bench", insert_batch_size=2000,
                                          timeout_s=600, search_timeout_s=60), DIM)
        await lite.start()
        try:
            out["milvus_lite"] = await _measure_backend(lite, [s for s in sizes if s <= lite_max], budget_s,
                                                        queries, recall=False, real=real)
        finally:
            await lite.close()

    if "milvus_server" not in backends:
        return out
    try:
        from milvus import MilvusServer
    except ImportError:
        out["milvus_server"] = [{"skipped": "milvus-server not installed (pip install milvus)"}]
        return out
    progress("cache lookup vs entries: Milvus 2.3 standalone server (Bounded, partition key on the tenant)")
    server = MilvusServer()
    server.set_base_dir(str(work / "server"))
    server.listen_port = free_port()
    try:
        server.start()
        mc = MilvusConfig(uri=f"http://127.0.0.1:{server.listen_port}", collection="bench",
                          consistency_level="Bounded", timeout_s=600, search_timeout_s=60)
        remote, other = MilvusBackend(mc, DIM), MilvusBackend(mc, DIM)  # the router measured, and another writing
        await remote.start()
        await other.start()
        try:
            out["milvus_server"] = await _measure_backend(remote, sizes, budget_s, queries, writer=other, efs=efs,
                                                         real=real, variants=variants,
                                                         server_pid=getattr(server.server_proc, "pid", None))
        finally:
            await remote.close()
            await other.close()
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


LABELS = {"memory": "in-process hot tier", "milvus_lite": "Milvus Lite", "milvus_server": "Milvus 2.3 server"}
DOC = Path(__file__).resolve().parents[2] / "docs" / "cache.md"


def unindexed_note(r: dict) -> str:
    return f" ({r['unindexed_rows']:,} rows not yet indexed)" if r.get("unindexed_rows") else ""


def scale_section(result: dict[str, Any]) -> str:
    """The generated part of docs/cache.md § Scale, from this benchmark's figures."""
    def vec(r: dict) -> str:
        return "real" if str(r.get("vectors", "random")).startswith("real") else "random"

    def pp(d: dict | None) -> str:
        return f"{d['p50_ms']:g} / {d['p99_ms']:g}" if d and "p50_ms" in d else "–"

    lines = ["| backend | entries | vectors | bulk insert rows/s | index wait s | p50 / p99 ms idle | p50 / p99 ms, "
             "500 rows/s inserted | p50 / p99 ms, 2 000 rows/s inserted | recall of rows above the floor | recall of "
             "paraphrase hits | exact best row first | load avg |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for backend, rows in result.get("cache", {}).items():
        for r in rows:
            if "p50_ms" not in r:
                lines.append(f"| {LABELS.get(backend, backend)} | {r.get('entries', '')} | {vec(r)} | "
                             f"{r.get('skipped', '')} | | | | | | | | |")
                continue
            ve = r.get("vs_exact") or {}
            loaded = []
            for key in ("under_500_rows_s", "under_2000_rows_s"):
                u = r.get(key)
                loaded.append(f"{pp(u)} ({u['insert_rows_per_s']:,}/s)" if u else "–")
            ins = f"{r['insert_rows_per_s']:,}"
            if "load_rows_per_s" in r:
                ins += f" / {r['load_rows_per_s']:,}" + (" (bulk path)" if r.get("bulk_path") else "")
            lines.append(
                f"| {LABELS.get(backend, backend)} | {r['entries']:,} | {vec(r)} | {ins} | "
                f"{r.get('index_wait_s', '–')}{unindexed_note(r)} | {pp(r)} | {loaded[0]} | {loaded[1]} | "
                f"{ve.get('above_floor_recall', '–')} | {ve.get('duplicate_recall', '–')} | "
                f"{ve.get('first_candidate_agreement', '–')} | "
                f"{r.get('load_1m', '–')} |")
    sweeps = []
    for backend, rows in result.get("cache", {}).items():
        for r in rows:
            for ef, d in (r.get("ef_sweep") or {}).items():
                sweeps.append(f"| {LABELS.get(backend, backend)} | {r['entries']:,} | {vec(r)} | {ef} | {pp(d)} | "
                              f"{d['above_floor_recall']} | {d.get('duplicate_recall', '–')} | "
                              f"{d['first_candidate_agreement']} |")
    if sweeps:
        earlier = any(r.get("ef_sweep_earlier") for rows in result.get("cache", {}).values() for r in rows)
        lines += ["", "Search-time `ef` on the same rows (idle; 1 000 queries for the recall columns" +
                  ("; from the last run made with `--ef`, on rows loaded the same way" if earlier else "") + "):",
                  "", "| backend | entries | vectors | ef | p50 / p99 ms | recall of rows above the floor | recall of "
                  "paraphrase hits | exact best row first |", "|---|---|---|---|---|---|---|---|", *sweeps]
    live = []
    for backend, rows in result.get("cache", {}).items():
        for r in rows:
            iv = r.get("interleaved_2000")
            if iv:
                live.append(f"| {LABELS.get(backend, backend)} | {r['entries']:,} | {pp(iv['without'])} | "
                            f"{pp(iv['with'])} | {iv['with']['insert_rows_per_s']:,} | "
                            f"{iv['without']['lookups']:,} / {iv['with']['lookups']:,} | {iv['rounds']} x "
                            f"{iv['round_s']:g} s | {iv['load_1m']} |")
                if "alt_with" in iv:  # the same rows with two graphs in every graph bucket, in the same rounds
                    live.append(f"| {LABELS.get(backend, backend)}, two graphs at any bucket size (same rounds) | "
                                f"{r['entries']:,} | {pp(iv['alt_without'])} | {pp(iv['alt_with'])} | – | "
                                f"{iv['alt_without']['lookups']:,} / {iv['alt_with']['lookups']:,} | "
                                f"{iv['rounds']} x {iv['round_s']:g} s | {iv['load_1m']} |")
    if live:
        lines += ["", "Live writes: lookups without and with a writer storing 2,000 rows/s (real-like vectors, "
                  "batches every 0.1 s), in alternating rounds of the same run so that both see the same load on "
                  "the shared cores. A hot-tier bucket past 65 536 rows keeps two graphs and writes the one not "
                  "searched (smaller ones write their only graph in place); the \"two graphs at any bucket size\" "
                  "rows hold the same rows in a tier whose every graph bucket keeps two, measured in the same "
                  "rounds:", "", "| backend | entries | p50 / p99 ms without | p50 / p99 ms with | rows/s "
                  "written | lookups without / with | rounds | load avg |", "|---|---|---|---|---|---|---|---|", *live]
    cpu = []
    for backend, rows in result.get("cache", {}).items():
        for r in rows:
            c = r.get("server_cpu_s_per_100k")
            if c:
                cpu.append(f"| {LABELS.get(backend, backend)} | {r['entries']:,} | {r['insert_rows_per_s']:,} | "
                           f"{c.get('insert', '–')} / {c.get('flush', '–')} / {c.get('index', '–')} | "
                           f"{r.get('load_1m', '–')} |")
    if cpu:
        lines += ["", "Where a bulk load's time goes: the server's CPU seconds per 100 000 rows in each phase of "
                  "`bulk_insert` (sampled from /proc while it ran; the server runs at the benchmark's nice 19, so "
                  "the rows/s say how much of the shared cores it got, the CPU seconds what the rows cost):", "",
                  "| backend | entries | rows/s inserted | server CPU s per 100k rows: insert / flush / index build | "
                  "load avg |", "|---|---|---|---|---|", *cpu]
    knobs = []
    for backend, rows in result.get("cache", {}).items():
        for r in rows:
            for name, d in (r.get("variants") or {}).items():
                extra = f" (built in {d['build_s']:g} s)" if "build_s" in d else ""
                knobs.append(f"| {LABELS.get(backend, backend)} | {r['entries']:,} | {name}{extra} | {pp(d)} | "
                             f"{d['lookups']} |")
    if knobs:
        lines += ["", "Server knobs, one changed at a time, idle, measured in interleaved rounds (`--variants`; "
                  "\"vector field read\": the candidates' vectors fetched from the vector field instead of their "
                  "base64 copy; \"no vector output\": a search that fetches no vectors at all, which the verifier "
                  "needs, so a floor; scalar indexes: built at the end of each round, measured, dropped again):", "",
                  "| backend | entries | variant | p50 / p99 ms | lookups |", "|---|---|---|---|---|", *knobs]
    rss = [r for r in result.get("rss", []) if "rss_mb" in r]
    m = result.get("machine", {})
    head = (f"_`python -m tests.bench.bench_scale --cache-only --sizes <entries,...> [--backends ...]`, "
            f"{m.get('date', 'today')}, {m.get('cores', '?')} cores shared with other builds (latencies, p99 above "
            "all, are inflated by that load). Bulk inserts: rows/s inserted / rows/s over the whole load until searchable "
            "(insert + flush + index; the script's row generation excluded). Milvus server rows marked \"bulk path\" "
            "load through `MilvusBackend.bulk_insert` (10 000-row column batches, the vector index dropped for the "
            "load and built once after it); the others through the store path's `insert`, 5 000-row batches; index "
            "wait: flush + "
            "HNSW build (server) or the graph writer (hot tier); loaded columns: a second writer inserting at that "
            "rate (achieved rate in brackets) while lookups run; load avg: the 1-minute load average when the row was "
            "measured (2 = both cores busy)._")
    tail = "".join(f"\n\nRSS of a process holding a {r['entries']:,}-entry hot tier (graph built, a 600-byte answer and a 100-byte question each): "
                   f"**{r['rss_mb']} MB** ({r['baseline_rss_mb']} MB before filling it)." for r in rss)
    return head + "\n\n" + "\n".join(lines) + tail


def write_doc(result: dict[str, Any]) -> None:
    text = DOC.read_text(encoding="utf-8")
    start, end = "<!-- cache_scale:start -->", "<!-- cache_scale:end -->"
    if start not in text or end not in text:
        return
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    DOC.write_text(before + start + "\n" + scale_section(result) + "\n" + end + after, encoding="utf-8")


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


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """A backend's rows after a run: a new row replaces the last one of its size, sizes not measured again keep
    their last row (its own load avg and date), and a new row without an ef sweep (no ``--ef``) keeps the last
    sweep of its size, marked as from an earlier run."""
    by = {r.get("entries"): r for r in old}
    for r in new:
        prev = by.get(r.get("entries")) or {}
        if "ef_sweep" in prev and "ef_sweep" not in r and "p50_ms" in r:
            r["ef_sweep"], r["ef_sweep_earlier"] = prev["ef_sweep"], True
        by[r.get("entries")] = r
    return sorted(by.values(), key=lambda r: int(r.get("entries") or 0))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sizes", default=None)
    ap.add_argument("--budget-s", type=float, default=None, help="max insert seconds per backend and size")
    ap.add_argument("--cache-only", action="store_true", help="skip the router-worker rows (keeps the last ones)")
    ap.add_argument("--workers-only", action="store_true", help="skip the cache-size rows (keeps the last ones)")
    ap.add_argument("--ef", default=None, help="Milvus server: also measure these search-time ef values "
                    "(comma-separated) at every size")
    ap.add_argument("--vectors", choices=("real", "random"), default="real",
                    help="real: QQP questions embedded by the encoder, padded (real_vectors.py; random when the data "
                    "or models are missing); random: random unit vectors, the graph's worst case")
    ap.add_argument("--variants", action="store_true", help="Milvus server, largest size: also measure ef 64, "
                    "Eventually consistency, no vector output and scalar indexes against the shipped settings")
    ap.add_argument("--backends", default=",".join(BACKENDS), help="cache backends to measure (keeps the others' "
                    "last rows)")
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
        backends = tuple(args.backends.split(","))
        real = None
        if args.vectors == "real":
            from .real_vectors import load_real

            real = load_real()
            if real is None:
                progress("real vectors unavailable (QQP data or models missing): random unit vectors")
        vectors = "random" if real is None else f"real ({len(real.stored):,} QQP questions, padded)"
        new = asyncio.run(cache_scaling(sizes, budget, 100 if args.quick else 300, backends=backends,
                                        efs=[int(e) for e in args.ef.split(",")] if args.ef else None, real=real,
                                        variants=args.variants))
        for rows in new.values():
            for r in rows:
                r["vectors"] = vectors
        last = (load("scale") or {}).get("cache", {})
        cache = {**last, **{b: merge_rows(last.get(b, []), rows) for b, rows in new.items()}}
    # the hot tier's RSS is measured with the hot tier's rows; a run of other backends keeps the last figure
    rss = ([hot_tier_rss(n) for n in (100_000,)] if not args.workers_only and "memory" in args.backends.split(",")
           else (load("scale") or {}).get("rss", []))
    result = {"workers": workers,
              "cache": cache,
              "rss": rss,
              "sizes": sizes, "quick": args.quick}
    save("scale", result)
    write_doc(load("scale") or result)
    return result


if __name__ == "__main__":
    main()
    # After a million-row run the killed milvus-server leaves a pymilvus/grpc thread that keeps the interpreter
    # alive (observed: the process never exited); the figures are saved by now, so leave without waiting for it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
