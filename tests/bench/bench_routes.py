"""Custom routes without training (#23): accuracy of the matcher fitted from the examples, and what matching costs.

    python -m tests.bench.bench_routes [--quick] [--no-doc]

The routes are config/examples/support-desk.yaml's: 6 support routes that are not MMLU categories, 20 example
utterances each. The matcher (routes.py: two-nearest score, a bar per route from its examples' leave-one-out
tightness, the category head's classes ranked with the routes) has two constants calibrated here,
`thresholds.ROUTE_BASE` and `ROUTE_HEAD_TEMPERATURE`, on calibration.jsonl (15 rewordings per route + 60 none)
pooled with held_out_2.jsonl (40 per route + 60 none; its errors were studied, so it is calibration data now). The
rule (calibrate): the best pooled accuracy, averaged over the point and its two neighbouring ROUTE_BASE steps, among
the points whose neighbourhood keeps the pooled false-route within half the target (120 none prompts measure 0.05
only to about ±0.04): no point on the edge of the cap or on a spike of this data. Reported on:

* held_out_3.jsonl: written before this matcher existed and run only once it was frozen (40 rewordings per route in
  styles unlike the examples: terse keywords, typos, long angry tickets, French/Spanish/German and non-native
  English, under a system prompt; 68 none of these, 31 near-topic: other companies' billing and shipping, generic
  coding help, small talk). The headline.
* held_out.jsonl: the first held-out set (40 per route + 60 none); earlier matchers were reported on it; no
  constant was calibrated on it, but it was looked at while the matcher's design was chosen.
* held_out_4.jsonl: written after held_out_3 was run and before it was run itself (20 per route + 60 none, 40
  near-topic), for the operator's fix of near-topic false routes: out-of-scope examples, generic
  (out_of_scope.jsonl) and taken from traffic seen to be none of the routes (held_out_3's none prompts).

A prompt is right when its matched route is its label (for "none": when no route matches). Every prompt is embedded
as the router reads a request (inputs.plan over its system prompt and user turn, the engine's token budget), and
the head's confidence is the same pass's. "nearest cosine" is the matcher this one replaced (one global threshold on
the nearest example's cosine, 0.405), for comparison; "+ out-of-scope" adds out_of_scope.jsonl's 40 examples as an
`out_of_scope: true` route. Match latency: `RouteIndex.match` on one embedding at 120, 1,000 and 10,000 examples.
Writes docs/routing.md's routes section.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from router_extproc import routes as RT  # noqa: E402
from router_extproc import thresholds as TH  # noqa: E402
from router_extproc.config import load_config  # noqa: E402
from router_extproc.openai import Segment  # noqa: E402
from router_extproc.signals.inputs import InputRule, plan  # noqa: E402
from tests.bench.common import DOCS, MODEL_DIR, documented_main, machine  # noqa: E402

START, END = "<!-- routes:start -->", "<!-- routes:end -->"
CONFIG = ROOT / "config" / "examples" / "support-desk.yaml"
DATA = ROOT / "tests" / "bench" / "data" / "routes"
TARGETS = {"accuracy": 0.90, "false_route": 0.05, "match_ms_1000": 1.0}
OLD_THRESHOLD = 0.405   # the replaced matcher's calibrated global threshold (nearest-example cosine)
BASES = [round(b, 3) for b in np.arange(0.05, 0.351, 0.005)]
TEMPERATURES = [0.0, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15]


def read(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def embed_rows(engine, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Each row as the router reads a request: its system prompt (if any) and its user turn."""
    rule = InputRule()
    jobs = []
    for r in rows:
        segs = ([Segment("system", r["system"], 0)] if r.get("system") else []) + [Segment("user", r["text"], 1)]
        jobs.append((plan(segs, rule), rule.max_tokens_read))
    out = [s for i in range(0, len(jobs), 32) for s in engine.analyze_requests(jobs[i:i + 32])]
    return (np.asarray([s.embedding for s in out], np.float32),
            np.asarray([s.category_confidence for s in out], np.float32))


def with_constants(index: RT.RouteIndex, base: float, temperature: float) -> RT.RouteIndex:
    """The index with other calibration constants (the examples' tightness is the index's own)."""
    taus = [s.threshold if s.threshold is not None else np.inf if s.out_of_scope else
            base + TH.ROUTE_TIGHTNESS * RT.tightness(index.matrix[a:a + n])
            for s, a, n in zip(index.specs, index.starts, index.counts)]
    return dataclasses.replace(index, thresholds=np.asarray(taus, np.float32), head_temperature=temperature)


def predict(index: RT.RouteIndex, emb: np.ndarray, conf: np.ndarray) -> list[str | None]:
    return [index.match(e, float(c)).route for e, c in zip(emb, conf)]


def predict_nearest(index: RT.RouteIndex, emb: np.ndarray) -> list[str | None]:
    """The replaced matcher: the route of the nearest example when its cosine reaches 0.405."""
    out = []
    for e in emb:
        first, _ = index.nearest(e)
        best = int(np.argmax(first))
        out.append(index.specs[best].name if first[best] >= OLD_THRESHOLD and not index.specs[best].out_of_scope
                   else None)
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


def by_style(rows: list[dict], pred: list[str | None]) -> dict:
    """held_out_3's accuracy per writing style (route prompts) and the near-topic none prompts' false-route."""
    acc: dict[str, list[bool]] = defaultdict(list)
    for r, p in zip(rows, pred):
        if r["route"] is not None:
            acc[r.get("style", "plain")].append(p == r["route"])
    out = {k: round(sum(v) / len(v), 3) for k, v in sorted(acc.items())}
    near = [p is not None for r, p in zip(rows, pred) if r["route"] is None and r.get("near")]
    far = [p is not None for r, p in zip(rows, pred) if r["route"] is None and not r.get("near")]
    errors = [{"text": r["text"][:80], "label": r["route"], "got": p} for r, p in zip(rows, pred) if p != r["route"]]
    return {"accuracy_by_style": out, "false_route_near_topic": round(sum(near) / max(1, len(near)), 3),
            "n_near_topic": len(near), "false_route_general": round(sum(far) / max(1, len(far)), 3),
            "errors": errors}


def calibrate(index: RT.RouteIndex, rows: list[dict], emb: np.ndarray, conf: np.ndarray) -> dict:
    """The (ROUTE_BASE, ROUTE_HEAD_TEMPERATURE) point whose ROUTE_BASE neighbourhood (the point and the bases one
    step either side) all keep the pooled false-route within half the target, with the best mean accuracy over that
    neighbourhood: a point on the edge of the cap or on an accuracy spike of this data is not chosen."""
    cap = TARGETS["false_route"] / 2
    grid = {(b, t): score(rows, predict(with_constants(index, b, t), emb, conf))
            for t in TEMPERATURES for b in BASES}
    smooth = {}
    for t in TEMPERATURES:
        for i in range(1, len(BASES) - 1):
            near = [grid[(BASES[j], t)] for j in (i - 1, i, i + 1)]
            if all(s["false_route"] <= cap for s in near):
                smooth[(BASES[i], t)] = round(sum(s["accuracy"] for s in near) / 3, 4)
    best = max(smooth.values())
    tops = sorted(k for k, v in smooth.items() if v == best)
    t = min(k[1] for k in tops)                          # the smallest vote that reaches the best
    plateau = [b for b, tt in tops if tt == t]
    b = plateau[len(plateau) // 2]
    return {"base": b, "temperature": t, "plateau": [plateau[0], plateau[-1]], "false_route_cap": cap,
            "neighbourhood_accuracy": best, **grid[(b, t)]}


def match_latency(dim: int, n: int, specs_n: int = 6, reps: int = 2000) -> dict:
    rng = np.random.default_rng(n)
    counts = [n // specs_n + (i < n % specs_n) for i in range(specs_n)]
    specs = [RT.RouteSpec(f"r{i}", tuple(f"r{i} example {j}" for j in range(k))) for i, k in enumerate(counts)]
    index = RT.build_index(specs, lambda ts: rng.normal(size=(len(ts), dim)).astype(np.float32))
    qs = rng.normal(size=(64, dim)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        index.match(qs[i % len(qs)], 0.5)
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
    names = ["calibration", "held_out_2", "held_out", "held_out_3", "held_out_4"]
    sets = {n: read(f"{n}.jsonl") for n in names}
    vecs = {n: embed_rows(engine, rows) for n, rows in sets.items()}
    cal_rows = sets["calibration"] + sets["held_out_2"]
    cal_emb = np.concatenate([vecs["calibration"][0], vecs["held_out_2"][0]])
    cal_conf = np.concatenate([vecs["calibration"][1], vecs["held_out_2"][1]])
    cal = calibrate(index, cal_rows, cal_emb, cal_conf)
    oos = tuple(r["text"] for r in read("out_of_scope.jsonl"))
    oos_index = RT.build_index([*index.specs, RT.RouteSpec("out_of_scope", oos, out_of_scope=True)],
                               RT.embed_with(engine), previous=index)
    # the operator's workflow after held_out_3: its none prompts (traffic seen to be none of the routes) become
    # out-of-scope examples too; measured on held_out_4, written before this was run
    seen_none = tuple(r["text"] for r in sets["held_out_3"] if r["route"] is None)
    log_index = RT.build_index([*index.specs, RT.RouteSpec("out_of_scope", oos + seen_none, out_of_scope=True)],
                               RT.embed_with(engine), previous=oos_index)
    rows4, (emb4, conf4) = sets["held_out_4"], vecs["held_out_4"]
    near4 = [i for i, r in enumerate(rows4) if r["route"] is None and r.get("near")]

    def near_false_route(pred: list[str | None]) -> float:
        return round(sum(pred[i] is not None for i in near4) / len(near4), 3)

    h4 = {}
    for key, ix in (("shipped", index), ("out_of_scope", oos_index), ("seen_none", log_index)):
        pred = predict(ix, emb4, conf4)
        h4[key] = {**score(rows4, pred), "false_route_near_topic": near_false_route(pred), "n_near_topic": len(near4)}
    report = {"held_out_4": h4}
    for n in ["held_out", "held_out_3"]:
        rows, (emb, conf) = sets[n], vecs[n]
        shipped = predict(index, emb, conf)
        report[n] = {"shipped": score(rows, shipped),
                     "nearest_cosine": score(rows, predict_nearest(index, emb)),
                     "out_of_scope": score(rows, predict(oos_index, emb, conf))}
        if n == "held_out_3":
            report[n]["styles"] = by_style(rows, shipped)
    report["calibration"] = {"shipped": score(cal_rows, predict(index, cal_emb, cal_conf)),
                             "nearest_cosine": score(cal_rows, predict_nearest(index, cal_emb)),
                             "out_of_scope": score(cal_rows, predict(oos_index, cal_emb, cal_conf))}
    dim = index.matrix.shape[1]
    latency = [match_latency(dim, n, reps=500 if quick else 3000) for n in (120, 1000, 10_000)]
    at_1000 = next(x for x in latency if x["examples"] == 1000)
    h3 = report["held_out_3"]["shipped"]
    return {"date": time.strftime("%Y-%m-%d"), "quick": quick, "machine": machine(),
            "load_average": round(os.getloadavg()[0], 1),
            "examples": int(index.matrix.shape[0]), "routes": [s.name for s in index.specs],
            "bars": {s.name: round(float(t), 3) for s, t in zip(index.specs, index.thresholds)},
            "embed_examples_s": round(load_s, 2), "calibrated": cal,
            "out_of_scope_examples": [len(oos), len(oos) + len(seen_none)],
            "shipped": {"base": TH.ROUTE_BASE, "temperature": TH.ROUTE_HEAD_TEMPERATURE,
                        "tightness": TH.ROUTE_TIGHTNESS},
            "report": report, "latency": latency,
            "met": {"accuracy": h3["accuracy"] >= TARGETS["accuracy"],
                    "false_route": h3["false_route"] <= TARGETS["false_route"],
                    "match_ms_1000": at_1000["p50_ms"] <= TARGETS["match_ms_1000"]}}


def section(res: dict) -> str:
    rep, cal, sh = res["report"], res["calibrated"], res["shipped"]
    h4 = rep["held_out_4"]
    c, h1, h3 = rep["calibration"], rep["held_out"], rep["held_out_3"]
    st, met = h3["styles"], res["met"]

    def row(label: str, key: str, fmt=lambda s: s) -> str:
        return (f"| {label} | {fmt(c['shipped'][key])} | {fmt(h1['shipped'][key])} | **{fmt(h3['shipped'][key])}** "
                f"| {fmt(h3['nearest_cosine'][key])} | {fmt(h3['out_of_scope'][key])} |")

    lines = [
        START, "## Custom routes: accuracy and cost (bench_routes.py)", "",
        f"_Measured {res['date']} by `python -m tests.bench.bench_routes`{' --quick' if res['quick'] else ''}; "
        f"config/examples/support-desk.yaml ({res['examples']} examples, 6 routes); embedding them and fitting the "
        f"bars at load took {res['embed_examples_s']} s on this machine's CPU (load average "
        f"{res.get('load_average', '?')} while measuring: timings are inflated by other work on the machine)._", "",
        f"Calibrated on `calibration.jsonl` + `held_out_2.jsonl` pooled ({c['shipped']['n']} prompts, "
        f"{c['shipped']['n_none']} none): `ROUTE_BASE` **{cal['base']}** (best range {cal['plateau'][0]}–"
        f"{cal['plateau'][1]}) and `ROUTE_HEAD_TEMPERATURE` **{cal['temperature']}**: the best pooled accuracy "
        f"averaged with the neighbouring bases ({cal['neighbourhood_accuracy']}), all three within pooled "
        f"false-route ≤ {cal['false_route_cap']}; at the point itself {c['shipped']['accuracy']} / "
        f"{c['shipped']['false_route']}. Shipped in thresholds.py: {sh['base']} and {sh['temperature']} "
        f"(`ROUTE_TIGHTNESS` {sh['tightness']}). Fitted bars of this config: "
        + ", ".join(f"{k} {v}" for k, v in res["bars"].items()) + ".", "",
        "Reported on `held_out_3.jsonl` (written before this matcher and run only once it was frozen; terse, typos, "
        f"long angry tickets, other languages, system prompts; {st['n_near_topic']} of its "
        f"{h3['shipped']['n_none']} none prompts near-topic) and "
        "`held_out.jsonl` (no constant was calibrated on it, but it was looked at while choosing the matcher's "
        "design, so it is not a clean test). Columns: the shipped matcher on each set, then on held_out_3 the "
        "replaced matcher (nearest cosine ≥ 0.405) and the shipped one with 40 out-of-scope examples added:", "",
        "| | calibration (cal + held_out_2) | held_out | held_out_3 | held_out_3, nearest cosine | "
        "held_out_3, + out-of-scope |", "|---|---|---|---|---|---|",
        row(f"accuracy (target ≥ {TARGETS['accuracy']})", "accuracy"),
        row(f"false-route on none (target ≤ {TARGETS['false_route']})", "false_route"),
        row("route prompts sent to another route", "wrong_route"),
        *[f"| recall {r} | {c['shipped']['recall'][r]} | {h1['shipped']['recall'][r]} | "
          f"**{h3['shipped']['recall'][r]}** | {h3['nearest_cosine']['recall'][r]} | "
          f"{h3['out_of_scope']['recall'][r]} |" for r in h3["shipped"]["recall"]],
        "",
        "held_out_3 by style (route prompts, shipped matcher): "
        + ", ".join(f"{k} {v}" for k, v in st["accuracy_by_style"].items())
        + f"; false-route on its {st['n_near_topic']} near-topic none prompts {st['false_route_near_topic']}, "
        f"on the general ones {st['false_route_general']}.", "",
        f"Targets on held_out_3: accuracy {'met' if met['accuracy'] else 'missed'}, false-route "
        f"{'met' if met['false_route'] else 'missed'}. Route prompts written plainly, tersely, at length or under "
        "a system prompt are routed at "
        + ", ".join(f"{st['accuracy_by_style'].get(k, '?')}" for k in ("plain", "terse", "long", "system_prompt"))
        + f", and general none prompts false-routed at {st['false_route_general']}; the misses are where this "
        "encoder, or matching by topic at all, cannot see the difference:", "",
        "- **Near-topic prompts about someone else** (a phone company's double charge, Netflix billing after "
        "cancelling, an Instagram 2FA setup, a React crash): they are the routes' topics, only not about this "
        "company, and most are routed: by meaning they are the routes. Out-of-scope examples help little: on "
        f"held_out_4 (below), {res['out_of_scope_examples'][1]} of them took the near-topic false-route from "
        f"{h4['shipped']['false_route_near_topic']} to {h4['seen_none']['false_route_near_topic']}. What separates "
        "them is whom the prompt is about, which a topic embedding does not carry: a keyword rule naming the other "
        "brands (`not: {keyword: other_brands}`) catches the named ones; the rest needs a classifier trained on "
        "the distinction.",
        "- **Other languages**: all-MiniLM-L6-v2 is English-only, so French, Spanish and German tickets match no "
        "route (they fall to the default decision, not to a wrong route). Route them with the `language` signal "
        "first (support-desk.yaml sends French to a French desk at a higher priority).",
        "- **Typos** break the encoder's word pieces (\"retrun\", \"invocie\"): those prompts fall to none.",
        "",
        f"`held_out_4.jsonl` ({h4['shipped']['n']} prompts: 20 per route, {h4['shipped']['n_none']} none of which "
        f"{h4['shipped']['n_near_topic']} near-topic) was written after that and before it was run, to measure the "
        "fix an operator has: out-of-scope examples. \"+ out-of-scope\" adds out_of_scope.jsonl's "
        f"{res['out_of_scope_examples'][0]} generic ones; \"+ seen none\" adds held_out_3's "
        f"{res['out_of_scope_examples'][1] - res['out_of_scope_examples'][0]} none prompts as well (traffic the "
        "operator saw was none of the routes):", "",
        "| held_out_4 | shipped | + out-of-scope | + seen none |", "|---|---|---|---|",
        *[f"| {label} | {h4['shipped'][k]} | {h4['out_of_scope'][k]} | **{h4['seen_none'][k]}** |"
          for label, k in (("accuracy", "accuracy"), ("false-route on none", "false_route"),
                           ("false-route on the near-topic none", "false_route_near_topic"),
                           ("route prompts sent to another route", "wrong_route"))], "",
        "| examples | match p50 ms | p99 ms |", "|---|---|---|",
        *[f"| {x['examples']:,} | {x['p50_ms']} | {x['p99_ms']} |" for x in res["latency"]], "",
        f"Matching 1,000 examples: {'met' if met['match_ms_1000'] else 'missed'} (target ≤ "
        f"{TARGETS['match_ms_1000']} ms p50; one matrix product and three segment reductions on the embedding the "
        "signal pass already made).",
        END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    return documented_main(argv, name="routes", run=run, doc=DOCS / "routing.md", start=START, end=END,
                           section=section, needs_models=True)


if __name__ == "__main__":
    main()
