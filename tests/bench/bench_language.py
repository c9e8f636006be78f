"""The language signal's cut-off (`thresholds.LANGUAGE_CONFIDENCE`): calibrated on one probe set, reported on another.

    python -m tests.bench.bench_language [--quick] [--no-doc]

tests/bench/data/language/calibration.jsonl and held_out.jsonl were written separately, with different texts: 8
languages (en fr de es it pt nl ru) x 12 prompts each, 4 short (1-3 words), 4 medium (4-8), 4 long (9-25), and 24
texts without a language (code, numbers, URLs, emoji), whose right answer is "not sure". py3langid's normalised
probability for its best label is compared with each cut-off; under it (or for `zxx`) the signal says not sure.
The cost of a cut-off: a wrong language counts twice, a "not sure" on a written prompt once (a wrong language sends
the user to a desk that does not speak theirs; not sure falls to the default decision). The cut-off with the lowest
calibration cost is chosen (the middle of the lowest range); the figures are the held-out set's.
Writes docs/routing.md's language section.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from router_extproc.language import LanguageDetector  # noqa: E402
from router_extproc.thresholds import LANGUAGE_CONFIDENCE  # noqa: E402
from tests.bench.common import DOCS, documented_main  # noqa: E402

START, END = "<!-- language:start -->", "<!-- language:end -->"
DATA = ROOT / "tests" / "bench" / "data" / "language"
GRID = [round(i / 100, 2) for i in range(0, 100)]
WRONG_COST = 2


def read(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def answer(raw: tuple[str, float], cut: float) -> str | None:
    code, p = raw
    return code if p >= cut and code != "zxx" else None


def score(rows: list[dict], raws: list[tuple[str, float]], cut: float) -> dict:
    pred = [answer(r, cut) for r in raws]
    by_len: dict[str, list[bool]] = defaultdict(list)
    wrong = unsure = 0
    for row, p in zip(rows, pred):
        by_len[row["length"]].append(p == row["language"])
        if p is not None and p != row["language"]:
            wrong += 1
        elif p is None and row["language"] is not None:
            unsure += 1
    written = sum(r["language"] is not None for r in rows)
    right = sum(p == r["language"] for r, p in zip(rows, pred))
    return {"cut": cut, "n": len(rows), "accuracy": round(right / len(rows), 3),
            "wrong_language": round(wrong / len(rows), 3), "not_sure_on_written": round(unsure / written, 3),
            "cost": WRONG_COST * wrong + unsure,
            "accuracy_by_length": {k: round(sum(v) / len(v), 3) for k, v in sorted(by_len.items())},
            "errors": [{"text": r["text"], "label": r["language"], "got": raw[0], "p": round(raw[1], 3)}
                       for r, raw, p in zip(rows, raws, pred) if p != r["language"]]}


def run(quick: bool) -> dict:
    det = LanguageDetector(min_confidence=0.0)
    cal, held = read("calibration.jsonl"), read("held_out.jsonl")
    raw = {n: [(d.code or "zxx", d.confidence) for d in (det.detect(r["text"]) for r in rows)]
           for n, rows in (("calibration", cal), ("held_out", held))}
    grid = [score(cal, raw["calibration"], c) for c in GRID]
    low = min(s["cost"] for s in grid)
    plateau = [s["cut"] for s in grid if s["cost"] == low]
    cut = plateau[len(plateau) // 2]
    return {"date": time.strftime("%Y-%m-%d"), "quick": quick, "calibrated": cut, "plateau": [plateau[0], plateau[-1]],
            "shipped": LANGUAGE_CONFIDENCE,
            "calibration": score(cal, raw["calibration"], cut),
            "held_out": score(held, raw["held_out"], cut),
            "held_out_previous": score(held, raw["held_out"], 0.2),
            "held_out_no_cut": score(held, raw["held_out"], 0.0)}


def section(res: dict) -> str:
    c, h, prev, none = res["calibration"], res["held_out"], res["held_out_previous"], res["held_out_no_cut"]

    def row(label: str, f) -> str:
        return f"| {label} | {f(c)} | **{f(h)}** | {f(prev)} | {f(none)} |"

    return "\n".join([
        START, "## Language signal: the cut-off (bench_language.py)", "",
        f"_Measured {res['date']} by `python -m tests.bench.bench_language`._", "",
        f"Calibrated on `tests/bench/data/language/calibration.jsonl` ({c['n']} texts: 8 languages x 12 prompts of "
        "1-3, 4-8 and 9-25 words, and 24 without a language): cut-off **" + str(res["calibrated"]) + "** (lowest cost, "
        f"a wrong language counting twice a not-sure; the middle of {res['plateau'][0]}–{res['plateau'][1]}); "
        f"shipped `thresholds.LANGUAGE_CONFIDENCE` = {res['shipped']}. Reported on `held_out.jsonl`, written "
        f"separately ({h['n']} texts):", "",
        f"| | calibration at {c['cut']} | held_out at {h['cut']} | held_out at 0.2 (before) | held_out, no cut-off |",
        "|---|---|---|---|---|",
        row("right (the language, or not sure for code/numbers)", lambda s: s["accuracy"]),
        row("a wrong language", lambda s: s["wrong_language"]),
        row("not sure on a written prompt", lambda s: s["not_sure_on_written"]),
        *[row(f"right, {k}", lambda s, k=k: s["accuracy_by_length"][k])
          for k in ("short", "medium", "long", "none")],
        "", "Held-out misses at the shipped cut-off: " + "; ".join(
            f"\"{e['text']}\" ({e['label'] or 'none'}: "
            + (f"{e['got']} at {e['p']})" if e["p"] >= h["cut"] and e["got"] != "zxx"
               else f"not sure, {e['got']} {e['p']})")
            for e in h["errors"][:12])
        + (f"; and {len(h['errors']) - 12} more" if len(h["errors"]) > 12 else "") + ".",
        END])


def main(argv: list[str] | None = None) -> dict:
    return documented_main(argv, name="language", run=run, doc=DOCS / "routing.md", start=START, end=END,
                           section=section)


if __name__ == "__main__":
    main()
