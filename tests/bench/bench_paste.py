"""Calibration study for the paste split (signals/inputs.split_paste, issue #19): benign RAG and code prompts and
attacks, each read with the split and without it, through the router's path (inputs.plan → engine with the
config's budget → decide).

    python -m tests.bench.bench_paste [--n 40] [--json out.json]

Sources, none of them an evaluation source of tests/bench/bench_traffic.py (which pastes the standard library's
pydoc text and functions) nor a training source of the pasted shapes (models/traffic.py reads sympy, networkx,
pandas, matplotlib, jinja2, fsspec, faker, tqdm, pygments, httpx, pydantic, click, yaml and onnx): the pydoc text
and functions of other installed third-party packages (CAL_PACKAGES), wrapped in requests written here
(WRAPS, ASKS). Attacks: the jailbreak corpora's *test* split (models/data.load_jailbreak; the heads trained on
their train split), bare, and with a benign paste beside the attack ("around a paste"), so the figures say whether
the split moves an attack in the user's own words out of the jailbreak guard. This is where the split's rules
were chosen; bench_traffic.py reports them on its own sets.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import pydoc
import random
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from router_extproc.config import load_config  # noqa: E402
from router_extproc.decision import decide  # noqa: E402
from router_extproc.openai import parse_chat_request  # noqa: E402
from router_extproc.signals.inputs import plan, split_paste  # noqa: E402
from router_extproc.thresholds import Thresholds, resolve  # noqa: E402
from tests.bench.bench_traffic import code_snippets  # noqa: E402

CAL_PACKAGES = ("requests", "dateutil.parser", "dateutil.rrule", "pyparsing", "anyio", "cachetools", "sortedcontainers",
                "packaging.version", "packaging.specifiers", "filelock", "grpc", "google.protobuf.json_format",
                "pymilvus", "hypothesis.strategies", "prometheus_client", "huggingface_hub.hf_api", "pyarrow.csv",
                "opentelemetry.trace", "cachetools.func", "requests.sessions")
DOC_TOKENS = (500, 1000, 2000)
ASKS = ("what is the simplest way to call this?", "Give me an overview of this API, please.",
        "which parameters are required here?", "Does this support timeouts? Answer briefly.",
        "Explain it like I'm new to Python.", "Turn this into a cheat sheet.")
CODE_ASKS = ("Any bugs in here?", "Please simplify this code.", "Document this function for me.",
             "How would I unit test this?", "What is the time complexity of this?", "Port this to Go.")
# written for this study: unlike bench_traffic's ("Documentation: ... Question: ...") and models/traffic.py's
WRAPS = ("Context:\n{doc}\n\nQuestion: {ask}", "I pasted the docs below.\n\n```\n{doc}\n```\n\n{ask}",
         "Here is the reference page:\n\n{doc}\n\n{ask}", "{ask}\n\n<docs>\n{doc}\n</docs>",
         "Read the documentation excerpt and answer.\n---\n{doc}\n---\nTask: {ask}", "{doc}\n\n{ask}",
         "Source text: {flat}\n\nMy question: {ask}")
CODE_WRAPS = ("{ask}\n\n```python\n{src}\n```", "```\n{src}\n```\n\n{ask}", "{ask}\n\n{src}",
              "Here is my code:\n\n{src}\n\n{ask}")


def _h(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)


def docs(tokenizer) -> list[tuple[str, int, str]]:
    out = []
    for m in CAL_PACKAGES:
        try:
            text = pydoc.render_doc(importlib.import_module(m), renderer=pydoc.plaintext)
        except Exception:   # noqa: BLE001 - a package missing here is skipped
            continue
        offs = tokenizer.encode(text, add_special_tokens=False).offsets
        for n in DOC_TOKENS:
            if len(offs) >= n:
                cut = text.rfind("\n", 0, offs[n - 1][1])
                out.append((m, n, text[:cut if cut > 0 else offs[n - 1][1]].rstrip()))
    return out


def functions(limit: int) -> list[tuple[str, str]]:
    """Public functions of the calibration packages (bench_traffic's code sample uses the standard library's)."""
    return code_snippets(limit, CAL_PACKAGES, private="_")


def attacks(n: int) -> list[str]:
    from models import data as D

    items = [it.text for it in D.load_jailbreak([]) if it.split == "test" and it.label == 1 and len(it.text) > 40]
    items = sorted(set(items), key=lambda t: _h("atk:" + t))
    return items[:n]


def cases(tokenizer, n: int) -> list[dict]:
    rng = random.Random(19)
    out = []
    ds = docs(tokenizer)
    for m, k, doc in ds:
        w = WRAPS[_h(f"w:{m}:{k}") % len(WRAPS)]
        ask = ASKS[_h(f"a:{m}:{k}") % len(ASKS)]
        out.append({"shape": f"benign RAG, user turn ({k} tok)", "kind": "benign",
                    "text": w.format(doc=doc, ask=ask, flat=" ".join(doc.split()))})
    for name, src in functions(n):
        w = CODE_WRAPS[_h("cw:" + name) % len(CODE_WRAPS)]
        out.append({"shape": "benign code, user turn", "kind": "benign",
                    "text": w.format(src=src, ask=CODE_ASKS[_h("ca:" + name) % len(CODE_ASKS)])})
    short = [d for d in ds if d[1] == 500]
    for i, a in enumerate(attacks(4 * n)):
        out.append({"shape": "attack: bare", "kind": "attack", "text": a})
        if i < n:
            m, _, doc = rng.choice(short)
            w = ("{a}\n\nContext:\n{doc}", "Here is the article:\n\n{doc}\n\n{a}", "{a}\n\n```\n{doc}\n```")[i % 3]
            out.append({"shape": "attack: own words around a paste", "kind": "attack", "text": w.format(a=a, doc=doc)})
    return out


def measure(cs: list[dict], eng, cfg, thr: float) -> list[dict]:
    rows = []
    for split in (False, True):
        rule = replace(cfg.signals.inputs, split_pastes=split)
        for c in cs:
            r = parse_chat_request(json.dumps({"model": "auto", "messages": [
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": c["text"]}]}).encode())
            sg = eng.analyze_requests([(plan(r.segments(), rule), rule.max_tokens_read)])[0]
            d = decide(cfg, r, sg, thresholds=Thresholds(jailbreak=thr))
            rows.append({**c, "text": None, "split": split, "jailbreak": sg.jailbreak, "injection": sg.injection,
                         "blocked": d.blocked == "jailbreak", "flagged": bool(d.injection),
                         "cut": bool(split_paste(c["text"]))})
    return rows


def summary(rows: list[dict]) -> list[dict]:
    out = []
    for shape in dict.fromkeys(r["shape"] for r in rows):
        a = [r for r in rows if r["shape"] == shape and not r["split"]]
        b = [r for r in rows if r["shape"] == shape and r["split"]]
        rate = lambda xs: round(sum(xs) / len(xs), 4)  # noqa: E731
        out.append({"shape": shape, "n": len(a), "split": rate([r["cut"] for r in b]),
                    "blocked_before": rate([r["blocked"] for r in a]), "blocked_after": rate([r["blocked"] for r in b]),
                    "flagged_after": rate([r["flagged"] for r in b]),
                    "caught_after": rate([r["blocked"] or r["flagged"] for r in b])})
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    from router_extproc.signals import SignalEngine
    from tests.bench.common import MODEL_DIR, progress

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    cfg = load_config(str(ROOT / "config" / "config.yaml"))
    eng = SignalEngine(MODEL_DIR, device="cpu", threads=2)
    thr = resolve(cfg, json.loads((MODEL_DIR / "labels.json").read_text())).jailbreak
    cs = cases(eng.tokenizer, a.n)
    progress(f"paste study: {len(cs)} cases, threshold {thr:.4f}")
    rows = measure(cs, eng, cfg, thr)
    if a.json:
        Path(a.json).write_text(json.dumps(rows))
    table = summary(rows)
    for r in table:
        progress(json.dumps(r))
    return table


if __name__ == "__main__":
    main(sys.argv[1:])
