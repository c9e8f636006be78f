"""The seed's cache scenario: a first request to an upstream with realistic latency (a miss), then the
same request (exact hit) and a paraphrase (semantic hit), through Envoy + router + Milvus Lite.

    python -m tests.bench.bench_cache_speedup [--quick] [--latency-ms 1500] [--semantic-rounds 2] [--spin-after-run]

Then the semantic-hit latency (issue #20: p50 <= 15 ms through Envoy), on enough hits to read a median: every
stored prompt of tests/bench/data/cache_quality/paraphrases.jsonl is asked once (a miss, stored), then every
rewording ``--semantic-rounds`` times. A hit is not stored, so a rewording that hit stays a semantic hit in every
round. Each hit is classed by the router's own counters (``GET /admin/cache/stats`` around the request):
``pair_row`` when the verifier read the pair row (the verified path the target is about), ``rule`` when the
rewording was served as another form of the request without the models (under the cosine floor).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from router_extproc.dev.stack import Stack

from .common import IMG, MODEL_DIR, bench_config, machine, progress, pyplot, save

# Hand-written paraphrase pairs (not from QQP, which calibrates the verifier).
PAIRS = [
    ("What is the capital of Australia?", "Which city is Australia's capital?"),
    ("How do I reverse a list in Python?", "What's the way to reverse a Python list?"),
    ("What causes the seasons on Earth?", "Why does Earth have seasons?"),
    ("How many bones are in the adult human body?", "How many bones does an adult human have?"),
    ("Who wrote the novel Pride and Prejudice?", "Who is the author of Pride and Prejudice?"),
    ("What is the boiling point of water at sea level?", "At sea level, at what temperature does water boil?"),
    ("How does photosynthesis work?", "Can you explain how photosynthesis works?"),
    ("What is the difference between a virus and a bacterium?",
     "How do viruses differ from bacteria?"),
    ("How do I convert Celsius to Fahrenheit?", "What is the formula to convert Celsius into Fahrenheit?"),
    ("What is the tallest mountain in the world?", "Which mountain is the highest on Earth?"),
    ("When did the Second World War end?", "In what year did World War II end?"),
    ("What does a mitochondrion do in a cell?", "What is the function of mitochondria in cells?"),
    ("How can I improve my sleep quality?", "What are ways to sleep better?"),
    ("What is inflation in economics?", "Can you explain what inflation means in economics?"),
    ("What is the speed of light in a vacuum?", "How fast does light travel in vacuum?"),
    ("How do vaccines work?", "Can you explain how vaccines work?"),
]


def one(c: httpx.Client, text: str, stream: bool = False, *, ok_only: bool = True) -> tuple[float, str]:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "temperature": 0.7,
            "stream": stream}
    t0 = time.perf_counter()
    r = c.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer test-token"})
    r.read()
    ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 200 and not ok_only:
        return ms, f"status {r.status_code}"
    assert r.status_code == 200, r.text
    return ms, r.headers.get("x-router-cache", "?")


# The stats read before each ask asks Milvus Lite for its row count: a pause lets that work end before the timed ask
SETTLE_S = float(os.environ.get("BENCH_SETTLE_S", "0.05"))
PARAPHRASES = Path(__file__).resolve().parent / "data" / "cache_quality" / "paraphrases.jsonl"
def semantic_hits(c: httpx.Client, stack: Stack, rounds: int, quick: bool) -> list[dict[str, Any]]:
    """Latency of every rewording's ask through Envoy, with how the router answered it (see the module doc)."""
    groups = [json.loads(line) for line in PARAPHRASES.read_text().splitlines() if line.strip()]
    groups = groups[:8] if quick else groups

    def counters() -> dict[str, float]:
        out = dict(httpx.get(stack.metrics_url + "/admin/cache/stats", timeout=10).json()["counters"])
        # the router's own time for the request's two stages that a semantic hit adds over an exact one
        for line in httpx.get(stack.metrics_url + "/metrics", timeout=10).text.splitlines():
            for name, key in (('router_signal_duration_seconds_sum{stage="all"}', "signals_s"),
                              ('router_cache_lookup_duration_seconds_sum{kind="semantic"}', "lookup_s")):
                if line.startswith(name + " "):
                    out[key] = float(line.split()[-1])
        return out

    for g in groups:
        one(c, g["stored"], ok_only=False)
    time.sleep(0.3)  # stores leave the request path
    out = []
    for r in range(rounds):
        for g in groups:
            for q in g["queries"]:
                before = counters()
                time.sleep(SETTLE_S)
                ms, state = one(c, q["text"], ok_only=False)
                after = counters()
                grew = {k for k in after if after[k] != before.get(k, 0) and not k.endswith("_s")}
                how = ("exact" if "exact_hit" in grew else
                       "pair_row" if "verifier_pair_rows" in grew and "hit" in grew else
                       "rule" if "hit" in grew else "other")
                out.append({"round": r, "form": q["form"], "ms": ms, "state": state,
                            "how": how if state == "hit" else state,
                            **{k[:-2] + "_ms": round((after.get(k, 0) - before.get(k, 0)) * 1000, 3)
                               for k in ("signals_s", "lookup_s")}})
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--latency-ms", type=float, default=1500.0)
    ap.add_argument("--semantic-rounds", type=int, default=2, help="asks of every rewording (0: skip the phase)")
    ap.add_argument("--spin-after-run", action="store_true",
                    help="signals.spin_after_run: true (onnxruntime's threads spin on after each run; the default "
                         "before issue #20's latency work), to measure against the shipped false")
    args = ap.parse_args(argv)
    if not (MODEL_DIR / "encoder.onnx").exists():
        progress("models not built: skipping the cache speedup benchmark")
        return {}
    pairs = PAIRS[:6] if args.quick else PAIRS
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    data = bench_config(signals=True, cache=True, cache_backend="milvus")
    data["signals"]["spin_after_run"] = args.spin_after_run
    rows: list[dict[str, Any]] = []
    with Stack(data, workdir=work, demo_latency_ms=args.latency_ms) as stack, \
            httpx.Client(base_url=stack.url, timeout=30) as c:
        for q, para in pairs:
            for stream in (False, True):
                suffix = " (streamed)" if stream else ""
                miss_ms, miss_state = one(c, q + suffix, stream)
                time.sleep(0.2)  # the store leaves the request path; give the background writer a moment
                exact_ms, exact_state = one(c, q + suffix, stream)
                para_ms, para_state = one(c, para + suffix, stream)
                rows.append({"question": q, "paraphrase": para, "stream": stream, "miss_ms": miss_ms,
                             "miss_state": miss_state, "exact_ms": exact_ms, "exact_state": exact_state,
                             "para_ms": para_ms, "para_state": para_state})
                progress(f"{'sse ' if stream else 'json'} miss {miss_ms:7.1f} ms [{miss_state}]  "
                         f"same {exact_ms:6.1f} ms [{exact_state}]  paraphrase {para_ms:6.1f} ms [{para_state}]")
        semantic = semantic_hits(c, stack, args.semantic_rounds, args.quick) if args.semantic_rounds else []

    def med(key: str, state_key: str, state: str) -> float | None:
        xs = [r[key] for r in rows if r[state_key] == state]
        return round(statistics.median(xs), 2) if xs else None

    summary = {
        "upstream_latency_ms": args.latency_ms,
        "miss_p50_ms": med("miss_ms", "miss_state", "miss"),
        "exact_hit_p50_ms": med("exact_ms", "exact_state", "hit"),
        "paraphrase_hit_p50_ms": med("para_ms", "para_state", "hit"),
        "exact_hit_rate": round(sum(r["exact_state"] == "hit" for r in rows) / len(rows), 3),
        "paraphrase_hit_rate": round(sum(r["para_state"] == "hit" for r in rows) / len(rows), 3),
        "pairs": len(pairs),
        "spin_after_run": args.spin_after_run,
    }
    if summary["miss_p50_ms"] and summary["exact_hit_p50_ms"]:
        summary["speedup_exact"] = round(summary["miss_p50_ms"] / summary["exact_hit_p50_ms"], 1)
    if semantic:
        summary["semantic"] = {how: _dist([r["ms"] for r in semantic if r["how"] == how])
                               for how in ("pair_row", "rule", "exact")}
        # where a verified hit's time goes: the router's signal pass and cache lookup (its metrics), the rest
        # (Envoy, gRPC, parse, decide, the answer, the client)
        pr = [r for r in semantic if r["how"] == "pair_row"]
        if pr:
            summary["semantic"]["pair_row_parts_p50_ms"] = {
                k: round(statistics.median(r[k] for r in pr), 2) for k in ("signals_ms", "lookup_ms")}
        summary["semantic"]["asks"] = len(semantic)
        summary["semantic"]["load_average"] = round(os.getloadavg()[0], 1)
    _plot(rows, summary)
    save("cache_speedup", {"rows": rows, "summary": summary})
    progress(f"cache speedup: {summary}")
    return summary


def _dist(xs: list[float]) -> dict[str, Any]:
    if not xs:
        return {"n": 0}
    q = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
    return {"n": len(xs), "p10_ms": round(q[0], 2), "p50_ms": round(statistics.median(xs), 2),
            "p90_ms": round(q[-1], 2)}


def _plot(rows: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    plt = pyplot()
    if plt is None:
        return
    m = machine()
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = ["miss (upstream)", "same request (hit)", "paraphrase"]
    vals = [[r["miss_ms"] for r in rows], [r["exact_ms"] for r in rows], [r["para_ms"] for r in rows]]
    ax.boxplot(vals, showfliers=True)
    ax.set_xticks([1, 2, 3], labels)
    ax.set_yscale("log")
    ax.set_ylabel("latency through Envoy (ms, log)")
    ax.set_title(f"Cache hit vs miss — demo upstream {summary['upstream_latency_ms']:.0f} ms\n"
                 f"{m['cpu']} ({m['cores']} cores), {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "cache_speedup.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
