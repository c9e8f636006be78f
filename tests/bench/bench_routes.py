"""Custom routes without training (#23): accuracy of nearest-example matching, and what matching costs.

    python -m tests.bench.bench_routes [--quick] [--no-doc]

The routes are config/examples/support-desk.yaml's: 6 support routes that are not MMLU categories, 20 example
utterances each. One global threshold is calibrated on tests/bench/data/routes/calibration.jsonl (15 rewordings
per route + 30 prompts that are none of them); the figures are reported on held_out.jsonl, written separately
(40 rewordings per route + 60 "none of these": general questions, chit-chat, other support topics). A prompt is
right when its matched route is its label (for "none": when no route matches). Requests are embedded as the
router embeds one user turn (engine.analyze_batch), examples as the router does at config load (routes.py).
held_out_2.jsonl is a second held-out set of the same shape, written later (before any change it measured) for the
false-route target. A second operating point, "strict", adds two things an operator can do without training:
out-of-scope examples (out_of_scope.jsonl, a route with `out_of_scope: true`) and harder "none" prompts in the
calibration (calibration_hard_none.jsonl: other companies' support topics, other services of this one); its
threshold is calibrated on calibration.jsonl + calibration_hard_none.jsonl and reported on both held-out sets.
Match latency: `RouteIndex.match` on one embedding, at the config's 120 examples and at 1,000 and 10,000.
Writes docs/routing.md's routes section.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from router_extproc import routes as RT  # noqa: E402
from router_extproc.config import load_config  # noqa: E402
from router_extproc.thresholds import ROUTE_SIMILARITY  # noqa: E402
from tests.bench.common import DOCS, MODEL_DIR, documented_main, machine  # noqa: E402

START, END = "<!-- routes:start -->", "<!-- routes:end -->"
CONFIG = ROOT / "config" / "examples" / "support-desk.yaml"
DATA = ROOT / "tests" / "bench" / "data" / "routes"
TARGETS = {"accuracy": 0.90, "false_route": 0.05, "match_ms_1000": 1.0}


def read(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def predict(index: RT.RouteIndex, emb: np.ndarray, threshold: float) -> list[str | None]:
    out = []
    for e in emb:
        per = index.scores(e)
        best = int(np.argmax(per))
        spec = index.specs[best]
        out.append(spec.name if per[best] >= threshold and not spec.out_of_scope else None)
    return out


def score(rows: list[dict], pred: list[str | None]) -> dict:
    labels = [r["route"] for r in rows]
    none = [p for p, lab in zip(pred, labels) if lab is None]
    recall = {}
    for route in sorted({lab for lab in labels if lab is not None}):
        got = [p == lab for p, lab in zip(pred, labels) if lab == route]
        recall[route] = round(sum(got) / len(got), 3)
    wrong_route = sum(1 for p, lab in zip(pred, labels) if lab is not None and p is not None and p != lab)
    return {"n": len(rows), "accuracy": round(sum(p == lab for p, lab in zip(pred, labels)) / len(rows), 3),
            "recall": recall, "false_route": round(sum(p is not None for p in none) / max(1, len(none)), 3),
            "n_none": len(none), "wrong_route": wrong_route}


def calibrate(index: RT.RouteIndex, rows: list[dict], emb: np.ndarray) -> tuple[float, dict]:
    """The global threshold with the best calibration accuracy among those with false-route ≤ target; the middle
    of the best plateau, so the choice does not sit on the edge of the calibration set."""
    grid = [round(t, 3) for t in np.arange(0.05, 0.951, 0.005)]
    results = [(t, score(rows, predict(index, emb, t))) for t in grid]
    ok = [(t, s) for t, s in results if s["false_route"] <= TARGETS["false_route"]] or results
    best = max(s["accuracy"] for _, s in ok)
    plateau = [t for t, s in ok if s["accuracy"] == best]
    t = plateau[len(plateau) // 2]
    return t, {**dict(results)[t], "plateau": [plateau[0], plateau[-1]]}


def match_latency(dim: int, n: int, specs_n: int = 6, reps: int = 2000) -> dict:
    rng = np.random.default_rng(n)
    counts = [n // specs_n + (i < n % specs_n) for i in range(specs_n)]
    specs = [RT.RouteSpec(f"r{i}", tuple(f"r{i} example {j}" for j in range(k)), 0.6) for i, k in enumerate(counts)]
    index = RT.build_index(specs, lambda ts: rng.normal(size=(len(ts), dim)).astype(np.float32))
    qs = rng.normal(size=(64, dim)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        index.match(qs[i % len(qs)])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"examples": n, "p50_ms": round(statistics.median(times), 4),
            "p99_ms": round(times[int(len(times) * 0.99)], 4)}


def run(quick: bool) -> dict:
    from router_extproc.signals import SignalEngine

    config = load_config(CONFIG)
    engine = SignalEngine(MODEL_DIR, device="cpu")
    t0 = time.perf_counter()
    index = RT.for_config(config, engine)
    load_s = time.perf_counter() - t0
    embed = RT.embed_with(engine)
    cal, held = read("calibration.jsonl"), read("held_out.jsonl")
    cal_emb, held_emb = embed([r["text"] for r in cal]), embed([r["text"] for r in held])
    t, cal_score = calibrate(index, cal, cal_emb)
    held_score = score(held, predict(index, held_emb, t))
    shipped = score(held, predict(index, held_emb, ROUTE_SIMILARITY))
    held2 = read("held_out_2.jsonl")
    held2_emb = embed([r["text"] for r in held2])
    held2_score = score(held2, predict(index, held2_emb, t))
    # strict: out-of-scope examples, and a calibration with harder "none" prompts
    oos = tuple(r["text"] for r in read("out_of_scope.jsonl"))
    strict_index = RT.build_index([*index.specs, RT.RouteSpec("out_of_scope", oos, 1.0, out_of_scope=True)], embed,
                                  previous=index)
    hard = read("calibration_hard_none.jsonl")
    strict_cal = cal + hard
    strict_t, strict_cal_score = calibrate(strict_index, strict_cal,
                                           np.concatenate([cal_emb, embed([r["text"] for r in hard])]))
    strict = {"threshold": strict_t, "calibration": strict_cal_score, "out_of_scope_examples": len(oos),
              "held_out": score(held, predict(strict_index, held_emb, strict_t)),
              "held_out_2": score(held2, predict(strict_index, held2_emb, strict_t))}
    dim = index.matrix.shape[1]
    latency = [match_latency(dim, n, reps=500 if quick else 3000) for n in (120, 1000, 10_000)]
    at_1000 = next(x for x in latency if x["examples"] == 1000)
    import os

    return {"date": time.strftime("%Y-%m-%d"), "quick": quick, "machine": machine(),
            "load_average": round(os.getloadavg()[0], 1),
            "examples": int(index.matrix.shape[0]), "routes": [s.name for s in index.specs],
            "embed_examples_s": round(load_s, 2), "calibrated_threshold": t, "shipped_threshold": ROUTE_SIMILARITY,
            "calibration": cal_score, "held_out": held_score, "held_out_shipped_threshold": shipped,
            "held_out_2": held2_score, "strict": strict,
            "latency": latency,
            "met": {"accuracy": held_score["accuracy"] >= TARGETS["accuracy"],
                    "false_route": held_score["false_route"] <= TARGETS["false_route"],
                    "match_ms_1000": at_1000["p50_ms"] <= TARGETS["match_ms_1000"]}}


def _met(a: float, b: float, target: float, at_least: bool) -> str:
    ok = [(x >= target) if at_least else (x <= target) for x in (a, b)]
    return "met" if all(ok) else "missed" if not any(ok) else "met on " + ("held_out" if ok[0] else "held_out_2")


def section(res: dict) -> str:
    h, c, h2 = res["held_out"], res["calibration"], res["held_out_2"]
    st = res["strict"]
    sc, sh, sh2 = st["calibration"], st["held_out"], st["held_out_2"]
    met = res["met"]
    lines = [
        START, "## Custom routes: accuracy and cost (bench_routes.py)", "",
        f"_Measured {res['date']} by `python -m tests.bench.bench_routes`{' --quick' if res['quick'] else ''}; "
        f"config/examples/support-desk.yaml ({res['examples']} examples, 6 routes); embedding them at load took "
        f"{res['embed_examples_s']} s on this machine's CPU (load average {res.get('load_average', '?')} while "
        "measuring: timings are inflated by other work on the machine)._", "",
        f"Threshold calibrated on `tests/bench/data/routes/calibration.jsonl` ({c['n']} prompts, "
        f"{c['n_none']} of them none of the routes): **{res['calibrated_threshold']}** (the middle of the best range, "
        f"{c['plateau'][0]}–{c['plateau'][1]}; calibration accuracy "
        f"{c['accuracy']}, false-route {c['false_route']}); shipped default `thresholds.ROUTE_SIMILARITY` = "
        f"{res['shipped_threshold']}. Reported on `held_out.jsonl`, written separately ({h['n']} prompts, "
        f"{h['n_none']} none of the routes), and on `held_out_2.jsonl`, written later the same way ({h2['n']} "
        f"prompts, {h2['n_none']} none):", "",
        "| held-out | held_out | held_out_2 | target |", "|---|---|---|---|",
        f"| accuracy (routes and none) | **{h['accuracy']}** | **{h2['accuracy']}** | ≥ {TARGETS['accuracy']} "
        f"({_met(h['accuracy'], h2['accuracy'], TARGETS['accuracy'], True)}) |",
        f"| false-route on none | **{h['false_route']}** | **{h2['false_route']}** | ≤ {TARGETS['false_route']} "
        f"({_met(h['false_route'], h2['false_route'], TARGETS['false_route'], False)}) |",
        f"| route prompts sent to another route | {h['wrong_route']} | {h2['wrong_route']} | |",
        *[f"| recall {r} | {v} | {h2['recall'][r]} | |" for r, v in h["recall"].items()],
        "",
        f"Strict operating point: {st['out_of_scope_examples']} out-of-scope examples "
        f"(`tests/bench/data/routes/out_of_scope.jsonl` as an `out_of_scope: true` route) and a threshold calibrated "
        f"with {sc['n_none'] - c['n_none']} harder none prompts added (`calibration_hard_none.jsonl`): "
        f"**{st['threshold']}** (calibration accuracy {sc['accuracy']}, false-route {sc['false_route']}).", "",
        "| strict | held_out | held_out_2 | target |", "|---|---|---|---|",
        f"| accuracy | **{sh['accuracy']}** | **{sh2['accuracy']}** | ≥ {TARGETS['accuracy']} "
        f"({_met(sh['accuracy'], sh2['accuracy'], TARGETS['accuracy'], True)}) |",
        f"| false-route on none | **{sh['false_route']}** | **{sh2['false_route']}** | ≤ {TARGETS['false_route']} "
        f"({_met(sh['false_route'], sh2['false_route'], TARGETS['false_route'], False)}) |",
        "",
        "Neither point meets both targets on both sets: with 20 examples per route and this encoder, raising the bar "
        "far enough to keep general questions out also drops rewordings of the routes (product_bugs and sales "
        "first). The shipped default stays the accuracy-first threshold; an operator who prefers fewer false routes "
        "adds out-of-scope examples and sets `threshold:` per route.",
        "", "| examples | match p50 ms | p99 ms |", "|---|---|---|",
        *[f"| {x['examples']:,} | {x['p50_ms']} | {x['p99_ms']} |" for x in res["latency"]], "",
        f"Matching 1,000 examples: {'met' if met['match_ms_1000'] else 'missed'} (target ≤ "
        f"{TARGETS['match_ms_1000']} ms p50; one matrix product on the embedding the signal pass already made).",
        END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    return documented_main(argv, name="routes", run=run, doc=DOCS / "routing.md", start=START, end=END,
                           section=section, needs_models=True)


if __name__ == "__main__":
    main()
