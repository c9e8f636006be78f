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
