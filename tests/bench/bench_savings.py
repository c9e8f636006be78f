"""Savings report: replay a mixed, labelled prompt set through Envoy + router (`model: auto`, cache off)
and report the share per model, the estimated cost against "always the largest model" and "always the
smallest model" (configured relative costs), and the accuracy of category routing.

    python -m tests.bench.bench_savings [--quick]

The prompts are held out from training: the MMLU test split (by the build's stable hash), questions from
other sources (GSM8K, GPQA-diamond, HumanEval, hand-written), and simple prompts (greetings, lookups).
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

from router_extproc.dev.stack import Stack

from .common import IMG, MODEL_DIR, bench_config, machine, progress, save

SIMPLE = [
    "Hi there!", "Good morning!", "Thanks, that's all.", "What's the capital of Italy?", "How are you today?",
    "Translate 'cat' into French.", "What day comes after Monday?", "Say hello to my friend Sam.",
    "What color is the sky on a clear day?", "Who painted the Mona Lisa?", "Spell the word 'necessary'.",
    "What is 2 + 2?", "Name a fruit that is yellow.", "How many days are in a week?", "Tell me a fun fact.",
    "What's the opposite of 'hot'?", "Is water wet?", "What time zone is London in?", "Recommend a good book.",
    "What is the plural of mouse?",
]


def prompt_set(quick: bool) -> list[dict[str, Any]]:
    from models.data import CATEGORIES, load_mmlu, load_ood_domain

    rng = random.Random(7)
    mmlu = [r for r in load_mmlu() if r["split"] == "test"]
    by_cat: dict[int, list[dict]] = defaultdict(list)
    for r in mmlu:
        by_cat[r["category"]].append(r)
    per_cat = 8 if quick else 30
    rows: list[dict[str, Any]] = []
    for c, items in sorted(by_cat.items()):
        for r in rng.sample(items, min(per_cat, len(items))):
            rows.append({"text": r["question"], "category": CATEGORIES[c], "source": "mmlu-test", "complex": None})
    try:
        ood = load_ood_domain()
    except Exception as exc:  # a missing optional data package
        progress(f"out-of-distribution set unavailable ({exc}); MMLU and simple prompts only")
        ood = []
    rng.shuffle(ood)
    for r in ood[: (60 if quick else 400)]:
        rows.append({"text": r["text"], "category": CATEGORIES[r["category"]], "source": r["source"],
                     "complex": r.get("complex")})
    for t in SIMPLE:
        rows.append({"text": t, "category": None, "source": "simple", "complex": 0})
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if not (MODEL_DIR / "encoder.onnx").exists():
        progress("models not built: skipping the savings benchmark")
        return {}
    rows = prompt_set(args.quick)
    data = bench_config(signals=True, cache=False)
    costs = {m["name"]: float(m.get("cost", 1.0)) for m in data["models"]}
    largest = max(costs, key=costs.get)
    smallest = min(costs, key=costs.get)
    results = []
    with Stack(data, workdir=Path(tempfile.mkdtemp(prefix="bench-savings-"))) as stack, \
            httpx.Client(base_url=stack.url, timeout=30) as c:
        for i, r in enumerate(rows):
            resp = c.post("/v1/chat/completions", json={"model": "auto",
                                                         "messages": [{"role": "user", "content": r["text"]}]})
            h = resp.headers
            results.append({**r, "status": resp.status_code, "model": h.get("x-router-model"),
                            "routed_category": h.get("x-router-category"), "complexity": h.get("x-router-complexity"),
                            "blocked": h.get("x-router-blocked")})
            if (i + 1) % 100 == 0:
                progress(f"savings: {i + 1}/{len(rows)} prompts replayed")

    served = [r for r in results if r["status"] == 200 and r["model"]]
    share = Counter(r["model"] for r in served)
    ours = sum(costs[r["model"]] for r in served)
    always_large = costs[largest] * len(served)
    always_small = costs[smallest] * len(served)
    labelled = [r for r in served if r["category"] is not None]
    correct = sum(r["routed_category"] == r["category"] for r in labelled)
    by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in labelled:
        by_source[r["source"]][0] += r["routed_category"] == r["category"]
        by_source[r["source"]][1] += 1
    complex_rows = [r for r in served if r["complex"] == 1]
    simple_rows = [r for r in served if r["complex"] == 0]
    summary = {
        "prompts": len(rows), "served": len(served),
        "blocked": sum(1 for r in results if r["blocked"]),
        "share": {m: round(n / len(served), 3) for m, n in share.most_common()},
        "cost_ours": ours, "cost_always_largest": always_large, "cost_always_smallest": always_small,
        "cost_vs_largest": round(ours / always_large, 3) if always_large else None,
        "category_accuracy": round(correct / len(labelled), 3) if labelled else None,
        "category_accuracy_by_source": {s: round(a / n, 3) for s, (a, n) in by_source.items()},
        "complex_sent_to_small": (round(sum(r["model"] == smallest for r in complex_rows) / len(complex_rows), 3)
                                  if complex_rows else None),
        "simple_sent_to_small": (round(sum(r["model"] == smallest for r in simple_rows) / len(simple_rows), 3)
                                 if simple_rows else None),
        "largest": largest, "smallest": smallest, "costs": costs,
    }
    _plot(summary)
    save("savings", {"summary": summary, "quick": args.quick})
    progress(f"savings: {summary}")
    return summary


def _plot(s: dict[str, Any]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    IMG.mkdir(parents=True, exist_ok=True)
    m = machine()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [f"always {s['largest']}", "router (auto)", f"always {s['smallest']}"]
    vals = [s["cost_always_largest"], s["cost_ours"], s["cost_always_smallest"]]
    ax.bar(names, vals, color=["#999", "#2a7", "#bbb"])
    ax.set_ylabel("relative cost (configured units)")
    ax.set_title(f"Cost of {s['served']} mixed prompts — {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "savings.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
