"""The traffic-shape benchmark's sets (tests/bench/bench_traffic.py): labelled with the router's categories, every
case a valid chat request, and one split per underlying item, so a threshold chosen on 'cal' never saw 'test'."""
from __future__ import annotations

import json

from router_extproc.config import CATEGORIES
from router_extproc.openai import parse_chat_request
from tests.bench import bench_traffic as bt


class _Enc:
    def __init__(self, text: str) -> None:
        words, at = [], 0
        for w in text.split():
            at = text.index(w, at)
            words.append((at, at + len(w)))
            at += len(w)
        self.offsets = words


class WordTokenizer:
    """One token a word: enough for cutting documents to a length."""

    def encode(self, text: str, add_special_tokens: bool = False) -> _Enc:
        return _Enc(text)


def test_questions_carry_a_router_category():
    qs = bt._jsonl("questions.jsonl")
    assert {q["category"] for q in qs} == set(CATEGORIES)
    assert len({q["text"] for q in qs}) == len(qs)


def test_every_case_is_a_chat_request_the_router_accepts():
    cases = bt.build_cases(WordTokenizer(), quick=True)
    kinds = {c.kind for c in cases}
    assert kinds == {"benign", "attack", "injection"}
    for c in cases:
        parse_chat_request(json.dumps({"model": "auto", "messages": c.messages}).encode())


def test_an_item_keeps_its_split_in_every_shape():
    cases = bt.build_cases(WordTokenizer(), quick=True)
    by_attack: dict[str, set[str]] = {}
    for c in cases:
        if c.kind == "attack" and c.shape.startswith("attack"):
            by_attack.setdefault(c.messages[-1]["content"], set()).add(c.split)
    assert by_attack and all(len(s) == 1 for s in by_attack.values())
    assert {c.split for c in cases} == {"cal", "test"}


def test_injected_payload_sits_inside_the_document():
    doc = "first line\nsecond line\nthird line\nfourth line"
    out = bt._insert_middle(doc, "PAYLOAD")
    assert out.startswith("first line") and out.endswith("fourth line") and "\n\nPAYLOAD\n\n" in out


def test_the_paste_split_table_reads_each_cut_case_whole_and_split():
    """A case whose user turn split_paste cuts runs again with the split off; a case it never cuts is left out."""
    import numpy as np

    from router_extproc.config import load_config
    from router_extproc.signals.types import Signals

    class Engine:   # scores "word" as an attack wherever a guard reads it
        def analyze_requests(self, jobs):
            def score(reads, guard):
                return max((0.9 if "word" in r.text else 0.1 for r in reads if r.guard == guard), default=0.0)
            return [Signals(embedding=np.ones(4, np.float32) / 2, category="other", category_confidence=0.9,
                            complexity=0.1, jailbreak=score(reads, "jailbreak"), injection=score(reads, "injection"),
                            pii=(), tokens=1) for reads, _ in jobs]

    cfg = load_config(str(bt.ROOT / "config" / "config.yaml"))
    cases = [bt.Case("RAG", "benign", [{"role": "user", "content": "Context:\n" + "word " * 200 + "\n\nQuestion: why?"}],
                     "raguser:m:1"),
             bt.Case("bare question", "benign", [{"role": "user", "content": "Why is the sky blue?"}], "q:Why")]
    rows = bt.run(cases, Engine(), cfg, 0.5)
    assert bt.split_effect(cases, rows, Engine(), cfg, 0.5) == [
        {"shape": "RAG", "n": 1, "cut": 1.0, "whole_blocked": 1.0, "whole_flagged": 0.0, "split_blocked": 0.0,
         "split_flagged": 1.0}]


def test_set_2_reads_the_fresh_files_and_modules_none_of_set_1_uses():
    """Every row of set 2 is fresh: its hand-written files are the *_2 counterparts (the in-the-wild attacks have
    none and are shared), and its pasted documentation and code come from other standard-library modules."""
    assert bt._set_file("questions", 2) == "questions_2.jsonl"
    assert bt._set_file("injections", 1) == "injections.jsonl"
    assert bt._set_file("attacks", 2) == "attacks.jsonl"
    _, docs2, code2 = bt.SETS[2]
    set1 = set(bt.DOC_MODULES) | set(bt.CODE_MODULES)
    assert not (set(docs2) | set(code2)) & set1
    assert not set(docs2) & set(code2)
    assert len(docs2) == len(bt.DOC_MODULES) and len(code2) == len(bt.CODE_MODULES)


def test_set_3_reads_its_own_files_and_modules_none_of_sets_1_and_2_use():
    """Set 3 (the decision after set 2 was seen) is fresh against both earlier sets: its own *_3 files, and
    documentation and code from standard-library modules neither set 1 nor set 2 reads."""
    assert bt._set_file("questions", 3) == "questions_3.jsonl"
    assert bt._set_file("injections", 3) == "injections_3.jsonl"
    assert bt._set_file("attacks", 3) == "attacks.jsonl"
    _, docs3, code3 = bt.SETS[3]
    earlier = {m for n in (1, 2) for m in (*bt.SETS[n][1], *bt.SETS[n][2])}
    assert not (set(docs3) | set(code3)) & earlier
    assert not set(docs3) & set(code3)
    assert len(set(docs3)) == len(bt.DOC_MODULES) and len(set(code3)) == len(bt.CODE_MODULES)


def test_set_3_pasted_pages_print_no_memory_address():
    """A pydoc page that prints a default argument's address (smtplib's and poplib's "<object object at 0x...>",
    pasted by set 2) changes with every process, and so do the scores of the cases that paste it."""
    import importlib
    import pydoc
    import re

    for m in bt.SETS[3][1]:
        text = pydoc.render_doc(importlib.import_module(m), renderer=pydoc.plaintext)
        assert not re.search(r"0x[0-9a-fA-F]{6,}", text), m


def test_set_4_reads_its_own_files_and_modules_none_of_sets_1_to_3_use():
    """Set 4 (the decision under the Holm rule) is fresh against sets 1-3: its own *_4 files, and documentation and
    code from standard-library modules no earlier set reads."""
    assert bt._set_file("questions", 4) == "questions_4.jsonl"
    assert bt._set_file("tool_results", 4) == "tool_results_4.jsonl"
    assert bt._set_file("attacks", 4) == "attacks.jsonl"
    _, docs4, code4 = bt.SETS[4]
    earlier = {m for n in (1, 2, 3) for m in (*bt.SETS[n][1], *bt.SETS[n][2])}
    assert not (set(docs4) | set(code4)) & earlier
    assert not set(docs4) & set(code4)
    assert len(set(docs4)) == len(bt.DOC_MODULES) and len(set(code4)) == len(bt.CODE_MODULES)


def test_set_4_pasted_pages_and_code_render_identically_in_every_process():
    """Each set-4 page prints no address and renders byte-identical in two processes with different hash seeds (a
    set's repr prints in hash order); every module pastes at least one 500-token page, and the code sample fills."""
    import subprocess
    import sys

    code = ("import hashlib, importlib, pydoc, re, sys, warnings; warnings.simplefilter('ignore'); "
            "from tests.bench.bench_traffic import SETS, code_snippets; "
            "pages = [pydoc.render_doc(importlib.import_module(m), renderer=pydoc.plaintext) for m in SETS[4][1]]; "
            "assert not [m for m, t in zip(SETS[4][1], pages) if re.search(r'0x[0-9a-fA-F]{6,}', t)]; "
            "print(hashlib.sha1(repr((pages, code_snippets(60, SETS[4][2]))).encode()).hexdigest())")
    root = bt.ROOT
    runs = [subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}).stdout
            for seed in ("1", "2")]
    assert runs[0] == runs[1] and len(runs[0].strip()) == 40


def test_set_4_modules_paste_pages_and_fill_the_code_sample():
    import warnings

    _, docs4, code4 = bt.SETS[4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pages = bt.documents(WordTokenizer(), docs4)   # a word a token: fewer than the model's tokens give
        snippets = bt.code_snippets(60, code4)
    assert len({m for m, _, _ in pages}) >= 20 and len(pages) >= 30   # with the model's tokenizer: 66 of 30 modules
    assert len(snippets) == 60
