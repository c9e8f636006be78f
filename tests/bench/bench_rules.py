"""Rule evaluation cost (#23): what 50 operator decisions over 200 keywords add to `decide`.

    python -m tests.bench.bench_rules [--quick] [--no-doc]

The same prompts go through `decide` with the shipped `routing:` section (today's decision) and with a
`decisions:` section of 50 rules over 40 keyword sets of 5 terms each (200 keywords, a quarter of the sets
regexes). The prompts match no keyword, so every rule is tried: the worst case. The
figure is the difference of the two p50s (target ≤ 0.2 ms); it writes docs/routing.md's rules-bench section.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from router_extproc.config import CATEGORIES, parse_config  # noqa: E402
from router_extproc.decision import decide  # noqa: E402
from router_extproc.openai import parse_chat_request  # noqa: E402
from router_extproc.thresholds import resolve  # noqa: E402
from tests.bench.common import DOCS, documented_main, machine  # noqa: E402

START, END = "<!-- rules-bench:start -->", "<!-- rules-bench:end -->"
TARGET_MS = 0.2
N_RULES, N_SETS, TERMS_PER_SET = 50, 40, 5
SENTENCES = [
    "How do I reset my password when the confirmation email never arrives?",
    "Explain the difference between a mutex and a semaphore, with an example in C.",
    "Write a short poem about autumn leaves falling on a quiet river.",
    "What were the main causes of the First World War, and how did alliances make it spread?",
    "My invoice shows a charge twice this month; can you tell me why and how to get a refund?",
    "Summarise the key ideas of Kant's categorical imperative in plain words.",
]


class Sig:
    def __init__(self, i: int) -> None:
        self.category = CATEGORIES[i % len(CATEGORIES)]
        self.category_confidence = 0.8
        self.complexity = (i % 10) / 10
        self.jailbreak = 0.01
        self.injection = 0.0
        self.pii_types = frozenset()


def configs() -> tuple:
    base = {
        "models": [{"name": f"m{i}", "endpoint": f"127.0.0.1:{9000 + i}", "cost": i + 1} for i in range(5)],
        "default_model": "m0",
        "routing": {"complexity": {"threshold": 0.5, "simple_model": "m1"},
                    "categories": {c: {"model_scores": {"m2": 1.0, "m3": 0.5}} for c in CATEGORIES}},
    }
    keywords = {}
    for s in range(N_SETS):
        if s % 4 == 0:   # a quarter are regexes
            keywords[f"k{s}"] = {"terms": [rf"ticket-{s}-\d+", rf"ERR{s}[A-Z]{{2}}", rf"zz{s}q+", rf"v{s}\.\d+\.\d+",
                                           rf"sku{s}_\w+"], "regex": True}
        else:
            keywords[f"k{s}"] = {"terms": [f"term{s}x{t}" for t in range(TERMS_PER_SET - 1)] + [f"brand {s}"]}
    rules = []
    for r in range(N_RULES):
        kw = {"keyword": [f"k{r % N_SETS}", f"k{(r * 7) % N_SETS}"]}
        shape = r % 3
        when = ({"all": [kw, {"domain": CATEGORIES[r % len(CATEGORIES)]}]} if shape == 0 else
                {"any": [kw, {"context_length": {"min": 20000 + r}}]} if shape == 1 else
                {"all": [kw, {"not": {"complexity": "simple"}}]})
        rules.append({"name": f"r{r}", "priority": N_RULES - r, "when": when, "model": f"m{r % 5}"})
    rules.append({"name": "default", "default": True, "candidates": ["m2", "m3"], "select": "cheapest"})
    legacy = parse_config(json.loads(json.dumps(base)), source=Path("bench-legacy.yaml"))
    with_rules = parse_config({**base, "keywords": keywords, "decisions": {"rules": rules}},
                              source=Path("bench-rules.yaml"))
    return legacy, with_rules


def timings(cfg, requests, sigs, rounds: int) -> list[float]:
    th = resolve(cfg)
    out = []
    for _ in range(rounds):
        for req, sig in zip(requests, sigs):
            t0 = time.perf_counter()
            decide(cfg, req, sig, thresholds=th)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def run(quick: bool) -> dict:
    legacy, with_rules = configs()
    n = 60 if quick else 300
    texts = [" ".join(SENTENCES[(i + j) % len(SENTENCES)] for j in range(1 + i % 4)) for i in range(n)]
    requests = [parse_chat_request(json.dumps({"model": "auto", "messages": [{"role": "user", "content": t}]})
                                   .encode()) for t in texts]
    sigs = [Sig(i) for i in range(n)]
    rounds = 5 if quick else 20
    timings(legacy, requests, sigs, 1), timings(with_rules, requests, sigs, 1)   # warm up
    # alternate the two so drift (other processes on a shared machine) hits both alike
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a += timings(legacy, requests, sigs, 1)
        b += timings(with_rules, requests, sigs, 1)
    chosen = {decide(with_rules, r, s).rule for r, s in zip(requests, sigs)}
    p50a, p50b = statistics.median(a), statistics.median(b)
    q = statistics.quantiles
    return {"date": machine()["date"], "quick": quick, "decisions": N_RULES, "keywords": N_SETS * TERMS_PER_SET,
            "prompt_chars_mean": round(sum(map(len, texts)) / n), "samples": len(b),
            "legacy_p50_ms": round(p50a, 4), "rules_p50_ms": round(p50b, 4),
            "legacy_p99_ms": round(q(a, n=100)[98], 4), "rules_p99_ms": round(q(b, n=100)[98], 4),
            "added_p50_ms": round(p50b - p50a, 4), "target_ms": TARGET_MS, "met": p50b - p50a <= TARGET_MS,
            "decisions_chosen": sorted(c for c in chosen if c)}


def section(res: dict) -> str:
    return "\n".join([
        START, "## Rule evaluation cost (bench_rules.py)", "",
        f"_Measured {res['date']} by `python -m tests.bench.bench_rules`{' --quick' if res['quick'] else ''} "
        f"({res['samples']} decisions per side, alternating; "
        f"{res['prompt_chars_mean']}-character prompts on average)._",
        "",
        f"{res['decisions']} decisions over {res['keywords']} keywords (40 sets, a quarter RE2 regexes); "
        "the prompts match no keyword, so every rule is tried (the sets are searched in one RE2-set pass).", "",
        "| decide with | p50 ms | p99 ms |", "|---|---|---|",
        f"| `routing:` (today's decision) | {res['legacy_p50_ms']} | {res['legacy_p99_ms']} |",
        f"| `decisions:` | {res['rules_p50_ms']} | {res['rules_p99_ms']} |", "",
        f"Added p50: **{res['added_p50_ms']} ms** (target ≤ {res['target_ms']} ms: "
        f"{'met' if res['met'] else 'missed'}).", END])


def main(argv: list[str] | None = None) -> dict:
    return documented_main(argv, name="rules", run=run, doc=DOCS / "routing.md", start=START, end=END,
                           section=section)


if __name__ == "__main__":
    main()
