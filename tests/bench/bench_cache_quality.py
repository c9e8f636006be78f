"""Cache hit quality: do people get the hits they expect, and never the answer to another question?

    python -m tests.bench.bench_cache_quality [--quick] [--no-docs]

Sets written for this project (tests/bench/data/cache_quality/, never used to train the verifier):

* ``paraphrases.jsonl`` — groups of one stored prompt and its rewordings in mixed forms ("Define X" after
  "What is X?", a keyword query, a typo'd, a polite and a long version with context, "Tell me about X");
* ``near_misses.jsonl`` — pairs that need different answers, by kind (opposite, direction, scope, task, entity,
  number, negation, time). Batch 1 was written together with the vetoes in ``verify.py``; batch 2 was written
  after they were frozen and never used to change them, so its row is the honest one for the vetoes.

One cache holds every stored prompt (the paraphrase groups' and the near misses'); each query goes through what the
router does (``keys.build_key`` exact fingerprint, then cosine ≥ floor among the top 4, the verifier's stage 1 and
gate, one pair row, the guards and vetoes, the threshold). A paraphrase counts as a hit only when it is served its
own group's answer; a near miss counts as a false hit when it is served anything.

Groups and pairs are split by a stable hash into a calibration part (30 %) and a report part (70 %). The threshold
is calibrated on the calibration part together with QQP's calibration split (the 10 % the verifier did not train
on): the lowest threshold with near-miss false hits ≤ 0.02 there and QQP precision ≥ 0.90 with a margin (the
lower end of its one-sided 95 % Wilson interval, :func:`precision_floor`). Figures are reported on the report part,
and on QQP's test split (held out from training and calibration) as one row.
Writes docs/bench/cache_quality.json and the ``cache_quality`` section of docs/cache.md.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from router_extproc.cache.keys import build_key
from router_extproc.cache.verify import DEFAULT_VETOES, VETOES, load_verifier, refusal, same_request
from router_extproc.config_cache import SemanticCacheConfig

from .common import DOCS, MODEL_DIR, ROOT, machine, progress, save

DATA = Path(__file__).resolve().parent / "data" / "cache_quality"
# The fresh sets (issue #20): each written by another session while a round changed the verifier, first run once
# those changes were frozen. Set 2: round cache20 (rules and generated pairs); set 3: round cache21 (the pair model
# over more than one layer); set 4: round cache22 (the misses by class, the task veto, more opposites); set 5: round
# cache23 (the form-aware request comparison, the name-typo and task-action rules). The newest is the headline
# (first in the docs, report as a whole); the older ones were read by later rounds to choose their changes: they
# are calibration now (SEEN_SETS), shown as rows, not as held-out figures.
FRESH_SETS = {
    "fresh_5": ("paraphrases_5.jsonl", "near_misses_5.jsonl"),
    "fresh": ("paraphrases_2.jsonl", "near_misses_2.jsonl"),
    "fresh_3": ("paraphrases_3.jsonl", "near_misses_3.jsonl"),
    "fresh_4": ("paraphrases_4.jsonl", "near_misses_4.jsonl"),
}
SEEN_SETS = {"fresh": "cache21", "fresh_3": "cache22", "fresh_4": "cache23"}  # set -> the first round that chose on it
FRESH_NOTES = {
    "fresh_5": "written by another session (the sets19 helper) while round cache23 changed the rules that accept "
               "another form of the same request (keyword and short forms) and refuse near misses (two names a "
               "typo apart, two actions on one product) without seeing it; brought in and run once after that "
               "round's choice was frozen.",
    "fresh_4": "written by another session (the sets16 helper) while round cache22 listed the "
               "misses of sets 1-3 by class and changed the vetoes without seeing it; brought in and run once "
               "after that round's choice was frozen. Round cache23 chose its rules on it.",
    "fresh": "written by another session (the sets2 helper) while round cache20 changed the rules and the "
             "verifier's generated pairs without seeing it. That round's changes moved this set only from 0.475 to "
             "0.482 paraphrase hits (near misses 0.00 both) and were not merged.",
    "fresh_3": "written by another session (the sets12 helper) while round cache21 trained pair models over two and "
               "three of the encoder's layers without seeing it; brought in and run once after that round's choice "
               "was frozen.",
}
QQP = ROOT / "models" / "data" / "qqp-dev.jsonl.gz"
TOP_K = 4               # the hot tier's and Milvus' default top_k
CALIBRATION_SHARE = 30  # % of groups / pairs
TARGET_FALSE_HITS = 0.02
TARGET_PRECISION = 0.90
# The calibration split's precision is a sample of about 650 served pairs: read at its point value, the 0.90 rule
# fell just under 0.90 on the test split (0.897 at 0.94, recipe e2ad5a52e6b6e666). The threshold must reach the
# target with the lower end of a one-sided 95 % interval, so that another sample of pairs holds it too.
PRECISION_Z = 1.645
CFG = SemanticCacheConfig(enabled=True)
HEADERS = {"authorization": "Bearer bench"}
# What the verifier applies, from the negation and quantity guards alone (before issue #20) to the shipped rules.
CONFIGS = {"guards": ((), False), "vetoes": (DEFAULT_VETOES, False), "shipped": (DEFAULT_VETOES, True)}


def part_of(key: str) -> str:
    """``"calibration"`` or ``"report"`` by a stable hash of a group id or a pair."""
    return "calibration" if int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100 < CALIBRATION_SHARE \
        else "report"


def fingerprint(text: str) -> str:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}], "temperature": 0.7}
    return build_key(body, "m", HEADERS, CFG).fingerprint


class Judge:
    """The router's lookup, reduced to one function of (query, stored prompts) that returns the score of the
    candidate the verifier would read, so that any threshold can be applied afterwards."""

    def __init__(self, engine, verifier, floor: float) -> None:
        self.engine, self.v, self.floor = engine, verifier, floor

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for s in range(0, len(texts), 32):
            out.extend(sig.embedding for sig in self.engine.analyze_batch(texts[s:s + 32]))
        e = np.asarray(out, np.float32)
        return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)

    def look(self, q: str, qe: np.ndarray, stored: list[str], se: np.ndarray, fps: dict[str, int],
             config: str) -> tuple[str, int, float]:
        """(how, index of the stored prompt it would serve or -1, score). ``how``: exact, identical, no-candidate,
        gated, scored."""
        i = fps.get(fingerprint(q))
        if i is not None:
            return "exact", i, 1.0
        cos = se @ qe
        self.v.vetoes, self.v.same_rule = CONFIGS[config]
        # what SemanticCache.lookup searches: the top 4 from the rule floor (under it: nothing)
        search_floor = min(self.floor, self.v.rule_floor) if self.v.rule_floor else self.floor
        idx = [int(j) for j in np.argsort(-cos, kind="stable")[:TOP_K] if cos[j] >= search_floor]
        if not idx:
            return "no-candidate", -1, 0.0
        same = [j for j in idx if stored[j] == q and cos[j] >= 0.98]
        if same:
            return "identical", same[0], 1.0
        for j in idx:
            if cos[j] < self.floor and self.v.same_form(q, stored[j]):
                return "rule", j, 1.0
        idx = [j for j in idx if cos[j] >= self.floor]
        if not idx:
            return "no-candidate", -1, 0.0
        cands = [(se[j], stored[j], float(cos[j])) for j in idx]
        pre = self.v.prescreen(qe, q, cands)
        keep = [k for k in np.argsort(-pre, kind="stable") if pre[k] >= self.v.gate][:1]
        if not keep:
            return "gated", idx[int(np.argmax(pre))], 0.0
        k = keep[0]
        pf = self.engine.pair_features_batch([(q, cands[k][1])]) if self.v.needs_pairs else None
        s = float(self.v.scores(qe, q, [cands[k]], pf)[0])
        return "scored", idx[k], s


def run_sets(judge: Judge, quick: bool, files: tuple[str, str] = ("paraphrases.jsonl", "near_misses.jsonl"),
             part: str | None = None) -> dict[str, Any]:
    """Every query of one pair of files against one cache of their stored prompts. ``part``: every row's part
    (a fresh set is report as a whole); by default a stable hash splits calibration from report."""
    groups = [json.loads(line) for line in (DATA / files[0]).open() if line.strip()]
    pairs = [json.loads(line) for line in (DATA / files[1]).open() if line.strip()]
    if quick:
        groups, pairs = groups[::3], pairs[::3]
    stored = [g["stored"] for g in groups] + [p["stored"] for p in pairs]
    se = judge.embed(stored)
    fps = {fingerprint(t): i for i, t in enumerate(stored)}
    queries = ([(g["group"], i, q["form"], q["text"], part or part_of(g["group"])) for i, g in enumerate(groups)
                for q in g["queries"]])
    nm = [(p["kind"], p.get("batch", 1), p["query"], part or part_of(p["stored"] + "\t" + p["query"]))
          for p in pairs]
    qe = judge.embed([q[3] for q in queries] + [p[2] for p in nm])
    rows = []
    t0 = time.perf_counter()
    for (gid, gi, form, text, part), e in zip(queries, qe[:len(queries)]):
        r = {"set": "paraphrase", "group": gid, "form": form, "part": part, "text": text}
        for c in CONFIGS:
            how, j, sc = judge.look(text, e, stored, se, fps, c)
            r[c] = {"how": how, "own": j == gi, "score": sc, "served": stored[j] if j >= 0 else None}
        j = r["guards"]["served"]
        r["veto"] = refusal(j, text, kinds=tuple(VETOES)) if j else None
        r["same"] = bool(j) and same_request(j, text)
        rows.append(r)
    for (kind, batch, text, part), e in zip(nm, qe[len(queries):]):
        r = {"set": "near_miss", "kind": kind, "batch": batch, "part": part, "text": text}
        for c in CONFIGS:
            how, j, sc = judge.look(text, e, stored, se, fps, c)
            r[c] = {"how": how, "own": False, "score": sc, "served": stored[j] if j >= 0 else None}
        j = r["guards"]["served"]
        r["veto"] = refusal(j, text, kinds=tuple(VETOES)) if j else None
        r["same"] = bool(j) and same_request(j, text)
        rows.append(r)
    progress(f"cache_quality: {len(rows)} lookups in {time.perf_counter() - t0:.0f}s")
    return {"rows": rows, "groups": len(groups), "pairs": len(pairs)}


def run_qqp(judge: Judge, quick: bool) -> list[dict[str, Any]]:
    """Pair-level scores on QQP's calibration and test splits (as models/build_verifier.py evaluates)."""
    from models.build_verifier import split_of

    rows = [json.loads(line) for line in gzip.open(QQP, "rt")]
    rows = [r | {"split": split_of(r["text_a"], r["text_b"])} for r in rows]
    rows = [r for r in rows if r["split"] in (1, 2)]
    if quick:
        rows = rows[::10]
    texts = sorted({r["text_a"] for r in rows} | {r["text_b"] for r in rows})
    index = {t: i for i, t in enumerate(texts)}
    t0 = time.perf_counter()
    E = judge.embed(texts)
    progress(f"cache_quality: embedded {len(texts)} QQP texts in {time.perf_counter() - t0:.0f}s")
    v = judge.v
    v.vetoes, v.same_rule = CONFIGS["guards"]
    out = []
    todo = []
    for r in rows:
        a, b = r["text_a"], r["text_b"]
        ea, eb = E[index[a]], E[index[b]]
        c = float(ea @ eb)
        rec = {"split": r["split"], "label": int(r["label"]), "cos": c, "score": 0.0, "veto": None,
               "same": False}
        out.append(rec)
        if c < v.rule_floor:
            continue
        cand = [(eb, b, c)]
        rec["veto"] = refusal(a, b, kinds=tuple(VETOES))
        rec["same"] = same_request(a, b, v._known)
        if c < judge.floor:
            continue  # only same_request may serve it
        if v.needs_pairs and float(v.prescreen(ea, a, cand)[0]) < v.gate:
            continue
        todo.append((rec, ea, a, cand))
    t0 = time.perf_counter()
    for s in range(0, len(todo), 32):
        chunk = todo[s:s + 32]
        pf = judge.engine.pair_features_batch([(a, cand[0][1]) for _, _, a, cand in chunk]) if v.needs_pairs \
            else [None] * len(chunk)
        for (rec, ea, a, cand), f in zip(chunk, pf):
            rec["score"] = float(v.scores(ea, a, cand, None if f is None else f[None, :])[0])
    progress(f"cache_quality: {len(todo)} QQP pair rows in {time.perf_counter() - t0:.0f}s")
    return out


def qqp_score(r: dict, config: str) -> float:
    vetoes, same = CONFIGS[config]
    refused = r["veto"] in ("negation", "quantity") or r["veto"] in vetoes  # r["veto"]: the first of all VETOES
    if refused:
        return 0.0
    return 1.0 if same and r["same"] else r["score"]


def qqp_at(rows: list[dict], split: int, t: float, config: str) -> dict[str, float]:
    m = [r for r in rows if r["split"] == split]
    pos = sum(r["label"] for r in m)
    served = [r for r in m if qqp_score(r, config) >= t]
    tp = sum(r["label"] for r in served)
    return {"precision": tp / max(1, len(served)), "recall": tp / max(1, pos), "served": len(served),
            "true_positives": tp, "pairs": len(m), "duplicates": pos}


def hit(r: dict, t: float, config: str) -> bool:
    c = r[config]
    return c["how"] in ("exact", "identical", "rule") or (c["how"] == "scored" and c["score"] >= t)


def summarize(rows: list[dict], t: float, config: str, part: str | None) -> dict[str, Any]:
    sel = [r for r in rows if part is None or r["part"] == part]
    para = [r for r in sel if r["set"] == "paraphrase"]
    nm = [r for r in sel if r["set"] == "near_miss"]
    forms, kinds = defaultdict(list), defaultdict(list)
    for r in para:
        forms[r["form"]].append(hit(r, t, config) and r[config]["own"])
    for r in nm:
        kinds[r["kind"]].append(hit(r, t, config))
    b2 = [hit(r, t, config) for r in nm if r["batch"] == 2]
    return {
        "paraphrase_hits": float(np.mean([hit(r, t, config) and r[config]["own"] for r in para])) if para else None,
        "paraphrases": len(para),
        "paraphrase_wrong_entry": sum(hit(r, t, config) and not r[config]["own"] for r in para),
        "exact_tier": sum(r[config]["how"] == "exact" for r in para),
        "by_form": {k: float(np.mean(v)) for k, v in sorted(forms.items())},
        "near_miss_false_hits": float(np.mean([hit(r, t, config) for r in nm])) if nm else None,
        "near_misses": len(nm),
        "by_kind": {k: (float(np.mean(v)), len(v)) for k, v in sorted(kinds.items())},
        "batch2_false_hits": float(np.mean(b2)) if b2 else None,
        "batch2": len(b2),
    }


def precision_floor(tp: int, served: int, z: float = PRECISION_Z) -> float:
    """The lower end of the Wilson score interval of a precision ``tp / served`` (one-sided, ``z``): what the
    precision is at least, at that confidence, on another sample of pairs."""
    if not served:
        return 0.0
    p, n = tp / served, served
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return float((centre - spread) / (1 + z * z / n))


def calibrate(rows: list[dict], qqp: list[dict]) -> float:
    """The lowest threshold with near-miss false hits ≤ target on the calibration part and QQP calibration
    precision ≥ target with the margin of :func:`precision_floor` (shipped rules)."""
    for t in np.round(np.arange(0.05, 1.0, 0.01), 2):
        s = summarize(rows, float(t), "shipped", "calibration")
        if s["near_miss_false_hits"] is not None and s["near_miss_false_hits"] > TARGET_FALSE_HITS:
            continue
        if qqp:
            c = qqp_at(qqp, 1, float(t), "shipped")
            if precision_floor(c["true_positives"], c["served"]) < TARGET_PRECISION:
                continue
        return float(t)
    return 0.99


def qqp_curve(qqp: list[dict], rows: list[dict], cal: float) -> list[dict[str, Any]]:
    """QQP precision and recall (shipped rules) around the calibrated threshold, on both splits, beside the
    report part's paraphrase hits and near-miss false hits: what each threshold trades (shown, never chosen on)."""
    out = []
    for t in sorted({*np.round(np.arange(0.90, 1.0, 0.01), 2), round(cal, 2)}):
        c = qqp_at(qqp, 1, float(t), "shipped")
        s = summarize(rows, float(t), "shipped", "report")
        out.append({"threshold": float(t), "calibration": c,
                    "calibration_floor": precision_floor(c["true_positives"], c["served"]),
                    "test": qqp_at(qqp, 2, float(t), "shipped"),
                    "report_paraphrase_hits": s["paraphrase_hits"],
                    "report_near_miss_false_hits": s["near_miss_false_hits"]})
    return out


def rule_ablation(rows: list[dict], qqp: list[dict], t: float) -> list[dict[str, Any]]:
    """What each rule earns (report part and QQP test split, threshold ``t``): for a veto, the near misses the
    models would have served that it refuses and the paraphrase hits it costs; for same_request, the paraphrase
    hits it adds and the near misses it lets through."""
    out = []
    rep = [r for r in rows if r["part"] == "report" and r["guards"]["how"] == "scored"]
    q = [r for r in qqp if r["split"] == 2]
    for k in VETOES:
        took = [r for r in rep if r["guards"]["score"] >= t and r["veto"] == k]
        qt = [r for r in q if r["score"] >= t and r["veto"] == k]
        out.append({"rule": f"veto: {k}" + ("" if k in DEFAULT_VETOES else " (measured, not applied)"),
                    "near_misses": -sum(r["set"] == "near_miss" for r in took),
                    "paraphrases": -sum(r["set"] == "paraphrase" and r["guards"]["own"] for r in took),
                    "qqp_non_duplicates": -sum(r["label"] == 0 for r in qt),
                    "qqp_duplicates": -sum(r["label"] == 1 for r in qt)})
    # same_request: what the shipped rules serve beyond the vetoes alone (it also reads candidates under the floor)
    allrep = [r for r in rows if r["part"] == "report"]
    gain = [r for r in allrep if hit(r, t, "shipped") and not hit(r, t, "vetoes")]  # (vetoes as shipped)
    qq = [r for r in qqp if r["split"] == 2 and qqp_score(r, "shipped") >= t > qqp_score(r, "vetoes")]
    out.append({"rule": "same_request", "near_misses": sum(r["set"] == "near_miss" for r in gain),
                "paraphrases": sum(r["set"] == "paraphrase" and r["shipped"]["own"] for r in gain),
                "qqp_non_duplicates": sum(r["label"] == 0 for r in qq),
                "qqp_duplicates": sum(r["label"] == 1 for r in qq)})
    return out


def measure(md: Path, quick: bool, no_qqp: bool):
    """One verifier through every set: (judge, the quality sets, QQP's splits, each fresh set's rows, the
    calibrated threshold)."""
    from router_extproc.signals import SignalEngine

    # One ONNX Runtime thread, no spinning: the same bits as two threads (models/build_verifier.py measured it), at
    # about half the CPU time on shared cores, where two threads wait for each other at every operator
    engine = SignalEngine(md, device="cpu", threads=1, spin=False)
    v = load_verifier(md)
    floor = max(0.7, v.floor)  # config/config.yaml's similarity_threshold and the verifier's own floor
    judge = Judge(engine, v, floor)
    sets = run_sets(judge, quick)
    qqp = [] if no_qqp else run_qqp(judge, quick)
    fresh = {name: run_sets(judge, quick, files, part="fresh")["rows"] for name, files in FRESH_SETS.items()
             if all((DATA / f).exists() for f in files)}
    return judge, sets, qqp, fresh, calibrate(sets["rows"], qqp)


def verifier_row(v, cal: float, role: str, fresh: list[dict]) -> dict[str, Any]:
    """One verifier's row of a fresh set's table: the shipped rules at its own calibrated threshold."""
    return {"role": role, "recipe": v.meta.get("recipe"), "kind": v.kind,
            "stage2": (v.meta.get("recipe_params") or {}).get("pair_model") or "frozen seq_feat",
            "threshold": cal, "summary": summarize(fresh, cal, "shipped", "fresh")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-docs", action="store_true")
    ap.add_argument("--no-qqp", action="store_true")
    ap.add_argument("--model-dir", type=Path, default=MODEL_DIR,
                    help="the models and verifier to measure (default models/dist)")
    ap.add_argument("--also", type=Path, default=None,
                    help="a second model dir (another verifier recipe), calibrated the same way: its fresh-set rows "
                         "join the table")
    args = ap.parse_args(argv)
    md = args.model_dir
    if not (md / "verifier.json").exists():
        progress(f"cache_quality: {md / 'verifier.json'} not built: skipping")
        return {}
    t_start = time.perf_counter()
    judge, sets, qqp, fresh_sets, cal = measure(md, args.quick, args.no_qqp)
    v, rows = judge.v, sets["rows"]
    fresh_rows = {name: [verifier_row(v, cal, "shipped", fr)] for name, fr in fresh_sets.items()}
    if args.also is not None:
        j2, _, _, fresh2, cal2 = measure(args.also, args.quick, args.no_qqp)
        for name, fr in fresh2.items():
            fresh_rows.setdefault(name, []).append(verifier_row(j2.v, cal2, "also", fr))
    shipped = v.threshold
    import yaml

    configured = (yaml.safe_load((ROOT / "config" / "config.yaml").read_text()).get("semantic_cache") or {}) \
        .get("verifier_threshold")
    if configured != cal:
        progress(f"cache_quality: config/config.yaml has verifier_threshold {configured}, calibrated {cal}: update it")
    result: dict[str, Any] = {
        "verifier": {"kind": v.kind, "threshold": shipped, "gate": v.gate, "floor": judge.floor,
                     "recipe": v.meta.get("recipe")},
        "calibrated_threshold": cal, "groups": sets["groups"], "pairs": sets["pairs"], "quick": args.quick,
        "report": {f"{c}_{name}": summarize(rows, t, c, "report") for c in CONFIGS
                   for name, t in (("shipped", shipped), ("calibrated", cal))},
        "all_parts_shipped_calibrated": summarize(rows, cal, "shipped", None),
        "fresh": {name: {f"{c}_calibrated": summarize(fr, cal, c, "fresh") for c in CONFIGS}
                  for name, fr in fresh_sets.items()} or None,
        "fresh_sets": fresh_rows,
        "fresh_misses": [{"set": name, "form": r["form"], "text": r["text"], **r["shipped"]}
                         for name, fr in fresh_sets.items() for r in fr
                         if r["set"] == "paraphrase" and not (hit(r, cal, "shipped") and r["shipped"]["own"])],
        "fresh_false_hits": [{"set": name, "kind": r["kind"], "text": r["text"], **r["shipped"]}
                             for name, fr in fresh_sets.items() for r in fr
                             if r["set"] == "near_miss" and hit(r, cal, "shipped")],
        "qqp_test": {f"{c}_{name}": qqp_at(qqp, 2, t, c) for c in CONFIGS
                     for name, t in (("shipped", shipped), ("calibrated", cal))} if qqp else None,
        "qqp_curve": qqp_curve(qqp, rows, cal) if qqp else None,
        "rules": rule_ablation(rows, qqp, shipped),
        "misses": [{"form": r["form"], "text": r["text"], **r["shipped"]}
                   for r in rows if r["set"] == "paraphrase" and r["part"] == "report"
                   and not (hit(r, shipped, "shipped") and r["shipped"]["own"])],
        "false_hits": [{"kind": r["kind"], "text": r["text"], **r["shipped"]}
                       for r in rows if r["set"] == "near_miss" and hit(r, shipped, "shipped")],
        "took_s": round(time.perf_counter() - t_start, 1),
    }
    save("cache_quality", result)
    progress(json.dumps({k: result[k] for k in ("calibrated_threshold", "qqp_test")}, default=float))
    for name, vrows in fresh_rows.items():
        for row in vrows:
            s = row["summary"]
            progress(f"{name} {row['role']} {row['recipe']} at {row['threshold']}: paraphrase hits "
                     f"{s['paraphrase_hits']:.3f} near-miss false hits {s['near_miss_false_hits']:.3f} by kind "
                     f"{s['by_kind']} by form {s['by_form']}")
    for name, s in result["report"].items():
        if s and name.endswith("_shipped"):
            progress(f"{name}: paraphrase hits {s['paraphrase_hits']:.3f} near-miss false hits "
                     f"{s['near_miss_false_hits']:.3f} by kind {s['by_kind']} by form {s['by_form']}")
    if not args.no_docs:
        write_docs(result)
    return result


def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _stage2_label(row: dict[str, Any]) -> str:
    pm = row["stage2"]
    if isinstance(pm, dict):
        what = (f"pair model, top {pm.get('layers', 1)} layer(s) tuned, "
                + ("mean-pooled" if pm.get("pooling") == "mean" else "[CLS]"))
    else:
        what = "frozen pair row (seq_feat)"
    return (f"{'**shipped**' if row['role'] == 'shipped' else 'not shipped'}: {what}, recipe {row['recipe']}, "
            f"threshold {row['threshold']}")


def _fresh_lines(r: dict[str, Any]) -> list[str]:
    """Each fresh set's rows: every verifier measured, each at its own calibrated threshold."""
    out = []
    for name, vrows in (r.get("fresh_sets") or {}).items():
        sums = [row["summary"] for row in vrows]
        forms = sorted({k for s in sums for k in s["by_form"]})
        kinds = sorted({k for s in sums for k in s["by_kind"]})
        para, near = FRESH_SETS[name]
        seen = SEEN_SETS.get(name)
        what = (f"**Calibration set, seen** (a fresh set once; round {seen} and later read it to choose their "
                "changes, so its figures are no longer held out)" if seen else "**Fresh set** (the headline)")
        out += ["", f"{what} (`{para}`, `{near}`: {sums[0]['paraphrases']} rewordings, "
                f"{sums[0]['near_misses']} near misses, one cache of their own stored prompts): {FRESH_NOTES[name]}"
                + ("" if seen else " The whole set is report: none of it calibrates anything."), "",
                f"| {'calibration' if seen else 'fresh'} set | paraphrase hits | near-miss false hits | " + " | ".join(forms) + " | "
                + " | ".join(f"{k} (false hits)" for k in kinds) + " |",
                "|---|---|---|" + "---|" * (len(forms) + len(kinds))]
        for row, s in zip(vrows, sums):
            out.append(f"| {_stage2_label(row)} | {_f(s['paraphrase_hits'])} | {_f(s['near_miss_false_hits'])} | "
                       + " | ".join(_f(s["by_form"].get(k)) for k in forms) + " | "
                       + " | ".join(_f((s["by_kind"].get(k) or (None,))[0]) for k in kinds) + " |")
    return out


def write_docs(r: dict[str, Any]) -> None:
    rep, q = r["report"], r["qqp_test"] or {}
    v = r["verifier"]
    lines = [
        "<!-- cache_quality:start -->",
        "## Hit quality on sets written for this project",
        "",
        f"`python -m tests.bench.bench_cache_quality` ({machine()['date']}, {r['took_s']:.0f} s"
        + (", --quick: a third of the sets" if r["quick"] else "") + "): "
        f"{r['groups']} paraphrase groups (one stored prompt, 7 rewordings each) and {r['pairs']} near-miss pairs "
        "in `tests/bench/data/cache_quality/`, none of them used to train the verifier. One cache holds every "
        "stored prompt; each query goes through the exact fingerprint, cosine ≥ "
        f"{v['floor']} among the top {TOP_K}, stage 1 and its gate ({v['gate']}), one pair row, the guards and "
        "vetoes. A paraphrase hit must be served its own group's answer. Figures on the report part "
        f"({100 - CALIBRATION_SHARE} % of groups and pairs by a stable hash); the threshold column says where "
        "it comes from.",
        "",
        "| rule | threshold | paraphrase hits | near-miss false hits | of them in batch 2 | QQP test precision | "
        "QQP test recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, label, t in (("guards_shipped", "negation + quantity guards (before #20)", v["threshold"]),
                          ("vetoes_shipped", "+ vetoes", v["threshold"]),
                          ("shipped_shipped", "+ vetoes + same_request", v["threshold"]),
                          ("shipped_calibrated", "+ vetoes + same_request, calibrated threshold (**shipped**: "
                           "`verifier_threshold` in config/config.yaml)", r["calibrated_threshold"])):
        s = rep[key]
        qq = q.get(key, {})
        lines.append(f"| {label} | {t} | {_f(s['paraphrase_hits'])} | {_f(s['near_miss_false_hits'])} "
                     f"({s['near_misses']}) | {_f(s['batch2_false_hits'])} ({s['batch2']}) | "
                     f"{_f(qq.get('precision'), 3)} | {_f(qq.get('recall'), 3)} |")
    lines += _fresh_lines(r)
    s = rep["shipped_calibrated"]
    lines += [
        "",
        "Targets (issue #20): paraphrase hits ≥ 0.85; near-miss false hits ≤ 0.02 overall and ≤ 0.05 per kind; "
        "QQP held-out precision ≥ 0.90 at recall ≥ 0.60. The calibrated threshold is the lowest with near-miss "
        f"false hits ≤ {TARGET_FALSE_HITS} on the calibration part and QQP calibration-split precision ≥ "
        f"{TARGET_PRECISION} at the lower end of its one-sided 95 % Wilson interval (a margin: at its point value "
        "the rule once landed at 0.897 on the test split); batch 2 of the near misses was written after the "
        "vetoes were frozen.",
        "",
        "What each threshold trades (shipped rules): QQP on the calibration split, where the threshold is chosen, "
        "and on the test split; paraphrase hits and near-miss false hits on the report part (shown, not chosen on):",
        "",
        "| threshold | QQP calibration precision (95 % floor) / recall | QQP test precision / recall | "
        "paraphrase hits | near-miss false hits |",
        "|---|---|---|---|---|",
        *(f"| {c['threshold']} | {c['calibration']['precision']:.3f} ({c['calibration_floor']:.3f}) / "
          f"{c['calibration']['recall']:.3f} | {c['test']['precision']:.3f} / {c['test']['recall']:.3f} | "
          f"{_f(c.get('report_paraphrase_hits'), 3)} | {_f(c.get('report_near_miss_false_hits'), 3)} |"
          for c in r.get("qqp_curve") or []),
        "",
        f"{s['paraphrase_wrong_entry']} of the paraphrases were served another group's answer; "
        f"{s['exact_tier']} of the rewordings were caught by the normalized exact tier (they all change words, "
        "not just case or punctuation).",
        "",
        "Per form (paraphrase hits) and per kind (near-miss false hits), shipped rules and threshold:",
        "",
        "| form | " + " | ".join(s["by_form"]) + " |",
        "|---|" + "---|" * len(s["by_form"]),
        "| hits | " + " | ".join(_f(x) for x in s["by_form"].values()) + " |",
        "",
        "| kind | " + " | ".join(s["by_kind"]) + " |",
        "|---|" + "---|" * len(s["by_kind"]),
        "| false hits | " + " | ".join(f"{_f(x)} ({n})" for x, n in s["by_kind"].values()) + " |",
        "",
        f"What each rule earns (report part and QQP test split, at verifier.json's threshold {v['threshold']}): "
        "the change in served answers "
        "against the models with the negation and quantity guards alone (negative: refused).",
        "",
        "| rule | near misses served | paraphrase hits | QQP non-duplicates served | QQP duplicates served |",
        "|---|---|---|---|---|",
    ]
    for a in r["rules"]:
        lines.append(f"| {a['rule']} | {a['near_misses']:+d} | {a['paraphrases']:+d} | "
                     f"{a['qqp_non_duplicates']:+d} | {a['qqp_duplicates']:+d} |")
    lines += ["<!-- cache_quality:end -->", ""]
    section = "\n".join(lines)
    doc = DOCS / "cache.md"
    text = doc.read_text()
    if "<!-- cache_quality:start -->" in text:
        a = text.index("<!-- cache_quality:start -->")
        b = text.index("<!-- cache_quality:end -->") + len("<!-- cache_quality:end -->\n")
        text = text[:a] + section + text[b:]
    else:
        i = text.find("<!-- verifier-figures:start -->")
        text = (text[:i] + section + "\n" + text[i:]) if i >= 0 else text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)


if __name__ == "__main__":
    main()
