"""What the custom-route matcher reads from the user's words (routes.py): typos repaired against the examples'
words and read by the encoder once more, and a raised bar for a request about someone else (another company, a
third party, a general question) that does not address the operator."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from router_extproc import routes as RT
from router_extproc.decision import decide
from router_extproc.pipeline import Respond, Router
from router_extproc.thresholds import ROUTE_OTHER_PENALTY, resolve

from ..fakes import FakeCache, FakeSignals, embed, exchange
from .test_routes import Sig, cfg
from .test_rules import req

EXAMPLES = ["How do I return an item?", "I was charged twice for the same order", "Where is my invoice?",
            "My password reset email never arrives", "The app crashes when I open it"]
# the encoder's whole words, as routes.encoder_words reads them from its WordPiece vocabulary
ENCODER = frozenset("how do i my the a is it was for an item where when to they small sneakers shoes box "
                    "netflix charged me after cancelled what should refund can you please".split())


@pytest.fixture(scope="module")
def speller() -> RT.Speller:
    return RT.Speller(EXAMPLES, ENCODER)


@pytest.mark.parametrize("typo, fixed", [
    ("how do i retrun my sneakers", "how do i return my sneakers"),        # a transposition is one edit
    ("where is my invocie", "where is my invoice"),
    ("i was chagred twice", "i was charged twice"),
    ("my pasword reset email", "my password reset email"),               # a missing letter
    ("the app crashed when i opened it", None),                            # inflections, not typos
    ("i was chagred twise", "i was charged twice"),     # half the words misspelt, all of them repairable
    ("my pasword dosnt work", "my password doesn't work"),   # a contraction without its apostrophe
    ("the app wont open", "the app won't open"),        # not "want": the contraction is restored, not guessed
])
def test_a_misspelt_word_is_repaired_into_the_examples_word(speller, typo, fixed):
    assert speller.repair(typo) == fixed


@pytest.mark.parametrize("text", [
    "where is my item",                                   # nothing misspelt
    "Does SAML work",                                     # acronyms and brands are not typos
    "dor",                                                # too short to repair with confidence
    "Je voudrais retourner cette veste, elle est trop grande",   # another language: left alone, not garbled
    "x" * (RT.REPAIR_MAX_CHARS + 1),                      # a long turn is not read
])
def test_what_is_not_a_typo_is_left_alone(speller, text):
    assert speller.repair(text) is None


def test_the_repair_never_changes_the_first_letter_and_prefers_the_closest_then_the_commonest():
    sp = RT.Speller(["return it", "return label", "retain"], frozenset())
    assert sp.fix("retrun") == "return"      # one edit from "return", two from "retain"
    assert sp.fix("eturn") is None           # "return" is one edit away, but not from its first letter


@pytest.mark.parametrize("text, other", [
    ("I was charged twice by Spotify", True),            # another company's name, which the examples never use
    ("Spotify charged me twice", True),                   # at a sentence's start: a word the encoder does not know
    ("my bank charged me twice", True),                   # a third party
    ("what is VAT and who pays it", True),                # a general question
    ("how does two-factor authentication work", True),
    ("can you refund my Spotify charge", False),          # it addresses the operator: about this company
    ("Where is my invoice?", False),
    ("Wher is my invoice", False),                        # a misspelt first word is no brand
    ("my order was due on Monday", False),                # days and months are not brands
])
def test_a_request_about_someone_else(speller, text, other):
    assert RT.about_someone_else(text, speller) is other


def _index(texts, vectors):
    specs = [RT.RouteSpec(n, tuple(ts)) for n, ts in texts.items()]
    return RT.build_index(specs, lambda ts: np.stack([vectors[t] for t in ts]), known_words=ENCODER)


def test_a_request_about_someone_else_needs_a_closer_match():
    v = {t: embed(t) for t in EXAMPLES}
    ix = _index({"billing": EXAMPLES[1:3], "returns": EXAMPLES[:1]}, v)
    near = v[EXAMPLES[1]] * 0.9 + embed("noise") * 0.1
    near /= np.linalg.norm(near)
    plain = ix.match(near, None, "I was charged twice for my order")
    other = ix.match(near, None, "I was charged twice by Spotify")
    assert other.bar == pytest.approx(plain.bar + ROUTE_OTHER_PENALTY)
    assert ix.match(near, None).bar == plain.bar          # the text not read: no rise
    # a penalty larger than the margin turns the match into none
    strict = dataclasses.replace(ix, other_penalty=plain.score - plain.bar + 0.01)
    assert plain.route == "billing" and strict.match(near, None, "I was charged twice by Spotify").route is None


def test_decide_matches_the_repaired_reading_when_there_is_one():
    c = cfg()
    th = resolve(c, routes=RT.build_index(c.decisions.routes, lambda ts: np.stack([embed(t) for t in ts])))
    typo = Sig("where is my parlec")                     # the fake encoder: a misspelt text is far from all
    assert decide(c, req("where is my parlec"), typo, thresholds=th).route is None
    fixed = Sig("where is my parcel")
    assert decide(c, req("where is my parlec"), typo, thresholds=th, route_signals=fixed).route == "shipping"


async def test_the_router_reads_a_misspelt_turn_once_more_repaired():
    class Engine(FakeSignals):
        def __init__(self):
            self.texts = []

        async def analyze(self, text, budget=None):
            self.texts.append(text)
            return await super().analyze(text, budget)

    engine = Engine()
    router = Router(cfg(), signals=engine, cache=FakeCache())
    body = {"model": "auto", "messages": [{"role": "user", "content": "where is my parcle"}]}
    await exchange(router, body)
    assert engine.texts == ["where is my parcle", "where is my parcel"]   # the signal pass, then the repaired
    engine.texts.clear()
    await exchange(router, {**body, "messages": [{"role": "user", "content": "where is my parcel"}]})
    assert engine.texts == ["where is my parcel"]          # nothing to repair: one encoder pass
    engine.texts.clear()
    await exchange(router, {**body, "model": "large"})     # an explicit model is not routed: no second pass
    assert engine.texts == ["where is my parcle"]


def test_explain_says_what_the_route_read():
    from router_extproc.explain import explain

    c = cfg()
    ix = RT.build_index(c.decisions.routes, lambda ts: np.stack([embed(t) for t in ts]))
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "where is my parcle"}]}).encode()
    out = io.StringIO()
    d = explain(c, body, out, signals=Sig("where is my parcle"), routes=ix, route_signals=Sig("where is my parcel"))
    assert "typos repaired: 'where is my parcel'" in out.getvalue() and d.route == "shipping"
    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "what is a parcel"}]}).encode()
    explain(c, body, out, signals=Sig("what is a parcel"), routes=ix)
    assert "about someone else" in out.getvalue()


async def test_an_overloaded_encoder_leaves_the_routes_the_first_reading():
    from router_extproc.errors import Overloaded

    class Engine(FakeSignals):
        async def analyze(self, text, budget=None):
            if text == "where is my parcel":
                raise Overloaded("queue full")
            return await super().analyze(text, budget)

    router = Router(cfg(), signals=Engine(), cache=FakeCache())
    body = {"model": "auto", "messages": [{"role": "user", "content": "where is my parcle"}]}
    answer, _ = await exchange(router, body)
    assert not isinstance(answer, Respond)                # decided without the repaired reading, not a 503


def test_the_encoders_whole_words_are_never_repaired():
    class Tokenizer:
        def get_vocab(self):
            return {"[CLS]": 0, "parcle": 1, "##s": 2, "where": 3, "is": 4, "my": 5}

    class Engine(FakeSignals):
        tokenizer = Tokenizer()

    assert RT.encoder_words(Engine()) == {"parcle", "where", "is", "my"}   # no word pieces, no special tokens
    assert RT.encoder_words(FakeSignals()) == frozenset()                 # an engine without a tokenizer
    ix = RT.for_config(cfg(), Engine())
    assert ix.repair("where is my parcle") is None        # a word the encoder knows is read as itself
    assert RT.for_config(cfg(), FakeSignals()).repair("where is my parcle") == "where is my parcel"


def test_a_very_long_word_in_a_short_turn_is_not_repaired_and_costs_nothing(speller):
    # A word's two-edit deletes grow with the cube of its length: a 1,900-letter word would be gigabytes.
    blob = "r" + "eturnx" * 316
    assert speller.fix(blob) is None
    assert speller.repair(f"how do i {blob}") is None
