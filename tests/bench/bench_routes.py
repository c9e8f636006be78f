"""Custom routes without training (#23): accuracy of the matcher fitted from the examples, and what matching costs.

    python -m tests.bench.bench_routes [--quick] [--no-doc]

The routes are config/examples/support-desk.yaml's: 6 support routes that are not MMLU categories, 20 example
utterances each (shipping 25: rules16 added 5, the operator's lever for recall). The matcher (routes.py: two-nearest score, a bar per route from its examples' leave-one-out
tightness, the category head's classes ranked with the routes, typos repaired against the examples' words and
read once more, a raised bar for a turn about someone else) has three calibrated constants:
`thresholds.ROUTE_BASE` and `ROUTE_HEAD_TEMPERATURE` on calibration.jsonl (15 rewordings per route + 60 none)
pooled with held_out_2.jsonl (40 per route + 60 none; its errors were studied, so it is calibration data). The rule
(calibrate): the best pooled accuracy, averaged over the point and its two neighbouring ROUTE_BASE steps, among the
points whose neighbourhood keeps the pooled false-route within half the target (120 none prompts measure 0.05 only
to about ±0.04): no point on the edge of the cap or on a spike of this data. `ROUTE_OTHER_PENALTY` (the rise of
the bar for a turn about someone else) on every set but the headline pooled: the best accuracy (ties: the lower
false-route, then the smaller rise).

`ROUTE_LANGUAGE_FLOOR` (a route matches the languages of its examples) on every earlier set: the largest floor of
the grid that keeps every English prompt matchable. `ROUTE_NEGATIVE_MARGIN` (a route's `negatives:`) by leave one
set out over held_out_3 .. held_out_13: each scored with the others' near-topic none prompts as the negatives of
the route they are near; the largest margin whose mean accuracy is within 0.005 of the best.

The judge (routes.py: a logistic model over the best route's match, beside the shipped pool of someone else's
support text and the brand list) is fitted on every earlier set pooled (`calibrate_judge`, with each set left out in
turn to show what it does on a set it was not fitted on).

Reported on held_out_16.jsonl: written by another session (sets17: 9dd6338 on main) that did not see this round's
changes, and not read by this round's author (rules16) before the matcher was frozen (52fd1ac); brought in
afterwards and run once. The headline. The earlier held-out sets are calibration data now, shown as such:
held_out.jsonl (looked at while the matcher's design was chosen), held_out_3.jsonl and held_out_4.jsonl (their
typos and near-topic misses shaped the repair and the "someone else" cues), held_out_5.jsonl (its other-language
and near-topic misses shaped the language gate and the negatives), held_out_6.jsonl (its near-topic misses shaped
the judge), held_out_7.jsonl (its misses shaped the possessive and how-to cues; the judge is refitted with it),
held_out_8.jsonl (its misses shaped the third-person, other-party and partner cues; the judge is refitted with it),
held_out_9.jsonl and held_out_10.jsonl (their partner-brand misses shaped rules10's partner cue; the judge is
refitted with both), held_out_11.jsonl (its how-to and no-brand misses shaped rules11's advice, seller, local-service
and appliance cues; the judge is refitted with it), held_out_12.jsonl (its how-to misses shaped rules12's generic
cue, its typo misses the spelling repair's change; the judge is refitted with it), held_out_13.jsonl (rules13 chose
its three learned features leaving each set out, this one among them; the judge is refitted with it), held_out_14.jsonl
(rules14 wrote the gloss's second batch of words and the knowledge cue after reading its misses; the judge is refitted
with it), held_out_15.jsonl (rules16 wrote the guidance cue and support-desk.yaml's 5 new shipping examples after
reading its misses; the judge is refitted with it). The strictness trade curve is shown on the calibration sets
pooled and on held_out_16; accuracy with and
without
support-desk.yaml's `language` rules (other-language prompts at a language desk count as right).

A prompt is right when its matched route is its label (for "none": when no route matches). Every prompt is read as
the router reads a request: the signal pass over its system prompt and user turn (inputs.plan, the engine's token
budget), the head's confidence from the same pass, and, when the user turn has typos the speller repairs, a second
pass over the repaired turn (stages/decide.route_reading), and the language detector's reading of the user turn
(stages/decide.language); a turn the language gate keeps from every route is read as its English gloss (gloss.py),
embedded once more. "round start" is the matcher shipped before held_out_16's round (main at f108579: its
26 weights, `advice` without rules16's guidance cue, support-desk.yaml without rules16's 5 shipping examples), "before" the
bar instead of the judge, without the gloss (the matcher shipped before held_out_7),
"no brand list" the judge without the brand list refitted on the same sets; "+ out-of-scope" adds
out_of_scope.jsonl's 40 examples as an `out_of_scope: true` route, "+ seen none" adds the earlier sets' none
prompts to them (traffic an operator saw to be none of the routes), "+ negatives" gives each route the earlier
sets' near-topic none prompts near it as `negatives:` (the same traffic, filed by route). Match latency:
`RouteIndex.match` with the judge (the text read for whom it is about) on one embedding at 120, 1,000 and 10,000
examples; the repair's cost on support-desk's vocabulary.
Writes docs/routing.md's routes section.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from router_extproc import routes as RT  # noqa: E402
from router_extproc.language import Language, LanguageDetector  # noqa: E402
from router_extproc import thresholds as TH  # noqa: E402
from router_extproc.config import load_config  # noqa: E402
from router_extproc.openai import Segment  # noqa: E402
from router_extproc.signals.inputs import InputRule, plan, single  # noqa: E402
from tests.bench.common import DOCS, MODEL_DIR, documented_main, machine  # noqa: E402

START, END = "<!-- routes:start -->", "<!-- routes:end -->"
CONFIG = ROOT / "config" / "examples" / "support-desk.yaml"
DATA = ROOT / "tests" / "bench" / "data" / "routes"
TARGETS = {"accuracy": 0.90, "false_route": 0.05, "match_ms_1000": 1.0}
BASES = [round(b, 3) for b in np.arange(0.05, 0.351, 0.005)]
TEMPERATURES = [0.0, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15]
PENALTIES = [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2]
FLOORS = [0.0, 0.005, 0.01, 0.02, 0.05, 0.1]
MARGINS = [-0.04, -0.02, 0.0, 0.02, 0.04]
MARGIN_TOLERANCE = 0.005
STRICTNESS = [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]   # a route's `strictness:` (added to the judge's cut): the curve
CUT_TOLERANCE = 0.005      # ROUTE_JUDGE_CUT: the largest cut whose leave-one-set-out accuracy is within this of the best
# The matcher shipped at this round's start (main at f108579, before held_out_16's round: the judge's 26 features
# refitted by rules14 with held_out_14, cut at log-odds 1.0, the gloss on): the "round start" of held_out_16's report.
# This round (rules16) widened `advice` (routes._GUIDANCE) and gave support-desk.yaml's shipping route 5 examples
# (ROUND_EXAMPLES); round start reads the config without them and `advice` without the guidance cue
# (advice_at_round_start), so the column is main's code and config at f108579.
ROUND_START_JUDGE = ((15.10, -1.39, -4.76, -0.37, 0.02, -2.16, -3.13, -0.68, 1.38, 1.46, -5.88, -4.77, -7.31,
                      -1.98, -7.57, -8.53, -6.15, -5.70, -6.40, -7.00, -7.98, 8.41, -10.18, -0.63, -0.32, -8.05), -2.95)
ROUND_EXAMPLES = frozenset({
    "My order came in several boxes and one of them never showed up",
    "The driver marked it as left in a safe place but there's nothing there",
    "Can the courier leave my parcel with a neighbour if nobody is home?",
    "Can you narrow down the delivery window for my order?",
    "Only some of the items I ordered were in the delivery"})
ROUND_START_CUT = 1.0
# Who wrote the headline set (its commit on main) and where this round's matcher was frozen before it was read
SET_COMMIT = "9dd6338, written by sets17"
FROZEN_AT = "52fd1ac"
ROUND = "rules16"
HEADLINE = "held_out_16"
CALIBRATION = ["calibration", "held_out_2"]           # ROUTE_BASE and ROUTE_HEAD_TEMPERATURE
EARLIER = ["held_out", "held_out_3", "held_out_4", "held_out_5", "held_out_6", "held_out_7",
           "held_out_8", "held_out_9", "held_out_10", "held_out_11", "held_out_12", "held_out_13",
           "held_out_14", "held_out_15"]   # held-out once
# sets whose none prompts say what they are near
NEAR_TOPIC = ["held_out_3", "held_out_4", "held_out_5", "held_out_6", "held_out_7",
              "held_out_8", "held_out_9", "held_out_10", "held_out_11", "held_out_12", "held_out_13", "held_out_14",
              "held_out_15"]


def read(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


@dataclasses.dataclass
class Reading:
    """One set as the router reads it: the signal pass's embeddings and head confidences, and the second pass
    over each repaired user turn (repaired text -> (embedding, confidence))."""

    rows: list[dict]
    emb: np.ndarray
    conf: np.ndarray
    fixed: dict[str, tuple[np.ndarray, float]]
    lang: list[Language]

    def __add__(self, other: "Reading") -> "Reading":
        return Reading(self.rows + other.rows, np.concatenate([self.emb, other.emb]),
                       np.concatenate([self.conf, other.conf]), {**self.fixed, **other.fixed},
                       self.lang + other.lang)


def embed_rows(engine, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Each row as the router reads a request: its system prompt (if any) and its user turn."""
    rule = InputRule()
    jobs = []
    for r in rows:
        segs = ([Segment("system", r["system"], 0)] if r.get("system") else []) + [Segment("user", r["text"], 1)]
        jobs.append((plan(segs, rule), rule.max_tokens_read))
    out = [s for i in range(0, len(jobs), 32) for s in engine.analyze_requests(jobs[i:i + 32])]
    return (np.asarray([s.embedding for s in out], np.float32).reshape(len(rows), -1),
            np.asarray([s.category_confidence for s in out], np.float32))


def reading(engine, index: RT.RouteIndex, rows: list[dict], detector: LanguageDetector) -> Reading:
    """The set's signal pass, each user turn's language (stages/decide.language), and the route's second pass over
    each repaired or glossed turn (`SignalEngine.analyze` of that text with the request budget: what
    stages/decide.route_reading asks for)."""
    emb, conf = embed_rows(engine, rows)
    langs = [detector.detect(r["text"]) for r in rows]
    # the gloss or repair the shipped matcher reads, and the repair alone (the round start and the bar read no gloss)
    todo = sorted({t for r, lang in zip(rows, langs) for t in (index.repair(r["text"], lang), index.repair(r["text"]))
                   if t is not None})
    rule = InputRule()
    out = [s for i in range(0, len(todo), 32)
           for s in engine.analyze_requests([(single(t), rule.max_tokens_read) for t in todo[i:i + 32]])]
    return Reading(rows, emb, conf, {t: (s.embedding, float(s.category_confidence)) for t, s in zip(todo, out)},
                   langs)


def with_constants(index: RT.RouteIndex, base: float, temperature: float,
                   penalty: float | None = None) -> RT.RouteIndex:
    """The index with other calibration constants (the examples' tightness is the index's own)."""
    taus = [s.threshold if s.threshold is not None else np.inf if s.out_of_scope else
            base + TH.ROUTE_TIGHTNESS * RT.tightness(index.matrix[a:a + n])
            for s, a, n in zip(index.specs, index.starts, index.counts)]
    return dataclasses.replace(index, thresholds=np.asarray(taus, np.float32), head_temperature=temperature,
                               other_penalty=index.other_penalty if penalty is None else penalty)


def predict(index: RT.RouteIndex, data: Reading, before: bool = False, no_repair: bool = False) -> list[str | None]:
    """The shipped matcher as the router runs it; `before`: the bar instead of the judge (the matcher shipped
    before held_out_7); `no_repair`: the bar, without the typo repair, the "someone else" rise and the language
    gate."""
    if before or no_repair:
        index = dataclasses.replace(index, elsewhere=None, glossary=None)
    out = []
    for r, e, c, lang in zip(data.rows, data.emb, data.conf, data.lang):
        fixed = None if no_repair else index.repair(r["text"], lang)
        text, lang = index.read_as(r["text"], lang)
        if fixed is not None:
            e, c = data.fixed[fixed]
        out.append(index.match(e, float(c), None if no_repair else text, None if no_repair else lang).route)
    return out


def score(rows: list[dict], pred: list[str | None]) -> dict:
    labels = [r["route"] for r in rows]
    none = [p for p, lab in zip(pred, labels) if lab is None]
    recall = {}
    for route in sorted({lab for lab in labels if lab is not None}):
        got = [p == lab for p, lab in zip(pred, labels) if lab == route]
        recall[route] = round(sum(got) / len(got), 3)
    wrong_route = sum(1 for p, lab in zip(pred, labels) if lab is not None and p is not None and p != lab)
    near = [p is not None for p, r in zip(pred, rows) if r["route"] is None and r.get("near")]
    # other-language prompts: the route prompts' accuracy and wrong-route share, the none prompts' false-route
    other = [(p == r["route"], p is not None and p != r["route"]) for p, r in zip(pred, rows)
             if r.get("style") == "second_language" and r["route"] is not None]
    other_none = [p is not None for p, r in zip(pred, rows) if r.get("style") == "second_language" and r["route"] is None]
    return {"other_language": [round(sum(a for a, _ in other) / len(other), 3),
                               round(sum(b for _, b in other) / len(other), 3), len(other),
                               round(sum(other_none) / len(other_none), 3) if other_none else None,
                               len(other_none)] if other else None,
            "n": len(rows), "accuracy": round(sum(p == lab for p, lab in zip(pred, labels)) / len(rows), 3),
            "recall": recall, "false_route": round(sum(p is not None for p in none) / max(1, len(none)), 3),
            "n_none": len(none), "wrong_route": wrong_route,
            "false_route_near_topic": round(sum(near) / len(near), 3) if near else None, "n_near_topic": len(near)}


def by_style(rows: list[dict], pred: list[str | None]) -> dict:
    """Accuracy per writing style (route prompts) and false-route on the near-topic and the general none prompts;
    accuracy without the other-language prompts (which this English-only encoder cannot read: the `language`
    signal routes them, docs/routing.md)."""
    acc: dict[str, list[bool]] = defaultdict(list)
    for r, p in zip(rows, pred):
        if r["route"] is not None:
            acc[r.get("style", "plain")].append(p == r["route"])
    out = {k: [round(sum(v) / len(v), 3), len(v)] for k, v in sorted(acc.items())}
    near = [p is not None for r, p in zip(rows, pred) if r["route"] is None and r.get("near")]
    far = [p is not None for r, p in zip(rows, pred) if r["route"] is None and not r.get("near")]
    english = [p == r["route"] for r, p in zip(rows, pred) if r.get("style") != "second_language"]
    errors = [{"text": r["text"][:80], "label": r["route"], "got": p, "style": r.get("style")}
              for r, p in zip(rows, pred) if p != r["route"]]
    return {"accuracy_by_style": out, "false_route_near_topic": round(sum(near) / max(1, len(near)), 3),
            "n_near_topic": len(near), "false_route_general": round(sum(far) / max(1, len(far)), 3),
            "n_general": len(far), "accuracy_english": round(sum(english) / max(1, len(english)), 3),
            "n_english": len(english), "errors": errors}


def calibrate(index: RT.RouteIndex, data: Reading) -> dict:
    """The (ROUTE_BASE, ROUTE_HEAD_TEMPERATURE) point whose ROUTE_BASE neighbourhood (the point and the bases one
    step either side) all keep the pooled false-route within half the target, with the best mean accuracy over that
    neighbourhood: a point on the edge of the cap or on an accuracy spike of this data is not chosen."""
    cap = TARGETS["false_route"] / 2
    grid = {(b, t): score(data.rows, predict(with_constants(index, b, t), data))
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


def calibrate_penalty(index: RT.RouteIndex, data: Reading) -> dict:
    """ROUTE_OTHER_PENALTY at the shipped base and temperature: the best pooled accuracy; among equal ones the lower
    false-route (the other target), then the smaller rise."""
    grid = {p: score(data.rows, predict(with_constants(index, TH.ROUTE_BASE, TH.ROUTE_HEAD_TEMPERATURE, p), data))
            for p in PENALTIES}
    best = max(PENALTIES, key=lambda p: (grid[p]["accuracy"], -grid[p]["false_route"], -p))
    return {"penalty": best, "grid": {str(p): [g["accuracy"], g["false_route"]] for p, g in grid.items()},
            "n": grid[best]["n"], "n_none": grid[best]["n_none"]}


def calibrate_floor(index: RT.RouteIndex, sets: dict[str, Reading]) -> dict:
    """ROUTE_LANGUAGE_FLOOR: the largest floor of the grid at which no English route prompt of the earlier sets is
    kept from its route by the language gate (sets whose other-language prompts are marked by style; the rest are
    all English), with how many other-language route prompts each floor keeps from every route."""
    grid = {}
    for f in FLOORS:
        ix = dataclasses.replace(index, language_floor=f)
        english = other = 0
        for n in ("calibration", "held_out_2", "held_out", "held_out_3", "held_out_5"):
            d = sets[n]
            for r, lang in zip(d.rows, d.lang):
                if r["route"] is None:
                    continue
                kept = not ix.language_allows(lang)[[s.name for s in ix.specs].index(r["route"])]
                if r.get("style") == "second_language":
                    other += kept
                else:
                    english += kept
        grid[f] = (english, other)
    best = max(f for f, (e, _) in grid.items() if e == 0)
    return {"floor": best, "grid": {str(f): list(v) for f, v in grid.items()}}


def negatives_from(sets: dict[str, Reading], names: list[str]) -> dict[str, tuple[str, ...]]:
    """The sets' near-topic none prompts, filed under the route each is near (an operator's `negatives:`)."""
    out: dict[str, list[str]] = defaultdict(list)
    for n in names:
        for r in sets[n].rows:
            if r["route"] is None and r.get("near"):
                out[r["near"]].append(r["text"])
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


def with_negatives(index: RT.RouteIndex, engine, negatives: dict[str, tuple[str, ...]]) -> RT.RouteIndex:
    specs = [dataclasses.replace(s, negatives=negatives.get(s.name, ())) for s in index.specs]
    return RT.build_index(specs, RT.embed_with(engine), previous=index, known_words=RT.encoder_words(engine),
                          elsewhere=RT.elsewhere_pool() if index.elsewhere is not None else ())


def judge_rows(index: RT.RouteIndex, data: Reading) -> list[tuple[str | None, str | None, np.ndarray | None]]:
    """Each prompt's label, its best route (None: no route may match it: language gate, negatives) and the judge's
    features of that match, read as RouteIndex.match reads them."""
    bar = dataclasses.replace(index, elsewhere=None)
    names = [s.name for s in index.specs]
    out = []
    for r, e, c, lang in zip(data.rows, data.emb, data.conf, data.lang):
        fixed = index.repair(r["text"], lang)
        text, lang = index.read_as(r["text"], lang)
        if fixed is not None:
            e, c = data.fixed[fixed]
        m = bar.match(e, float(c), None, lang)
        if m is None or not np.isfinite(m.bar) or m.nearest is None:
            out.append((r["route"], None, None))
            continue
        best = names.index(m.nearest)
        tau = float(index.thresholds[best])
        out.append((r["route"], m.nearest, index.judge_features(e, text, m.score, tau, float(c),
                                                                index.runner_up(index.scores(e), best))))
    return out


def fit_judge(rows: list[tuple[str | None, str | None, np.ndarray | None]], l2: float) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (deterministic), L2 on the weights: a route prompt whose best route is
    its own (1) against a none prompt (0); a route prompt whose best route is another is wrong either way: left out."""
    keep = [(x, lab is not None) for lab, cand, x in rows if x is not None and (lab is None or lab == cand)]
    X = np.c_[np.asarray([x for x, _ in keep]), np.ones(len(keep))]
    y = np.asarray([float(t) for _, t in keep])
    beta = np.zeros(X.shape[1])
    ridge = l2 * np.diag([1.0] * (X.shape[1] - 1) + [0.0])
    for _ in range(50):
        p = 1 / (1 + np.exp(-X @ beta))
        h = X.T @ (X * (p * (1 - p))[:, None]) + ridge
        beta -= np.linalg.solve(h, X.T @ (p - y) + ridge @ beta)
    return beta[:-1], float(beta[-1])


def judged(rows, weights, bias, cut: float = TH.ROUTE_JUDGE_CUT) -> list[str | None]:
    return [cand if x is not None and float(np.dot(weights, x) + bias) >= cut else None for _, cand, x in rows]


def calibrate_judge(index: RT.RouteIndex, sets: dict[str, Reading], names: list[str]) -> dict:
    """ROUTE_JUDGE_WEIGHTS: fitted on `names` pooled; how well the judge does on a set it was not fitted on, by
    leaving each set but the first calibration pair out (against the bar on the same set)."""
    rows = {n: judge_rows(index, sets[n]) for n in names}
    weights, bias = fit_judge([r for n in names for r in rows[n]], TH.ROUTE_JUDGE_L2)
    lofo = {}
    for held in names[2:]:
        w, b = fit_judge([r for n in names if n != held for r in rows[n]], TH.ROUTE_JUDGE_L2)
        s = score(sets[held].rows, judged(rows[held], w, b))
        bar = score(sets[held].rows, predict(index, sets[held], before=True))
        lofo[held] = [s["accuracy"], s["false_route"], bar["accuracy"], bar["false_route"]]
    return {"weights": [round(float(w), 2) for w in weights], "bias": round(bias, 2), "l2": TH.ROUTE_JUDGE_L2,
            "features": list(TH.ROUTE_JUDGE_FEATURES), "leave_one_out": lofo,
            "n": sum(1 for n in names for lab, cand, x in rows[n] if x is not None and (lab is None or lab == cand))}


def calibrate_margin(index: RT.RouteIndex, engine, sets: dict[str, Reading]) -> dict:
    """ROUTE_NEGATIVE_MARGIN by leave one set out over NEAR_TOPIC: each set scored with the others' near-topic none
    prompts as negatives; the largest margin (the most near-topic traffic refused) whose mean accuracy is within
    MARGIN_TOLERANCE of the best (about one prompt per set: the noise of a set this size)."""
    grid: dict[float, list[dict]] = defaultdict(list)
    for held in NEAR_TOPIC:
        ix = with_negatives(index, engine, negatives_from(sets, [n for n in NEAR_TOPIC if n != held]))
        for m in MARGINS:
            grid[m].append(score(sets[held].rows, predict(dataclasses.replace(ix, negative_margin=m), sets[held])))
    mean = {m: (round(statistics.mean(g["accuracy"] for g in v), 3), round(statistics.mean(g["false_route"] for g in v), 3))
            for m, v in grid.items()}
    top = max(v[0] for v in mean.values())
    best = max(m for m in MARGINS if mean[m][0] >= top - MARGIN_TOLERANCE)
    return {"margin": best, "tolerance": MARGIN_TOLERANCE, "grid": {str(m): list(v) for m, v in mean.items()}}


def strictness_curve(index: RT.RouteIndex, sets: dict[str, Reading], names: list[str],
                     fit_on: list[str] | None = None) -> dict:
    """Accuracy and false-route, pooled over `names`, with every route's `strictness:` at each value of STRICTNESS
    (the judge says yes when its log-odds reach ROUTE_JUDGE_CUT + it). `fit_on`: each of `names` judged by a judge
    fitted on these sets less it (leave one set out: ROUTE_JUDGE_CUT's choice); None: the shipped judge."""
    rows = {n: judge_rows(index, sets[n]) for n in {*names, *(fit_on or ())}}
    fits = {n: fit_judge([r for m in fit_on if m != n for r in rows[m]], TH.ROUTE_JUDGE_L2) if fit_on else
            (np.asarray(index.judge_weights), index.judge_bias) for n in names}
    out = {}
    for cut in STRICTNESS:
        sc = [score(sets[n].rows, judged(rows[n], *fits[n], TH.ROUTE_JUDGE_CUT + cut)) for n in names]
        n_all, n_none = sum(x["n"] for x in sc), sum(x["n_none"] for x in sc)
        out[str(cut)] = [round(sum(x["accuracy"] * x["n"] for x in sc) / n_all, 3),
                         round(sum(x["false_route"] * x["n_none"] for x in sc) / max(1, n_none), 3)]
    return out


def language_codes(config) -> frozenset[str]:
    """The languages the config's `language` rules take (support-desk.yaml: a French desk and a multilingual one,
    both above the route rules)."""
    from router_extproc import rules as RU
    return frozenset(c for r in config.decisions.rules if isinstance(r.when, RU.Language) for c in r.when.codes)


def with_language_rules(rows: list[dict], pred: list[str | None], langs: list[Language],
                        codes: frozenset[str]) -> dict:
    """The decision with the config's `language` rules (they outrank the routes): a turn the detector is sure is in
    one of `codes` goes to a language desk. Right: an other-language prompt (route or none) at a language desk, an
    English one at its route (none: no route and no desk). Accuracy overall and on the other-language prompts."""
    ok, other = [], []
    for r, p, lang in zip(rows, pred, langs):
        desk = lang.code is not None and lang.code in codes
        foreign = r.get("style") == "second_language"
        right = desk if foreign else (not desk and p == r["route"])
        ok.append(right)
        if foreign:
            other.append(right)
    return {"accuracy": round(sum(ok) / len(ok), 3), "other_language": round(sum(other) / max(1, len(other)), 3),
            "n_other": len(other), "english_at_desk": sum(1 for r, lang in zip(rows, langs)
                                                        if r.get("style") != "second_language"
                                                        and lang.code is not None and lang.code in codes)}


def by_kind(rows: list[dict], pred: list[str | None]) -> dict:
    """False-route on the none prompts by `kind` (held_out_8 onwards mark their near-topic ones: no brand, a
    known brand, the operator's own partners about the customer's account with them, someone else's possessive, a
    general how-to)."""
    out: dict[str, list[bool]] = defaultdict(list)
    for r, p in zip(rows, pred):
        if r["route"] is None:
            out[r.get("kind") or ("near-topic" if r.get("near") else "general")].append(p is not None)
    return {k: [round(sum(v) / len(v), 3), len(v)] for k, v in sorted(out.items())}


def advice_at_round_start(text: str) -> bool:
    """The judge's `advice` as main read it at f108579: routes.asks_advice without rules16's guidance cue."""
    text = text[:RT.REPAIR_MAX_CHARS]
    if RT._ADDRESSED.search(text) or RT._ASKS_OPERATOR.search(text):
        return False
    return bool(RT._ADVICE.search(text)) or (bool(RT._GENERAL_FORM.search(text))
                                             and not RT._FIRST_PERSON.search(text) and not RT._US.search(text))


def round_start(config, engine, index: RT.RouteIndex, rows: list[dict], detector) -> list[str | None]:
    """The matcher at f108579 on `rows`: the config without ROUND_EXAMPLES, ROUND_START_JUDGE, `advice` without the
    guidance cue (read through judge_rows, as calibrate_judge reads a set)."""
    specs = tuple(dataclasses.replace(s, examples=tuple(e for e in s.examples if e not in ROUND_EXAMPLES))
                  for s in index.specs)
    start = RT.build_index(specs, RT.embed_with(engine), index, RT.encoder_words(engine), detector,
                           RT.elsewhere_pool())
    data = reading(engine, start, rows, detector)
    col = TH.ROUTE_JUDGE_FEATURES.index("advice")
    fixed = []
    for r, (lab, cand, x) in zip(rows, judge_rows(start, data)):
        if x is not None:
            x = x.copy()
            x[col] = float(advice_at_round_start(r["text"]))
        fixed.append((lab, cand, x))
    return judged(fixed, np.asarray(ROUND_START_JUDGE[0]), ROUND_START_JUDGE[1], ROUND_START_CUT)


def match_latency(dim: int, n: int, specs_n: int = 6, reps: int = 2000) -> dict:
    rng = np.random.default_rng(n)
    counts = [n // specs_n + (i < n % specs_n) for i in range(specs_n)]
    specs = [RT.RouteSpec(f"r{i}", tuple(f"r{i} example {j}" for j in range(k)), languages=("en",))
             for i, k in enumerate(counts)]
    index = RT.build_index(specs, lambda ts: rng.normal(size=(len(ts), dim)).astype(np.float32),
                           elsewhere=RT.elsewhere_pool())       # the judge, as for_config builds it
    qs = rng.normal(size=(64, dim)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    text = "My phone company charged me twice this month, how do I dispute it with them?"
    lang = Language("en", 0.99, {"en": 0.99})     # the language gate runs over every route
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        index.match(qs[i % len(qs)], 0.5, text, lang)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"examples": n, "p50_ms": round(statistics.median(times), 4),
            "p99_ms": round(times[int(len(times) * 0.99)], 4)}


def repair_latency(index: RT.RouteIndex, rows: list[dict], reps: int) -> dict:
    """`RouteIndex.repair` on the user turns of a set (in a worker thread on the request path)."""
    texts = [r["text"] for r in rows]
    times = []
    for i in range(reps):
        t0 = time.perf_counter()
        index.repair(texts[i % len(texts)])
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 4), "p99_ms": round(times[int(len(times) * 0.99)], 4)}


def run(quick: bool, headline: str = HEADLINE) -> dict:
    from router_extproc.signals import SignalEngine

    config = load_config(CONFIG)
    engine = SignalEngine(MODEL_DIR, device="cpu")
    t0 = time.perf_counter()
    index = RT.for_config(config, engine)
    load_s = time.perf_counter() - t0
    detector = index.detector or LanguageDetector()
    sets = {n: reading(engine, index, read(f"{n}.jsonl"), detector) for n in [*CALIBRATION, *EARLIER, headline]}
    cal = sets["calibration"] + sets["held_out_2"]
    earlier = [n for n in EARLIER if n != headline]
    pooled = cal
    for n in earlier:
        pooled = pooled + sets[n]
    judge = calibrate_judge(index, sets, [*CALIBRATION, *earlier])
    bar_index = dataclasses.replace(index, elsewhere=None)
    calibrated = calibrate(bar_index, cal)
    penalty = calibrate_penalty(bar_index, pooled)
    floor = calibrate_floor(index, sets)
    margin = calibrate_margin(index, engine, sets)
    neg_index = with_negatives(index, engine, negatives_from(sets, [n for n in NEAR_TOPIC if n != headline]))
    oos = tuple(r["text"] for r in read("out_of_scope.jsonl"))
    pool = RT.elsewhere_pool()
    oos_index = RT.build_index([*index.specs, RT.RouteSpec("out_of_scope", oos, out_of_scope=True)],
                               RT.embed_with(engine), previous=index, known_words=RT.encoder_words(engine),
                               elsewhere=pool)
    # the operator's workflow: none prompts seen in traffic (the earlier sets') become out-of-scope examples too
    seen_none = tuple(r["text"] for n in NEAR_TOPIC if n != headline for r in sets[n].rows if r["route"] is None)
    log_index = RT.build_index([*index.specs, RT.RouteSpec("out_of_scope", oos + seen_none, out_of_scope=True)],
                               RT.embed_with(engine), previous=oos_index, known_words=RT.encoder_words(engine),
                               elsewhere=pool)
    # the judge without the brand list, refitted on the same sets: what the list (written after those sets were
    # read) adds on a set written before it
    bare = dataclasses.replace(index, brands=None)
    w, b = fit_judge([r for n in [*CALIBRATION, *earlier] for r in judge_rows(bare, sets[n])], TH.ROUTE_JUDGE_L2)
    no_brands = dataclasses.replace(bare, judge_weights=tuple(float(x) for x in w), judge_bias=b)
    head = sets[headline]
    shipped = predict(index, head)
    started = round_start(config, engine, index, head.rows, detector)
    codes = language_codes(config)
    negs = predict(neg_index, head)
    report = {headline: {"shipped": score(head.rows, shipped), "before": score(head.rows, predict(index, head, True)),
                         "no_brands": score(head.rows, predict(no_brands, head)),
                         "out_of_scope": score(head.rows, predict(oos_index, head)),
                         "seen_none": score(head.rows, predict(log_index, head)),
                         "negatives": score(head.rows, negs),
                         "styles": by_style(head.rows, shipped),
                         "styles_before": by_style(head.rows, predict(index, head, True)),
                         "styles_no_brands": by_style(head.rows, predict(no_brands, head)),
                         "styles_negatives": by_style(head.rows, negs),
                         "round_start": score(head.rows, started),
                         "styles_round_start": by_style(head.rows, started),
                         "kinds": by_kind(head.rows, shipped), "kinds_round_start": by_kind(head.rows, started),
                         "language_rules": with_language_rules(head.rows, shipped, head.lang, codes),
                         "strictness": strictness_curve(index, sets, [headline])}}
    for n, data in (("calibration", cal), *((n, sets[n]) for n in earlier)):
        report[n] = {"shipped": score(data.rows, predict(index, data)),
                     "before": score(data.rows, predict(index, data, True))}
    dim = index.matrix.shape[1]
    latency = [match_latency(dim, n, reps=500 if quick else 3000) for n in (120, 1000, 10_000)]
    at_1000 = next(x for x in latency if x["examples"] == 1000)
    h = report[headline]["shipped"]
    return {"date": time.strftime("%Y-%m-%d"), "quick": quick, "machine": machine(), "headline": headline,
            "earlier": earlier, "load_average": round(os.getloadavg()[0], 1),
            "examples": int(index.matrix.shape[0]), "routes": [s.name for s in index.specs],
            "bars": {s.name: round(float(t), 3) for s, t in zip(index.specs, index.thresholds)},
            "strictness_calibration": strictness_curve(index, sets, earlier, [*CALIBRATION, *earlier]),
            "language_codes": sorted(codes),
            "embed_examples_s": round(load_s, 2), "calibrated": calibrated, "calibrated_penalty": penalty,
            "calibrated_floor": floor, "calibrated_margin": margin, "calibrated_judge": judge,
            "elsewhere": len(pool),
            "negatives": sum(len(s.negatives) for s in neg_index.specs),
            "repaired": {n: len(d.fixed) for n, d in sets.items()},
            "out_of_scope_examples": [len(oos), len(oos) + len(seen_none)],
            "shipped": {"base": TH.ROUTE_BASE, "temperature": TH.ROUTE_HEAD_TEMPERATURE,
                        "tightness": TH.ROUTE_TIGHTNESS, "penalty": TH.ROUTE_OTHER_PENALTY,
                        "floor": TH.ROUTE_LANGUAGE_FLOOR, "margin": TH.ROUTE_NEGATIVE_MARGIN},
            "languages": {s.name: sorted(ls) for s, ls in zip(index.specs, index.languages)},
            "report": report, "latency": latency,
            "repair_latency": repair_latency(index, head.rows, reps=500 if quick else 3000),
            "met": {"accuracy": h["accuracy"] >= TARGETS["accuracy"],
                    "false_route": h["false_route"] <= TARGETS["false_route"],
                    "match_ms_1000": at_1000["p50_ms"] <= TARGETS["match_ms_1000"]}}


def per_route(name: str) -> str:
    """The set's route prompts counted by route: "20 per route" when every route has as many, else each count."""
    counts = Counter(r["route"] for r in read(f"{name}.jsonl") if r["route"] is not None)
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} per route"
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def section(res: dict) -> str:
    rep, cal, pen, sh, met = res["report"], res["calibrated"], res["calibrated_penalty"], res["shipped"], res["met"]
    fl, mg = res["calibrated_floor"], res["calibrated_margin"]
    hl = res["headline"]
    h = rep[hl]
    st, sb, sn, sx = h["styles"], h["styles_before"], h["styles_negatives"], h["styles_no_brands"]
    c = rep["calibration"]
    jd = res["calibrated_judge"]
    cols = ["shipped", "round_start", "no_brands", "before", "out_of_scope", "seen_none", "negatives"]
    sr = h["styles_round_start"]
    lr = h["language_rules"]

    def row(label: str, key: str) -> str:
        return f"| {label} | **{h['shipped'][key]}** | " + " | ".join(str(h[k][key]) for k in cols[1:]) + " |"

    def lang(k: str) -> str:
        o = h[k]["other_language"]
        return f"{o[0]} / {o[1]}" if o else "-"

    def lang_none(k: str) -> str:
        o = h[k]["other_language"]
        return str(o[3]) if o and o[3] is not None else "-"

    ol = h["shipped"]["other_language"] or [None, None, 0, None, 0]

    styles = sorted(st["accuracy_by_style"])

    def style_row(label: str, s: dict, bold: bool) -> str:
        b = "**" if bold else ""
        return (f"| {label} | " + " | ".join(f"{b}{s['accuracy_by_style'][k][0]}{b}" for k in styles)
                + f" | {b}{s['accuracy_english']}{b} | {b}{s['false_route_near_topic']}{b} | "
                f"{b}{s['false_route_general']}{b} |")

    lines = [
        START, "## Custom routes: accuracy and cost (bench_routes.py)", "",
        f"_Measured {res['date']} by `python -m tests.bench.bench_routes`{' --quick' if res['quick'] else ''}; "
        f"config/examples/support-desk.yaml ({res['examples']} examples, 6 routes); embedding them and fitting the "
        f"bars, the speller and the examples' languages at load took {res['embed_examples_s']} s on this machine's "
        f"CPU (load average {res.get('load_average', '?')} while measuring: timings are inflated by other work on "
        "the machine)._", "",
        f"Calibrated on `calibration.jsonl` + `held_out_2.jsonl` pooled ({c['shipped']['n']} prompts, "
        f"{c['shipped']['n_none']} none): `ROUTE_BASE` **{cal['base']}** (best range {cal['plateau'][0]}–"
        f"{cal['plateau'][1]}) and `ROUTE_HEAD_TEMPERATURE` **{cal['temperature']}**: the best pooled accuracy "
        f"averaged with the neighbouring bases ({cal['neighbourhood_accuracy']}), all three within pooled "
        f"false-route ≤ {cal['false_route_cap']}; at the point itself {cal['accuracy']} / {cal['false_route']}. "
        f"`ROUTE_OTHER_PENALTY` (the rise of the bar for a turn about someone else) on those and "
        + ", ".join(f"`{n}.jsonl`" for n in res["earlier"]) + f" pooled ({pen['n']} prompts, {pen['n_none']} none): "
        f"**{pen['penalty']}**, the best accuracy, ties to the lower false-route (accuracy / false-route by rise: "
        + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in pen["grid"].items()) + "). "
        f"`ROUTE_LANGUAGE_FLOOR` **{fl['floor']}**: the largest floor at which no English route prompt of the "
        "earlier sets is kept from its route (English prompts kept out / other-language route prompts kept out, by "
        "floor: " + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in fl["grid"].items()) + "). "
        f"`ROUTE_NEGATIVE_MARGIN` **{mg['margin']}**: leave one set out over " + "/".join(NEAR_TOPIC) + ", each "
        "scored with the others' near-topic none prompts as negatives; the largest margin (the most near-topic traffic refused) "
        f"whose mean accuracy is within {mg['tolerance']} of the best (mean accuracy / false-route by margin: "
        + ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in mg["grid"].items()) + "). "
        f"Shipped in thresholds.py: {sh['base']}, {sh['temperature']}, {sh['penalty']}, {sh['floor']} and "
        f"{sh['margin']} (`ROUTE_TIGHTNESS` {sh['tightness']}). Fitted bars of this config: "
        + ", ".join(f"{k} {v}" for k, v in res["bars"].items()) + "; the examples' languages: "
        + ", ".join(f"{k} {'/'.join(v) or 'any'}" for k, v in res["languages"].items()) + ".", "",
        "**The judge** (routes.py; it replaces the bar when the index carries the shipped pool, as for_config "
        f"builds it): a logistic model over the best route's match, fitted on every earlier set pooled ({jd['n']} "
        "prompts: the route prompts whose best route is their own against the none prompts; Newton's method, L2 "
        f"{jd['l2']}) beside a pool of {res['elsewhere']} support questions about other companies' services and "
        "general how-tos (router_extproc/data/elsewhere.txt) and a list of well-known brands (data/other_brands.txt)"
        ". Weights: " + ", ".join(f"{f} {w}" for f, w in zip(jd["features"], jd["weights"])) + f", bias {jd['bias']}"
        " (shipped: " + ", ".join(str(w) for w in TH.ROUTE_JUDGE_WEIGHTS) + f", {TH.ROUTE_JUDGE_BIAS}). Leaving "
        "each set out (accuracy / false-route, the judge fitted on the others against the bar): "
        + ", ".join(f"{n} {v[0]}/{v[1]} against {v[2]}/{v[3]}" for n, v in jd["leave_one_out"].items())
        + ". The pool, the brand list and the cues were written after those sets were read, so these flatter; "
        f"{hl} is the report.", "",
        f"**The cut and a route's `strictness:`.** The judge says yes at log-odds `ROUTE_JUDGE_CUT` "
        f"**{TH.ROUTE_JUDGE_CUT}**; a route's `strictness:` (within ±4) adds to it, trading recall for false-route. "
        "Leaving one earlier set out at a time (" + "/".join(res["earlier"]) + "; the judge fitted on the others "
        "and the calibration pair), pooled accuracy / false-route by strictness (0: the shipped cut, chosen as the "
        f"largest whose accuracy is within {CUT_TOLERANCE} of the best): "
        + ", ".join(f"{k}: {v[0]} / {v[1]}" for k, v in res["strictness_calibration"].items())
        + f"; on {hl} (run once, after the cut was chosen): "
        + ", ".join(f"{k}: {v[0]} / {v[1]}" for k, v in h["strictness"].items()) + ".", "",
        f"Reported on `{hl}.jsonl` ({h['shipped']['n']} prompts: {per_route(hl)}, "
        f"{h['shipped']['n_none']} none of which {h['shipped']['n_near_topic']} near-topic), written by another "
        f"session ({SET_COMMIT} on main) that did not see this round's changes; this round's author ({ROUND}) did "
        f"not open, grep or run it before the matcher was frozen ({FROZEN_AT}), then brought it in and ran it once. "
        "Columns: "
        "the shipped matcher (the judge, the gloss); **round start**: the matcher shipped before this round (main "
        "at f108579: its weights, `advice` without this round's guidance cue, support-desk.yaml without "
        "this round's 5 shipping examples: main's code and config at f108579); "
        "**no brand list**: the "
        "judge without the brand list, refitted on the same sets (what the list adds on a set written after "
        "it by another session); **before**: the bar instead of the judge, no gloss (the matcher shipped before held_out_7); the "
        "shipped one with out_of_scope.jsonl's "
        f"{res['out_of_scope_examples'][0]} examples as an `out_of_scope` route; with the earlier sets' none "
        f"prompts added to those ({res['out_of_scope_examples'][1]} out-of-scope examples: traffic the operator "
        f"saw to be none of the routes); and with the earlier sets' near-topic none prompts as each route's "
        f"`negatives:` ({res['negatives']}, filed under the route they are near):", "",
        f"| {hl} | shipped | round start | no brand list | before | + out-of-scope | + seen none | + negatives |",
        "|---|---|---|---|---|---|---|---|",
        row(f"accuracy (target ≥ {TARGETS['accuracy']})", "accuracy"),
        row(f"false-route on none (target ≤ {TARGETS['false_route']})", "false_route"),
        row("false-route on the near-topic none", "false_route_near_topic"),
        row("route prompts sent to another route", "wrong_route"),
        f"| other-language route prompts ({ol[2]}): right / sent to a wrong route | **{lang('shipped')}** | "
        + " | ".join(lang(k) for k in cols[1:]) + " |",
        f"| other-language none prompts ({ol[4]}): false-route | **{lang_none('shipped')}** | "
        + " | ".join(lang_none(k) for k in cols[1:]) + " |",
        *[f"| recall {r} | **{h['shipped']['recall'][r]}** | "
          + " | ".join(str(h[k]["recall"][r]) for k in cols[1:]) + " |" for r in h["shipped"]["recall"]],
        "",
        f"{hl} by style (route prompts; the none prompts' false-route by kind):", "",
        "| | " + " | ".join(f"{k} ({st['accuracy_by_style'][k][1]})" for k in styles)
        + f" | without other languages ({st['n_english']}) | near-topic none ({st['n_near_topic']}) "
        f"| general none ({st['n_general']}) |",
        "|---|" + "---|" * (len(styles) + 3),
        style_row("shipped", st, True), style_row("round start", sr, False), style_row("no brand list", sx, False),
        style_row("before", sb, False),
        style_row("+ negatives", sn, False),
        "",
        "The none prompts' false-route by kind (shipped / round start): "
        + ", ".join(f"{k} ({v[1]}) {v[0]} / {h['kinds_round_start'][k][0]}" for k, v in h["kinds"].items()) + ".",
        "",
        f"**With support-desk.yaml's `language` rules** (a French desk and a multilingual one, "
        f"{'/'.join(res['language_codes'])}, above the route rules): an other-language prompt the detector is sure "
        "of goes to a language desk, which counts as right for it (its decision is defined: a desk that reads the "
        f"language), and an English prompt sent there as wrong. Accuracy with the rules **{lr['accuracy']}** "
        f"(without them, as in the table: {h['shipped']['accuracy']}); other-language prompts at a language desk "
        f"{lr['other_language']} of {lr['n_other']}; English prompts sent to a desk: {lr['english_at_desk']}.", "",
        f"Targets on {hl}: accuracy {'met' if met['accuracy'] else 'missed'} ({h['shipped']['accuracy']}), "
        f"false-route {'met' if met['false_route'] else 'missed'} ({h['shipped']['false_route']}). "
        f"{res['repaired'][hl]} of its turns had typos the speller repaired. What is left:", "",
        "- **Near-topic prompts about someone else** (another company's bill, a bank's charge, an Instagram "
        "login, a Python error) are the routes' topics, only not about this company: by meaning they are the "
        "routes, and a topic embedding does not carry whom a prompt is about. False-routed at "
        f"{st['false_route_near_topic']} (before the judge {sb['false_route_near_topic']}). The judge weighs the "
        "shipped pool's lead, a known brand, a third party and a general question's form against the match; "
        "the same cues fire on real tickets (\"my bank shows the money left\", \"Apple Pay\", \"on Android\"), "
        "so it trades route recall for refusals, and false-route stays far from 0.05 at the shipped cut; a "
        "route's `strictness:` buys fewer false routes with recall (the curve above). "
        "Someone else's case (\"my mum's\", \"his password\"), another organisation as the subject (\"the post "
        "office lost my parcel\") and a partner brand as the customer's own (\"my PayPal\") are weighed since "
        "rules8; the turns they miss say whose case it is in other words. "
        "The operator's own traffic helps further: the none prompts they saw as `out_of_scope` examples (\"+ seen "
        f"none\": near-topic false-route {h['seen_none']['false_route_near_topic']}, all none "
        f"{h['seen_none']['false_route']}, accuracy {h['seen_none']['accuracy']}) or the near-topic ones as each "
        f"route's `negatives:` (\"+ negatives\": {h['negatives']['false_route_near_topic']}, "
        f"{h['negatives']['false_route']}, {h['negatives']['accuracy']}); a keyword rule naming the brands their "
        "users mention (`not: {keyword: other_brands}`) catches the named ones.",
        "- **Other languages**: all-MiniLM-L6-v2 is English-only. A turn the detector is sure is in a language no "
        "route's examples are in is read as its word-for-word English gloss (gloss.py: French, Spanish, German, "
        "Italian, Portuguese, Dutch) when the table knows at least half its words, and matched as English; "
        "otherwise it matches no route and goes to the rule set's `language` rules or the default decision. Route "
        f"prompts right / sent to a wrong route: {lang('shipped')} (round start: {lang('round_start')}); "
        f"none prompts false-routed: {lang_none('shipped')} (round start {lang_none('round_start')}). The table is "
        "support vocabulary: an operator's route on other topics in other languages needs examples in them "
        "(or `languages:`). support-desk.yaml's `language` rules still send French to a French desk and German, "
        "Spanish, Italian, Portuguese, Dutch, Polish, Swedish and Danish to a multilingual one, above the route "
        "rules (accuracy with them above).",
        f"- **Typos**: {st['accuracy_by_style'].get('typos', ['-'])[0]}: a word one edit from an example's word "
        "(two for 8+ letters) is repaired; one without an example word to become stays as it is.",
        f"- **Without the other-language prompts** the shipped matcher is right on {st['accuracy_english']} of "
        f"{hl}'s prompts (before: {sb['accuracy_english']}).",
        "",
        "The earlier held-out sets, calibration data now (the repair, the cues, the language gate and the negatives "
        "were designed on their misses, and the judge is fitted on them: its figures here are in-sample; accuracy "
        "/ false-route, before = the bar):", "",
        "| set | prompts (none) | before | shipped |", "|---|---|---|---|",
        *[f"| {n} | {rep[n]['shipped']['n']} ({rep[n]['shipped']['n_none']}) | {rep[n]['before']['accuracy']} / "
          f"{rep[n]['before']['false_route']} | {rep[n]['shipped']['accuracy']} / {rep[n]['shipped']['false_route']} |"
          for n in ["calibration", *res["earlier"]]], "",
        "| examples | match p50 ms | p99 ms |", "|---|---|---|",
        *[f"| {x['examples']:,} | {x['p50_ms']} | {x['p99_ms']} |" for x in res["latency"]], "",
        f"Matching 1,000 examples: {'met' if met['match_ms_1000'] else 'missed'} (target ≤ "
        f"{TARGETS['match_ms_1000']} ms p50; one matrix product and three segment reductions on the embedding the "
        "signal pass already made, the pool's product, the user's turn read for whom it is about and for the "
        "brands it names, the judge's dot product, and the language gate over the routes). The typo repair runs in a "
        f"worker thread: p50 {res['repair_latency']['p50_ms']} ms, p99 {res['repair_latency']['p99_ms']} ms per "
        f"turn of {hl}; a repaired turn costs a second encoder pass (one short text). The language detector runs "
        "in a worker thread too (language.py, ~0.05 ms a sentence).",
        END]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    return documented_main(argv, name="routes", run=run, doc=DOCS / "routing.md", start=START, end=END,
                           section=section, needs_models=True)


if __name__ == "__main__":
    main()
