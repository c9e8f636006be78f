"""Savings report: replay a mixed, labelled prompt set through Envoy + router (`model: auto`, cache off)
and report the share per model, the estimated cost against "always the largest model" and "always the
smallest model" (configured relative costs), and the accuracy of category routing.

Two policies are replayed through the real stack, each costed by its own `models[].cost`: the static one
(config/config.yaml, the `routing:` section) and the cost-optimised one (config/examples/cost-fleet.yaml, its
`decisions:`). Each gets a cost per 1,000 served requests, a share per model and the same quality proxies.

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
import yaml

from router_extproc.dev.stack import Stack

from .common import IMG, MODEL_DIR, ROOT, bench_config, machine, progress, pyplot, save

COST_FLEET = ROOT / "config" / "examples" / "cost-fleet.yaml"

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


def costs_of(data: dict[str, Any]) -> dict[str, float]:
    """The configured relative cost of each model (config.py's default, 1.0, where a model sets none)."""
    return {m["name"]: float(m.get("cost", 1.0)) for m in data["models"]}


def replay(data: dict[str, Any], rows: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    results = []
    with Stack(data, workdir=Path(tempfile.mkdtemp(prefix="bench-savings-"))) as stack, \
            httpx.Client(base_url=stack.url, timeout=30) as c:
        for i, r in enumerate(rows):
            resp = c.post("/v1/chat/completions", json={"model": "auto",
                                                         "messages": [{"role": "user", "content": r["text"]}]})
            h = resp.headers
            results.append({**r, "status": resp.status_code, "model": h.get("x-router-model"),
                            "routed_category": h.get("x-router-category"), "complexity": h.get("x-router-complexity"),
                            "decision": h.get("x-router-decision"), "blocked": h.get("x-router-blocked")})
            if (i + 1) % 100 == 0:
                progress(f"savings ({label}): {i + 1}/{len(rows)} prompts replayed")
    return results


def policy_summary(results: list[dict[str, Any]], costs: dict[str, float]) -> dict[str, Any]:
    """Cost and quality proxies of one replay. Only served requests (200 with a model) are costed: a blocked
    request costs nothing under any policy. `smallest`/`largest` are the cheapest/dearest models of this fleet."""
    largest = max(costs, key=costs.get)
    smallest = min(costs, key=costs.get)
    served = [r for r in results if r["status"] == 200 and r["model"]]
    n = len(served)
    share = Counter(r["model"] for r in served)
    ours = sum(costs[r["model"]] for r in served)
    always_large = costs[largest] * n
    always_small = costs[smallest] * n
    labelled = [r for r in served if r["category"] is not None]
    correct = sum(r["routed_category"] == r["category"] for r in labelled)
    by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in labelled:
        by_source[r["source"]][0] += r["routed_category"] == r["category"]
        by_source[r["source"]][1] += 1
    complex_rows = [r for r in served if r["complex"] == 1]
    simple_rows = [r for r in served if r["complex"] == 0]

    def frac(rows: list[dict[str, Any]], model: str) -> float | None:
        return round(sum(r["model"] == model for r in rows) / len(rows), 3) if rows else None

    return {
        "prompts": len(results), "served": n,
        "blocked": sum(1 for r in results if r["blocked"]),
        "share": {m: round(k / n, 3) for m, k in share.most_common()},
        "cost_ours": ours, "cost_always_largest": always_large, "cost_always_smallest": always_small,
        "cost_per_1k": round(1000 * ours / n, 1) if n else None,
        "cost_per_1k_always_largest": costs[largest] * 1000,
        "cost_per_1k_always_smallest": costs[smallest] * 1000,
        "cost_vs_largest": round(ours / always_large, 3) if always_large else None,
        "category_accuracy": round(correct / len(labelled), 3) if labelled else None,
        "category_accuracy_by_source": {s: round(a / k, 3) for s, (a, k) in by_source.items()},
        "complex_sent_to_small": frac(complex_rows, smallest),
        "complex_sent_to_large": frac(complex_rows, largest),
        "simple_sent_to_small": frac(simple_rows, smallest),
        "decisions": dict(Counter(r["decision"] for r in served if r.get("decision")).most_common()),
        "largest": largest, "smallest": smallest, "costs": costs,
    }


def cost_fleet_config(path: Path = COST_FLEET) -> dict[str, Any]:
    """The cost-optimised example as the bench runs it: its models and decisions, the bench's signals (model
    dir), cache off, quiet logs (as bench_config does for the static one)."""
    data = yaml.safe_load(path.read_text())
    base = bench_config(signals=True, cache=False)
    data["signals"] = {**base.get("signals", {}), **data.get("signals", {})}
    data["semantic_cache"] = {**data.get("semantic_cache", {}), "enabled": False}
    data["logging"] = {"level": "warning"}
    return data


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if not (MODEL_DIR / "encoder.onnx").exists():
        progress("models not built: skipping the savings benchmark")
        return {}
    rows = prompt_set(args.quick)
    static = bench_config(signals=True, cache=False)
    summary = policy_summary(replay(static, rows, "static"), costs_of(static))
    fleet = cost_fleet_config()
    cost = policy_summary(replay(fleet, rows, "cost-fleet"), costs_of(fleet))
    # The static policy's figures stay at the top level (the keys run_all and older result files read).
    summary["policies"] = {"static": {k: v for k, v in summary.items()}, "cost-fleet": cost}
    _plot(summary)
    save("savings", {"summary": summary, "quick": args.quick})
    progress(f"savings: {summary}")
    return summary


def _plot(s: dict[str, Any]) -> None:
    plt = pyplot()
    if plt is None:
        return
    m = machine()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names, vals, colors = [], [], []
    for label, p in (s.get("policies") or {"static": s}).items():
        names += [f"{label}:\nalways {p['largest']}", f"{label}:\nrouter", f"{label}:\nalways {p['smallest']}"]
        vals += [p["cost_per_1k_always_largest"], p["cost_per_1k"], p["cost_per_1k_always_smallest"]]
        colors += ["#999", "#2a7", "#bbb"]
    ax.bar(names, vals, color=colors)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylabel("cost per 1k requests (configured units)")
    ax.set_title(f"Cost of {s['served']} mixed prompts per policy — {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(IMG / "savings.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
