"""PII and secrets on held-out message-style text: per-type precision/recall, secret P/R against code and logs full
of hashes and UUIDs, false-flag rates on benign questions and pasted documentation, and the cost of redaction +
restoration. Runs the shipped SignalEngine (model head + rules), as the router does.

    python -m tests.bench.bench_pii [--quick]

Writes docs/bench/pii.json and the PII section of docs/signals.md (between its markers; `make bench` runs this
step after the signals step, which rewrites that file).
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from typing import Any

from tests.helpers import write_section

from .common import DOCS, MODEL_DIR, ROOT, progress, save

DATA = ROOT / "tests" / "bench" / "data" / "pii"
START, END = "<!-- bench_pii:start -->", "<!-- bench_pii:end -->"
MARK = re.compile(r"\{\{([A-Z_]+)\|(.*?)\}\}", re.S)
SECRET_TYPES = ("SECRET", "PASSWORD")
TARGETS = {"per_type": 0.90, "message_recall": 0.93, "secret": 0.95, "benign": 0.03, "docs": 0.05, "redact_ms": 1.0}


def _blocks(name: str) -> list[str]:
    text = "\n".join(ln for ln in (DATA / name).read_text().splitlines() if not ln.startswith("#"))
    return [b.strip("\n") for b in re.split(r"^---$", text, flags=re.M) if b.strip()]


def parse(marked: str) -> tuple[str, list[tuple[int, int, str]]]:
    """Text without the markup, and its gold spans."""
    out, spans, last = [], [], 0
    pos = 0
    for m in MARK.finditer(marked):
        out.append(marked[last:m.start()])
        pos += m.start() - last
        spans.append((pos, pos + len(m.group(2)), m.group(1)))
        out.append(m.group(2))
        pos += len(m.group(2))
        last = m.end()
    out.append(marked[last:])
    return "".join(out), spans


def _iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    inter = max(0, min(a[1], b[1]) - max(a[0], b[0]))
    return inter / max(1, max(a[1], b[1]) - min(a[0], b[0]))


def score(gold: list[list[tuple]], pred: list[list[tuple]], types: tuple[str, ...] | None = None) -> dict:
    """Per-type and overall P/R: same type and char IoU >= 0.5 (one prediction matches one gold span)."""
    tp: dict[str, int] = {}
    fp: dict[str, int] = {}
    fn: dict[str, int] = {}
    misses: list[str] = []
    for g, p in zip(gold, pred):
        p = [x for x in p if types is None or x[2] in types]
        used: set[int] = set()
        for gs in g:
            j = next((j for j, ps in enumerate(p) if j not in used and ps[2] == gs[2] and _iou(gs, ps) >= 0.5), None)
            if j is None:
                fn[gs[2]] = fn.get(gs[2], 0) + 1
            else:
                used.add(j)
                tp[gs[2]] = tp.get(gs[2], 0) + 1
        for j, ps in enumerate(p):
            if j not in used:
                fp[ps[2]] = fp.get(ps[2], 0) + 1
    rows = {}
    for t in sorted(set(tp) | set(fp) | set(fn)):
        a, b, c = tp.get(t, 0), fp.get(t, 0), fn.get(t, 0)
        rows[t] = {"precision": round(a / (a + b), 4) if a + b else None,
                   "recall": round(a / (a + c), 4) if a + c else None, "n": a + c, "false_pos": b}
    a, b, c = sum(tp.values()), sum(fp.values()), sum(fn.values())
    rows["ALL"] = {"precision": round(a / max(1, a + b), 4), "recall": round(a / max(1, a + c), 4), "n": a + c,
                   "false_pos": b}
    return rows


def _misses(texts, gold, pred) -> list[str]:
    out = []
    for text, g, p in zip(texts, gold, pred):
        for s, e, t in g:
            if not any(ps[2] == t and _iou((s, e), ps) >= 0.5 for ps in p):
                out.append(f"missed {t} {text[s:e]!r}")
        for s, e, t in p:
            if not any(gs[2] == t and _iou((s, e), gs) >= 0.5 for gs in g):
                out.append(f"extra {t} {text[s:e]!r}")
    return out


def redaction_cost(engine: Any, texts: list[str], rounds: int) -> dict:
    """Milliseconds to redact one request and restore its answer (the signal pass is not included: the router
    runs it anyway), over the message set."""
    from router_extproc.pii.redact import SSERestorer, redact_request, restore_completion
    from router_extproc.pii.taxonomy import ALL_TYPES
    import json

    types = frozenset(ALL_TYPES)
    sigs = engine.analyze_batch(texts)
    times = []
    for _ in range(rounds):
        for text, sig in zip(texts, sigs):
            body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
            known = [(e.type, text[e.start:e.end]) for e in sig.pii]
            t0 = time.perf_counter()
            out, red = redact_request(body, types, known)
            answer = "Sure. " + out["messages"][0]["content"]
            restore_completion(json.dumps({"choices": [{"index": 0, "message": {"content": answer}}]}).encode(), red)
            r = SSERestorer(red)
            for w in answer.split(" "):
                r.feed(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": w + " "}}]}).encode()
                       + b"\n\n")
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 4), "p90_ms": round(sorted(times)[int(len(times) * 0.9)], 4),
            "n": len(times), "what": "redact_request + JSON restore + SSE restore (one event per word)"}


SPLITS: dict[str, tuple[str | None, ...]] = {
    # written after the rules were frozen: the headline message and benign figures. Its code and docs errors
    # prompted fixes (CLI passwords, URLs with an empty user, base64-shaped model spans), so for secrets and
    # documentation the headline is blind2, written after those fixes and never used to change anything
    "blind": ("messages_blind.txt", "code_logs_blind.txt", "benign_blind.txt", "docs_blind.txt"),
    "blind2": (None, "code_logs_blind2.txt", None, "docs_blind2.txt"),
    # written first; the rules were adjusted after a run on it, so its figures are optimistic
    "dev": ("messages.txt", "code_logs.txt", "benign_questions.txt", "docs.txt"),
}


def evaluate(predict, files: tuple[str | None, ...]) -> dict:
    res: dict[str, Any] = {}
    if files[0] is not None:
        msgs = [parse(b) for b in _blocks(files[0])]
        texts, gold = [t for t, _ in msgs], [g for _, g in msgs]
        pred = predict(texts)
        res["messages"] = score(gold, pred)
        res["messages_n"] = len(texts)
        res["message_errors"] = _misses(texts, gold, pred)
    assert files[1] is not None
    code = [parse(b) for b in _blocks(files[1])]
    ctexts, cgold = [t for t, _ in code], [g for _, g in code]
    cpred = predict(ctexts)
    res["code_n"] = len(ctexts)
    res["secrets"] = score(cgold, cpred, SECRET_TYPES)
    res["secret_errors"] = _misses(ctexts, cgold, [[p for p in ps if p[2] in SECRET_TYPES] for ps in cpred])
    for name, file in (("benign", files[2]), ("docs", files[3])):
        if file is None:
            continue
        items = ([ln for ln in (DATA / file).read_text().splitlines() if ln and not ln.startswith("#")]
                 if name == "benign" else _blocks(file))
        flagged = [[(x[2], t[x[0]:x[1]]) for x in ps] for t, ps in zip(items, predict(items)) if ps]
        res[f"{name}_false_flag_rate"] = round(len(flagged) / len(items), 4)
        res[f"{name}_n"] = len(items)
        res[f"{name}_flagged"] = [str(f) for f in flagged]
    return res


def run(quick: bool) -> dict:
    from router_extproc.signals import SignalEngine

    engine = SignalEngine(MODEL_DIR, device="cpu", max_wait_ms=0)

    def predict(texts: list[str]) -> list[list[tuple]]:
        return [[(e.start, e.end, e.type) for e in s.pii] for s in engine.analyze_batch(texts)]

    res: dict[str, Any] = {"targets": TARGETS}
    for split, files in SPLITS.items():
        res[split] = evaluate(predict, files)
    texts = [parse(b)[0] for f in ("messages_blind.txt", "messages.txt") for b in _blocks(f)]
    res["redaction"] = redaction_cost(engine, texts, 2 if quick else 10)
    res["rules"] = rules_cost(texts, 5 if quick else 50)
    return res


def rules_cost(texts: list[str], rounds: int) -> dict:
    """What the rules add to the signal pass: `combine` with no model entities, per message."""
    from router_extproc.signals.pii import combine

    times = []
    for _ in range(rounds):
        for t in texts:
            t0 = time.perf_counter()
            combine(t, [])
            times.append((time.perf_counter() - t0) * 1000)
    return {"p50_ms": round(statistics.median(times), 4), "n": len(times),
            "mean_chars": round(sum(map(len, texts)) / len(texts))}


RETRAIN = (
    "What the rules cannot do and the PII head would need a retrain for (not done: the head is unchanged, "
    "config.PII_TYPES stays its eight training labels): names in running text without a greeting, title or "
    "'my name is' (the head finds most, the rules only the framed ones); addresses; and the head's own false "
    "positives seen here (STREET_ADDRESS on a drug dose and on base64, PERSON on 'Re:' and on a novel's title "
    "character). A retrain needs training text from more than one source and style (correspondence, tickets, "
    "clinical notes, chat, logs, code and documentation as negatives), single given names and lower-case names, "
    "and evaluation on a source held out from training, as here. New labels (AGE, DATE_OF_BIRTH, USERNAME, ...) "
    "would change models/data.py's tag set and so the model recipe.")


def _fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def _table(rows: dict) -> list[str]:
    out = ["| type | precision | recall | n |", "|---|---|---|---|"]
    return out + [f"| {k} | {_fmt(v['precision'])} | {_fmt(v['recall'])} | {v['n']} |" for k, v in rows.items()]


def _below(rows: dict, target: float) -> list[str]:
    return [k for k, v in rows.items() if k != "ALL" and any(x is not None and x < target
                                                             for x in (v["precision"], v["recall"]))]


def section(res: dict) -> str:
    t, b, d, b2 = res["targets"], res["blind"], res["dev"], res["blind2"]
    m, s, s2 = b["messages"]["ALL"], b["secrets"]["ALL"], b2["secrets"]["ALL"]
    below = _below(b["messages"], t["per_type"])
    return "\n".join([
        START,
        "## PII and secrets on held-out message text (bench_pii.py)",
        "",
        "Model head + rules as the router runs them, on text written for this evaluation (tests/bench/data/pii/), "
        "never used to train the head (presidio-evaluator templates + faker). Splits: **dev**, written first and "
        "used to fix the rules after a first run (optimistic); **blind**, written after the rules were frozen (the "
        "message and benign-question figures below); its code and documentation errors then prompted three fixes "
        "(passwords on command lines, URLs with an empty user, base64-shaped model spans), so for secrets and "
        "documentation the headline is **blind2**, written after those fixes and never used to change anything. "
        "Blind: "
        f"{b['messages_n']} messages in the style of customer and health correspondence, tickets and chat; "
        f"{b['code_n']} code, config and log snippets with secrets beside git SHAs, digests, UUIDs and base64; "
        f"{b['benign_n']} benign questions; {b['docs_n']} passages of pasted documentation. Match: same type and "
        "char IoU >= 0.5. Per-type n is small: one miss moves a type by 0.1-0.5.",
        "",
        f"Blind messages: overall precision {m['precision']} / recall {m['recall']} (target recall >= "
        f"{t['message_recall']}); per type (target P and R >= {t['per_type']}):",
        "", *_table(b["messages"]), "",
        f"Types below target on the blind split: {', '.join(below) if below else 'none'}.",
        "",
        f"Secrets in code and logs, blind2 ({b2['code_n']} snippets): precision {s2['precision']} / recall "
        f"{s2['recall']} (target >= {t['secret']} both):",
        "", *_table(b2["secrets"]), "",
        f"(blind, {b['code_n']} snippets, now after its fixes: precision {s['precision']} / recall {s['recall']}.)",
        "",
        f"False flags: {b['benign_false_flag_rate']} of {b['benign_n']} blind benign questions (target <= "
        f"{t['benign']}); {b2['docs_false_flag_rate']} of {b2['docs_n']} blind2 documentation passages (target <= "
        f"{t['docs']}; blind, after its fixes: {b['docs_false_flag_rate']} of {b['docs_n']}).",
        "",
        f"Dev split (optimistic): messages P/R {d['messages']['ALL']['precision']} / "
        f"{d['messages']['ALL']['recall']} (n={d['messages']['ALL']['n']}), secrets {d['secrets']['ALL']['precision']}"
        f" / {d['secrets']['ALL']['recall']}, false flags {d['benign_false_flag_rate']} of {d['benign_n']} questions"
        f" and {d['docs_false_flag_rate']} of {d['docs_n']} documentation passages.",
        "",
        f"Redaction + restoration: p50 {res['redaction']['p50_ms']} ms, p90 {res['redaction']['p90_ms']} ms per "
        f"request ({res['redaction']['what']}; n={res['redaction']['n']}; target p50 <= {t['redact_ms']} ms). "
        f"The rules add p50 {res['rules']['p50_ms']} ms to the signal pass per message (mean "
        f"{res['rules']['mean_chars']} characters; n={res['rules']['n']}).",
        "",
        "Blind errors: " + ("; ".join(b["message_errors"] + b["secret_errors"]) or "none") + ".",
        "",
        "Blind2 errors: " + ("; ".join(b2["secret_errors"]) or "none") + "; flagged documentation: "
        + ("; ".join(b2["docs_flagged"]) or "none") + ".",
        "",
        "Blind flagged benign questions: " + ("; ".join(b["benign_flagged"]) or "none")
        + ". Blind flagged documentation: " + ("; ".join(b["docs_flagged"]) or "none") + ".",
        "",
        RETRAIN,
        END,
    ])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-doc", action="store_true")
    a = ap.parse_args(argv)
    if not (MODEL_DIR / "encoder.onnx").exists():
        progress("models not built: skipping")
        return {}
    res = run(a.quick)
    save("pii", res)
    if not a.no_doc:
        write_section(DOCS / "signals.md", START, END, section(res))
    b, b2 = res["blind"], res["blind2"]
    progress(f"pii (blind): messages {b['messages']['ALL']}, secrets {b['secrets']['ALL']}, benign "
             f"{b['benign_false_flag_rate']}, docs {b['docs_false_flag_rate']}; blind2 secrets {b2['secrets']['ALL']},"
             f" docs {b2['docs_false_flag_rate']}; redaction {res['redaction']}")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
