"""The `language` signal (language.py) and its predicate: `when: {language: [fr, de]}` holds when the detector is
sure the user wrote in one of them; it is computed once per request, off the event loop, only when a rule reads it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from router_extproc import rules as R
from router_extproc.config import parse_config
from router_extproc.decision import decide
from router_extproc.errors import ConfigError
from router_extproc.language import LANGUAGES, MAX_CHARS, LanguageDetector

from .test_decision import CONFIG, FakeSignals, req


@pytest.fixture(scope="module")
def detector():
    return LanguageDetector()


def test_the_codes_a_config_may_name_are_the_models_labels(detector):
    assert LANGUAGES == set(detector._identifier().labels)


def test_sentences_are_detected_and_short_or_non_linguistic_text_is_not_sure(detector):
    assert detector.detect("Bonjour, je voudrais annuler ma commande s'il vous plaît").code == "fr"
    assert detector.detect("Wo ist mein Paket? Ich warte seit einer Woche.").code == "de"
    assert detector.detect("Where is my package? I have been waiting for a week.").code == "en"
    for unsure in ("hi", "merci", "x" * 500, "12345 67890"):
        assert detector.detect(unsure).code is None, unsure


def test_only_the_first_characters_are_read(detector):
    text = "Bonjour, je voudrais annuler ma commande. " * 60 + "This is English now. " * 500
    assert len(text) > 2 * MAX_CHARS and detector.detect(text).code == "fr"


RULES = [
    {"name": "europe", "priority": 1, "when": {"language": ["fr", "de"]}, "model": "oss"},
    {"name": "rest", "default": True, "model": "large"},
]


def cfg(rules=None):
    data = json.loads(json.dumps(CONFIG))
    data["decisions"] = {"rules": RULES if rules is None else rules}
    return parse_config(data, source=Path("lang.yaml"))


def test_a_language_predicate_routes_on_the_signal():
    c = cfg()
    assert c.rules.reads_language
    assert decide(c, req(), FakeSignals(), language="fr").model == "oss"
    assert decide(c, req(), FakeSignals(), language="en").model == "large"
    assert decide(c, req(), FakeSignals(), language=None).model == "large"   # not sure: the predicate is false
    assert R.Language(frozenset({"fr", "de"})).describe() == "language in [de, fr]"


def test_rules_without_a_language_predicate_do_not_read_it():
    assert not cfg([{"name": "rest", "default": True, "model": "large"}]).rules.reads_language


def test_an_unknown_language_code_is_rejected_naming_the_key():
    with pytest.raises(ConfigError, match=r"lang.yaml: decisions.rules\[0\].when.language: unknown language 'fra'"):
        cfg([{"name": "a", "when": {"language": "fra"}, "model": "small"}, RULES[1]])


class CountingDetector(LanguageDetector):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def detect(self, text):
        self.calls += 1
        return super().detect(text)


def _router(rules):
    from router_extproc.pipeline import Router
    from tests.fakes import FakeSignals as EngineSignals

    data = {"models": [{"name": "small", "endpoint": "127.0.0.1:1"}, {"name": "large", "endpoint": "127.0.0.1:2"}],
            "default_model": "large", "signals": {"category": False, "complexity": False, "jailbreak": True,
                                                   "pii": True},
            "decisions": {"rules": rules}}
    router = Router(parse_config(data, source=Path("p.yaml")), signals=EngineSignals())
    router.language = CountingDetector()
    return router


async def test_through_the_pipeline_the_language_is_computed_once_and_routes():
    from router_extproc import headers as H
    from tests.fakes import chat, exchange

    router = _router([{"name": "fr", "priority": 1, "when": {"language": "fr"}, "model": "small"},
                      {"name": "rest", "default": True, "model": "large"}])
    _, hdrs = await exchange(router, chat("Bonjour, pouvez-vous m'aider avec ma facture ?", model="auto"))
    assert hdrs[H.DECISION] == "fr" and hdrs[H.MODEL] == "small" and router.language.calls == 1
    _, hdrs = await exchange(router, chat("Hello, can you help me with my invoice?", model="auto"))
    assert hdrs[H.DECISION] == "rest" and router.language.calls == 2
    await exchange(router, chat("Bonjour, pouvez-vous m'aider ?", model="small"))   # explicit: not routed
    assert router.language.calls == 2


async def test_without_a_language_rule_the_detector_never_runs():
    from tests.fakes import chat, exchange

    router = _router([{"name": "rest", "default": True, "model": "large"}])
    await exchange(router, chat("Bonjour, pouvez-vous m'aider avec ma facture ?", model="auto"))
    assert router.language.calls == 0


def test_explain_shows_the_language():
    from router_extproc.explain import explain

    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [
        {"role": "user", "content": "Guten Tag, ich habe eine Frage zu meiner Rechnung."}]}).encode()
    d = explain(cfg(), body, out, signals=FakeSignals())
    text = out.getvalue()
    assert d.rule == "europe" and "language: de (confidence" in text and "[x] europe" in text
