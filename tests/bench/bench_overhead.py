"""Router overhead: Envoy alone vs Envoy + router, zero-latency demo upstream, on this machine.

    python -m tests.bench.bench_overhead [--quick]

Scenarios (same Envoy build, same routes, same upstream, measured in one run):
  envoy            Envoy without the ext_proc filter
  router_bare      Envoy + router, signals and cache off (the ext_proc protocol cost alone)
  router_signals   Envoy + router, all signals on, cache off (the breakdown: protocol + signal pass)
  router_miss      Envoy + router, all signals on, cache on, every prompt new (the miss path)
  router_hit       Envoy + router, all signals on, the same request repeated (exact-match cache hits)
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from router_extproc.dev.stack import Stack

from . import loadgen
from .common import MODEL_DIR, ROOT, BaselineEnvoy, bench_config, progress, save

QQP = ROOT / "models" / "data" / "qqp-dev.jsonl.gz"
ROUNDS = 5  # alternating rounds of the signals-only and miss-path stacks at c=1
WORDS_PER_TOKEN = 0.75


def questions(n: int, *, both_sides: bool = False) -> list[str]:
    """``n`` distinct QQP questions (``text_a``; with ``both_sides`` also ``text_b``), padded with generated ones."""
    out: list[str] = []
    seen: set[str] = set()
    if QQP.exists():
        with gzip.open(QQP, "rt") as f:
            for line in f:
                row = json.loads(line)
                for q in (row["text_a"], row["text_b"]) if both_sides else (row["text_a"],):
                    q = q.strip()
                    if q and q not in seen:
                        seen.add(q)
                        out.append(q)
                if len(out) >= n:
                    break
    while len(out) < n:
        out.append(f"Question number {len(out)}: explain topic {len(out) * 7919 % 10007} in simple terms.")
    return out[:n]


def prompts_of(tokens: int, n: int, pool: list[str]) -> list[str]:
    """``n`` prompts of about ``tokens`` tokens, cycling through the pool (for paths without a cache)."""
    return _prompts(tokens, n, pool, 0, cycle=True)[0]


def prompts_from(tokens: int, n: int, pool: list[str], start: int = 0) -> tuple[list[str], int]:
    """``n`` prompts of about ``tokens`` tokens made of consecutive pool questions from ``start``, and the index
    after the last question used: sets drawn from successive starts share no question, so a "miss" benchmark
    never meets its own earlier prompts as semantic near-duplicates."""
    return _prompts(tokens, n, pool, start, cycle=False)


def _prompts(tokens: int, n: int, pool: list[str], start: int, *, cycle: bool) -> tuple[list[str], int]:
    words_needed = int(tokens * WORDS_PER_TOKEN)
    out = []
    k = start
    for i in range(n):
        words: list[str] = []
        while len(words) < words_needed:
            if k >= len(pool) and not cycle:
                raise ValueError(f"the pool of {len(pool)} questions ran out after {i} prompts of {tokens} tokens")
            words += pool[k % len(pool)].split()
            k += 1
        out.append(" ".join(words[:words_needed]) + f" ({i})")
    return out, k


def body(prompt: str, model: str = "auto") -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}],
                       "temperature": 0}).encode()


def measure(port: int, payloads: list[bytes], concurrency: int, total: int, *, headers=None,
            warmup: list[bytes] | None = None, after_warmup: Callable[[], Any] | None = None) -> loadgen.Result:
    """``warmup`` (default: the first payloads) is sent first and not recorded; a miss benchmark passes payloads
    of its own so that no measured request repeats a warm-up one."""
    def encode(bodies: list[bytes]) -> list[bytes]:
        return [loadgen.encode_post("127.0.0.1", port, "/v1/chat/completions", b,
                                    {"authorization": "Bearer bench", **(headers or {})}) for b in bodies]

    warm = encode(warmup if warmup is not None else payloads[: max(4, concurrency)])
    asyncio.run(loadgen.run("127.0.0.1", port, warm, total=max(8, concurrency * 2), concurrency=concurrency,
                            max_seconds=20))
    if after_warmup is not None:
        after_warmup()
    return asyncio.run(loadgen.run("127.0.0.1", port, encode(payloads), total=total, concurrency=concurrency,
                                   max_seconds=60))


def guard_off(cfg: dict[str, Any]) -> dict[str, Any]:
    """The jailbreak guard off: the signal pass still scores every prompt, but no prompt is answered 403.
    Concatenated QQP questions trip it (a window holding "how do I hack ..." is enough: 8 % of the 50-token
    prompts, over half of the 1,000-token ones), and a blocked request would be measured as a fast "miss"."""
    return {**cfg, "guards": {**cfg.get("guards", {}), "jailbreak": False}}


def outcomes(stack: Stack) -> dict[str, float]:
    """The router's request count by outcome (forwarded, cache_hit, ...), from its /metrics."""
    text = urllib.request.urlopen(stack.metrics_url + "/metrics", timeout=5).read().decode()
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == "router_requests_total":
                out[sample.labels["outcome"]] = out.get(sample.labels["outcome"], 0.0) + sample.value
    return out


def merged(parts: list[loadgen.Result]) -> loadgen.Result:
    """Rounds of one scenario as one result: all their latencies, their summed wall time and statuses."""
    out = loadgen.Result()
    for r in parts:
        out.latencies_ms += r.latencies_ms
        out.wall_s += r.wall_s
        out.errors += r.errors
        for k, v in r.statuses.items():
            out.statuses[k] = out.statuses.get(k, 0) + v
    return out


def row(name: str, conc: int, tokens: int, r: loadgen.Result) -> dict[str, Any]:
    return {"scenario": name, "concurrency": conc, "tokens": tokens, "n": r.n, "p50_ms": round(r.p50, 3),
            "p99_ms": round(r.p99, 3), "rps": round(r.rps, 1), "errors": r.errors,
            "statuses": {str(k): v for k, v in r.statuses.items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n = 150 if args.quick else 600
    concs = (1, 8, 32)
    have_models = (MODEL_DIR / "encoder.onnx").exists()
    pool = questions(4000)
    rows: list[dict[str, Any]] = []
    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))

    progress("stack without signals (Envoy alone and router_bare)")
    with Stack(bench_config(signals=False, cache=False), workdir=work / "bare") as stack:
        base = BaselineEnvoy(stack)
        try:
            for conc in concs:
                for name, port in (("envoy", base.port), ("router_bare", stack.config.envoy.listen_port)):
                    payloads = [body(p, "qwen3-0.6b") for p in prompts_of(50, n, pool)]
                    r = measure(port, payloads, conc, n)
                    rows.append(row(name, conc, 50, r))
                    progress(f"{name:12s} c={conc:<3d} p50={r.p50:6.2f} ms p99={r.p99:6.2f} ms {r.rps:7.1f} req/s")
            for tokens in (200, 1000):
                payloads = [body(p, "qwen3-0.6b") for p in prompts_of(tokens, n, pool)]
                for name, port in (("envoy", base.port), ("router_bare", stack.config.envoy.listen_port)):
                    r = measure(port, payloads, 1, n // 2)
                    rows.append(row(name, 1, tokens, r))
        finally:
            base.stop()

    if have_models:
        progress("stacks with all signals side by side: cache off (signals only) and the in-memory cache (miss path)")
        with Stack(guard_off(bench_config(signals=True, cache=False)), workdir=work / "signals") as sig, \
                Stack(guard_off(bench_config(signals=True, cache=True)), workdir=work / "full") as stack:
            port, sport = stack.config.envoy.listen_port, sig.config.envoy.listen_port
            # every prompt of every set is new to the cache: sets are drawn from disjoint runs of questions
            fresh, offset = questions(70000, both_sides=True), 0

            def miss(conc: int, tokens: int, total: int) -> tuple[loadgen.Result, dict[str, float]]:
                nonlocal offset
                prompts, offset = prompts_from(tokens, total + max(8, 2 * conc), fresh, offset)
                before: dict[str, float] = {}
                r = measure(port, [body(p) for p in prompts[:total]], conc, total,
                            warmup=[body(p) for p in prompts[total:]],
                            after_warmup=lambda: before.update(outcomes(stack)))
                after = outcomes(stack)
                return r, {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}

            # The miss path's cache cost is the difference of two p50s a few ms apart, and these cores drift by
            # tens of percent within minutes: one block per stack once put it at 3.7-4.0 ms and, rerun, at -1.2.
            # So at c=1 the two stacks are measured in alternating rounds, on prompts of the same kind (new
            # questions), and the cost is each round's difference.
            sig_parts, miss_parts, seen = [], [], {}
            for _ in range(ROUNDS):
                prompts, offset = prompts_from(50, n // ROUNDS, fresh, offset)
                sig_parts.append(measure(sport, [body(p) for p in prompts], 1, n // ROUNDS))
                r, got = miss(1, 50, n // ROUNDS)
                miss_parts.append(r)
                seen = {k: seen.get(k, 0) + v for k, v in got.items()}
            rounds = {"signals_p50_ms": [round(r.p50, 3) for r in sig_parts],
                      "miss_p50_ms": [round(r.p50, 3) for r in miss_parts]}
            rows.append({**row("router_signals", 1, 50, merged(sig_parts)), "round_p50_ms": rounds["signals_p50_ms"]})
            rows.append({**row("router_miss", 1, 50, merged(miss_parts)), "round_p50_ms": rounds["miss_p50_ms"],
                         "outcomes": {k: int(v) for k, v in seen.items()}})
            cost_rounds = [round(m - s, 3) for s, m in zip(rounds["signals_p50_ms"], rounds["miss_p50_ms"])]
            miss_cost = {"round_ms": cost_rounds, "median_ms": round(statistics.median(cost_rounds), 3)}
            progress(f"router_signals c=1   t=50   round p50s {rounds['signals_p50_ms']} ms")
            progress(f"router_miss    c=1   t=50   round p50s {rounds['miss_p50_ms']} ms (cost {cost_rounds} ms)")

            prompts, offset = prompts_from(50, n, fresh, offset)
            r = measure(sport, [body(p) for p in prompts], 32, n)
            rows.append(row("router_signals", 32, 50, r))
            progress(f"router_signals c=32  t=50   p50={r.p50:6.2f} ms {r.rps:7.1f} req/s")
            for conc in concs:
                for tokens in ((50, 200, 1000) if conc == 1 else (50,)):
                    if (conc, tokens) == (1, 50):
                        continue  # measured above, in rounds
                    r, got = miss(conc, tokens, n if tokens < 1000 else n // 2)
                    rows.append({**row("router_miss", conc, tokens, r),
                                 "outcomes": {k: int(v) for k, v in got.items()}})
                    progress(f"router_miss  c={conc:<3d} t={tokens:<4d} p50={r.p50:6.2f} ms {r.rps:7.1f} req/s")
                r = measure(port, [body("What is the capital of France?")], conc, n)
                rows.append(row("router_hit", conc, 50, r))
                progress(f"router_hit   c={conc:<3d} p50={r.p50:6.2f} ms {r.rps:7.1f} req/s")
    else:
        progress("models not built: skipping the signal scenarios (run `make models`)")

    def get(s, c, t):
        return next((x for x in rows if x["scenario"] == s and x["concurrency"] == c and x["tokens"] == t), None)

    summary = {}
    e, b = get("envoy", 1, 50), get("router_bare", 1, 50)
    if e and b:
        summary["added_p50_bare_ms"] = round(b["p50_ms"] - e["p50_ms"], 3)
    sg = get("router_signals", 1, 50)
    if e and sg:
        summary["added_p50_signals_ms"] = round(sg["p50_ms"] - e["p50_ms"], 3)
    m = get("router_miss", 1, 50)
    if e and m:
        summary["added_p50_miss_ms"] = round(m["p50_ms"] - e["p50_ms"], 3)
    if have_models:
        summary["miss_cache_cost_ms"] = miss_cost
    path = save("overhead", {"rows": rows, "summary": summary, "quick": args.quick})
    progress(f"wrote {path}: {summary}")
    return {"rows": rows, "summary": summary}


if __name__ == "__main__":
    main()
