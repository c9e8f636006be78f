"""A custom route matches the languages of its examples (routes.py): the encoder is English-only, so a turn the
language detector is sure is in another language does not match a route whose examples are all English; the rule
set's `language` conditions decide it, and a route that lists examples in that language (or `languages:`) takes it."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from router_extproc import routes as RT
from router_extproc.decision import decide
from router_extproc.errors import ConfigError
from router_extproc.gloss import Glossary
from router_extproc.language import Language, LanguageDetector
from router_extproc.pipeline import Router
from router_extproc.thresholds import ROUTE_LANGUAGE_FLOOR, resolve

from ..fakes import FakeCache, FakeSignals, embed, exchange
from .test_routes import Sig, cfg
from .test_rules import req

FRENCH = "On m'a facturé deux fois"


class Detector:
    """The language detector's surface, answering from a table (unknown text: English, sure)."""

    def __init__(self, table=None):
        self.table = table or {}
        self.calls = 0

    def detect(self, text):
        self.calls += 1
        return self.table.get(text, Language("en", 0.99, {"en": 0.99}))


def french(en_share=0.0):
    return Language("fr", 0.9, {"fr": 0.9, "en": en_share})


def index(routes=None, detector=None):
    c = cfg(routes=routes)
    return RT.build_index(c.decisions.routes, lambda ts: np.stack([embed(t) for t in ts]),
                          detector=detector or Detector({FRENCH: french()}))


def test_each_route_accepts_the_languages_its_examples_are_written_in():
    ix = index()
    assert ix.languages == (frozenset({"en"}), frozenset({"en"})) and ix.reads_language
    with_french = index([{"name": "billing", "examples": ["I was charged twice", FRENCH]},
                         {"name": "shipping", "examples": ["where is my parcel"]}])
    assert with_french.languages == (frozenset({"en", "fr"}), frozenset({"en"}))


def test_without_a_detector_every_route_takes_every_language():
    c = cfg()
    ix = RT.build_index(c.decisions.routes, lambda ts: np.stack([embed(t) for t in ts]))
    assert not ix.reads_language and ix.match(embed("I was charged twice"), None, None, french()).route == "billing"


def test_a_turn_in_another_language_does_not_match_an_english_route():
    ix = index()
    e = embed("I was charged twice")                     # however close its embedding
    assert ix.match(e).route == "billing"                 # language not read: as before
    m = ix.match(e, None, None, french())
    assert m.route is None and m.language == "fr" and m.nearest == "billing"


def test_not_sure_or_likely_enough_in_the_routes_language_still_matches():
    ix = index()
    e = embed("I was charged twice")
    assert ix.match(e, None, None, Language(None, 0.1, {"fr": 0.1, "en": 0.01})).route == "billing"
    assert ix.match(e, None, None, french(ROUTE_LANGUAGE_FLOOR)).route == "billing"
    assert ix.match(e, None, None, french(ROUTE_LANGUAGE_FLOOR / 2)).route is None


def test_a_route_with_examples_in_the_language_takes_the_turn_the_others_do_not():
    ix = index([{"name": "billing", "examples": ["I was charged twice", FRENCH]},
                {"name": "shipping", "examples": ["where is my parcel", "track my order"]}])
    assert ix.match(embed(FRENCH), None, None, french()).route == "billing"
    m = ix.match(embed("where is my parcel"), None, None, french())
    assert m.route != "shipping" and m.language is None   # billing may still be ranked: it takes French


@pytest.mark.parametrize("languages, expected", [
    (["en", "fr"], frozenset({"en", "fr"})),
    ("de", frozenset({"de"})),
    ("any", frozenset()),                                 # every language: the operator's encoder reads them
])
def test_the_operator_lists_a_routes_languages(languages, expected):
    ix = index([{"name": "billing", "examples": ["I was charged twice"], "languages": languages},
                {"name": "shipping", "examples": ["where is my parcel"]}])
    assert ix.languages[0] == expected


@pytest.mark.parametrize("languages, words", [
    ([], "non-empty list"), (["xx"], "unknown language code 'xx'"), ([1], "non-empty list")])
def test_bad_route_languages_are_rejected_naming_the_key(languages, words):
    with pytest.raises(ConfigError) as err:
        cfg(routes=[{"name": "billing", "examples": ["I was charged twice"], "languages": languages},
                    {"name": "shipping", "examples": ["where is my parcel"]}])
    assert "routes.yaml" in str(err.value) and "routes[0].languages" in str(err.value) and words in str(err.value)


def test_a_reload_reuses_the_examples_languages_and_the_detector():
    det = Detector({FRENCH: french()})
    ix = index(detector=det)
    calls = det.calls
    c = cfg(routes=[{"name": "billing", "examples": ["I was charged twice", "refund my invoice", FRENCH]},
                    {"name": "shipping", "examples": ["where is my parcel", "track my order"]}])
    again = RT.build_index(c.decisions.routes, lambda ts: np.stack([embed(t) for t in ts]), previous=ix)
    assert det.calls == calls + 1 and again.detector is det and "fr" in again.languages[0]


def test_decide_passes_the_language_reading_to_the_routes():
    c = cfg()
    th = resolve(c, routes=index())
    sig = Sig("I was charged twice")
    assert decide(c, req("x"), sig, thresholds=th).route == "billing"
    d = decide(c, req("x"), sig, thresholds=th, route_language=french())
    assert d.route is None and d.rule == "general" and d.language is None   # no rule reads the language


async def test_the_router_reads_the_language_once_for_the_routes():
    router = Router(cfg(), signals=FakeSignals(), cache=FakeCache(), routes=index())
    det = router.language = Detector({"Je veux un remboursement": french()})
    body = {"model": "auto", "messages": [{"role": "user", "content": "Je veux un remboursement"}]}
    await exchange(router, body)
    assert det.calls == 1
    await exchange(router, {**body, "model": "large"})    # an explicit model is not routed: not read
    assert det.calls == 1


def test_the_router_detects_the_examples_languages_at_load():
    router = Router(cfg(), signals=FakeSignals(), cache=FakeCache())
    assert router.routes.languages == (frozenset({"en"}), frozenset({"en"}))
    assert isinstance(router.routes.detector, LanguageDetector)


def test_explain_says_which_routes_the_language_kept_out(monkeypatch):
    from router_extproc import explain as X

    monkeypatch.setattr(X, "LanguageDetector", lambda: Detector({"I was charged twice": french()}))
    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "I was charged twice"}]}).encode()
    d = X.explain(cfg(), body, out, signals=Sig("I was charged twice"), routes=index())
    text = out.getvalue()
    assert d.route is None and "language: fr (confidence 0.900)" in text
    assert "the turn is in fr, which the examples of billing, shipping are not in" in text


# ---- a turn no route takes is read as its English gloss (gloss.py) ------------------------------------------

GLOSSARY = Glossary.parse("# fr\non = I\nm = -\na = was\nfacturé = charged\ndeux = twice\nfois = -\n")


def glossing(routes=None):
    return dataclasses.replace(index(routes), glossary=GLOSSARY)


def test_a_turn_in_a_language_no_route_takes_is_read_as_its_english_gloss():
    ix = glossing()
    assert ix.gloss(FRENCH, french()) == "I was charged twice"
    assert ix.repair(FRENCH, french()) == "I was charged twice"          # the encoder reads the gloss once more
    text, lang = ix.read_as(FRENCH, french())
    assert (text, lang) == ("I was charged twice", None)                 # read as English: every route open to it
    assert ix.match(embed(text), None, text, lang).route == "billing"


def test_no_gloss_for_english_for_a_route_that_takes_the_language_or_without_the_shipped_table():
    ix = glossing()
    assert ix.gloss(FRENCH, Language("en", 0.99, {"en": 0.99})) is None
    assert ix.gloss(FRENCH, Language(None, 0.1, {"fr": 0.1})) is None     # the detector is not sure
    assert ix.read_as(FRENCH, None) == (FRENCH, None)
    takes_french = glossing([{"name": "billing", "examples": ["I was charged twice", FRENCH]},
                             {"name": "shipping", "examples": ["where is my parcel"]}])
    assert takes_french.gloss(FRENCH, french()) is None                   # billing reads French itself
    assert index().gloss(FRENCH, french()) is None and index().repair(FRENCH, french()) is None


def test_decide_matches_the_gloss_when_the_routes_read_it():
    c = cfg()
    th = resolve(c, routes=glossing())
    d = decide(c, req(FRENCH), Sig(FRENCH), thresholds=th, route_signals=Sig("I was charged twice"),
               route_language=french())
    assert d.route == "billing"
    # without the gloss's pass (the encoder was overloaded) the gate keeps the turn out, as before
    assert decide(c, req(FRENCH), Sig(FRENCH), thresholds=th, route_language=french()).route is None


async def test_the_router_reads_the_gloss_of_a_turn_no_route_takes():
    router = Router(cfg(), signals=FakeSignals(), cache=FakeCache(), routes=glossing())
    router.language = Detector({FRENCH: french()})
    seen = []
    analyze = router.signals.analyze

    async def spy(text, budget=None):
        seen.append(text)
        return await analyze(text, budget)

    router.signals.analyze = spy
    await exchange(router, {"model": "auto", "messages": [{"role": "user", "content": FRENCH}]})
    assert "I was charged twice" in seen


def test_explain_says_the_routes_read_the_gloss(monkeypatch):
    from router_extproc import explain as X

    monkeypatch.setattr(X, "LanguageDetector", lambda: Detector({FRENCH: french()}))
    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": FRENCH}]}).encode()
    d = X.explain(cfg(), body, out, signals=Sig(FRENCH), routes=glossing(),
                  route_signals=Sig("I was charged twice"))
    assert d.route == "billing"
    assert "the routes read its English gloss (gloss.py): 'I was charged twice'" in out.getvalue()
