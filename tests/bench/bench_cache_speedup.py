"""The seed's cache scenario: a first request to an upstream with realistic latency (a miss), then the
same request (exact hit) and a paraphrase (semantic hit), through Envoy + router + Milvus Lite.

    python -m tests.bench.bench_cache_speedup [--quick] [--latency-ms 1500]
"""

from __future__ import annotations

import argparse
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


def one(c: httpx.Client, text: str, stream: bool = False) -> tuple[float, str]:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "temperature": 0.7,
            "stream": stream}
    t0 = time.perf_counter()
    r = c.post("/v1/chat/completions", json=body, headers={"authorization": "Bearer test-token"})
    r.read()
    ms = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200, r.text
    return ms, r.headers.get("x-router-cache", "?")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--latency-ms", type=float, default=1500.0)
    args = ap.parse_args(argv)
    if not (MODEL_DIR / "encoder.onnx").exists():
        progress("models not built: skipping the cache speedup benchmark")
        return {}
    pairs = PAIRS[:6] if args.quick else PAIRS
    work = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    data = bench_config(signals=True, cache=True, cache_backend="milvus")
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
    }
    if summary["miss_p50_ms"] and summary["exact_hit_p50_ms"]:
        summary["speedup_exact"] = round(summary["miss_p50_ms"] / summary["exact_hit_p50_ms"], 1)
    _plot(rows, summary)
    save("cache_speedup", {"rows": rows, "summary": summary})
    progress(f"cache speedup: {summary}")
    return summary


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
