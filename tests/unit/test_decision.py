"""Routing decisions are pure: (config, request, signals) → model, reasoning, or a block."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from router_extproc.config import parse_config
from router_extproc.decision import decide, rewrite_body
from router_extproc.openai import APIError, parse_chat_request

from ..fakes import SignalValues

CONFIG = {
    "models": [
        {"name": "small", "endpoint": "127.0.0.1:9001", "family": "qwen3", "cost": 1, "pii_allow": ["*"]},
        {"name": "large", "endpoint": "127.0.0.1:9002", "family": "qwen3", "cost": 8, "pii_allow": ["PERSON"]},
        {"name": "oss", "endpoint": "127.0.0.1:9003", "family": "gpt-oss", "cost": 4, "pii_allow": []},
        {"name": "ds", "endpoint": "127.0.0.1:9004", "family": "deepseek", "served_name": "deepseek-r1"},
    ],
    "default_model": "large",
    "routing": {
        "confidence_threshold": 0.5,
        "fallback_category": "other",
        "complexity": {"threshold": 0.5, "simple_model": "small"},
        "categories": {
            "math": {"model_scores": {"large": 1.0, "small": 0.3}, "use_reasoning": True, "reasoning_effort": "high"},
            "law": {"model_scores": {"oss": 1.0}, "use_reasoning": True},
            "history": {"model_scores": {"large": 0.9, "small": 0.6}},
            "other": {"model_scores": {"small": 1.0, "large": 0.5}},
        },
    },
}


@dataclass(kw_only=True)
class FakeSignals(SignalValues):
    """A confident, complex math question unless a test says otherwise."""

    category: str = "math"
    complexity: float = 0.9
    jailbreak: float = 0.01


def cfg(**over):
    data = json.loads(json.dumps(CONFIG))
    data.update(over)
    return parse_config(data, source=Path("test.yaml"))


def req(model="auto", content="q", **extra):
    return parse_chat_request(json.dumps({"model": model, "messages": [{"role": "user", "content": content}],
                                          **extra}).encode())


def test_complex_math_goes_to_the_category_best_model_with_reasoning_on():
    d = decide(cfg(), req(), FakeSignals())
    assert (d.model, d.category, d.complexity, d.reasoning, d.reasoning_effort) == ("large", "math", "complex", True, "high")


def test_simple_prompt_goes_to_the_small_model_with_reasoning_off():
    d = decide(cfg(), req(), FakeSignals(category="other", complexity=0.1))
    assert (d.model, d.complexity, d.reasoning) == ("small", "simple", False)


def test_simple_prompt_in_a_reasoning_category_still_goes_small():
    d = decide(cfg(), req(), FakeSignals(category="math", complexity=0.1))
    assert d.model == "small" and d.reasoning is False


def test_low_confidence_uses_the_fallback_category():
    d = decide(cfg(), req(), FakeSignals(category="history", category_confidence=0.2, complexity=0.9))
    assert d.category == "other" and d.model == "small"
    assert "fallback" in d.reason


def test_jailbreak_is_blocked_whatever_the_model():
    for model in ("auto", "small"):
        d = decide(cfg(), req(model), FakeSignals(jailbreak=0.99))
        assert d.blocked == "jailbreak"


def test_jailbreak_threshold_from_config_overrides_the_model_default():
    c = cfg(guards={"jailbreak_threshold": 0.995})
    assert decide(c, req(), FakeSignals(jailbreak=0.99)).blocked is None


def test_an_injection_in_a_tool_result_is_flagged_by_default_and_the_request_routes_as_usual():
    d = decide(cfg(), req(), FakeSignals(injection=0.99))
    assert d.injection == "flagged" and d.blocked is None and d.model == "large" and d.injection_score == 0.99
    assert decide(cfg(), req(), FakeSignals(injection=0.1)).injection is None


def test_an_injection_can_be_blocked():
    d = decide(cfg(guards={"injection": {"action": "block"}}), req("small"), FakeSignals(injection=0.99))
    assert d.blocked == "injection" and d.injection == "blocked"


def test_an_injection_can_be_routed_to_the_model_allowed_to_see_it_and_pii_policy_still_applies():
    c = cfg(guards={"injection": {"action": "route", "model": "small"}})
    d = decide(c, req("large"), FakeSignals(injection=0.99, category="history"))
    assert d.model == "small" and d.injection == "routed" and d.blocked is None
    c = cfg(guards={"injection": {"action": "route", "model": "oss"}})
    d = decide(c, req(), FakeSignals(injection=0.99, pii=frozenset({"EMAIL_ADDRESS"})))
    assert d.blocked == "pii" and d.model == "oss"


def test_a_jailbreak_outranks_an_injection_and_the_injection_guard_can_be_switched_off():
    d = decide(cfg(guards={"injection": {"action": "block"}}), req(), FakeSignals(jailbreak=0.99, injection=0.99))
    assert d.blocked == "jailbreak"
    assert decide(cfg(guards={"injection": {"enabled": False}}), req(), FakeSignals(injection=0.99)).injection is None


def test_pii_moves_to_an_allowed_model_in_the_same_category():
    d = decide(cfg(), req(), FakeSignals(category="math", pii=frozenset({"EMAIL_ADDRESS"})))
    assert d.model == "small" and d.blocked is None
    assert d.pii_types == {"EMAIL_ADDRESS"}


def test_pii_allowed_by_the_first_choice_stays_there():
    d = decide(cfg(), req(), FakeSignals(category="math", pii=frozenset({"PERSON"})))
    assert d.model == "large"


def test_pii_is_blocked_when_no_model_in_the_category_allows_it():
    d = decide(cfg(), req(), FakeSignals(category="law", pii=frozenset({"EMAIL_ADDRESS"})))
    assert d.blocked == "pii"


def test_explicit_model_is_honoured_but_still_guarded():
    d = decide(cfg(), req("small"), FakeSignals(category="math"))
    assert d.model == "small" and not d.auto and d.reasoning is None
    blocked = decide(cfg(), req("oss"), FakeSignals(pii=frozenset({"US_SSN"})))
    assert blocked.blocked == "pii"


def test_unknown_model_is_a_404_listing_the_models():
    with pytest.raises(APIError) as info:
        decide(cfg(), req("gpt-9"), None)
    assert info.value.status == 404 and info.value.code == "model_not_found"
    assert "small" in info.value.message and "auto" in info.value.message


def test_without_signals_auto_goes_to_the_fallback_route():
    d = decide(cfg(), req(), None)
    assert d.model == "small" and d.category == "other" and d.complexity is None


def test_switched_off_signals_are_ignored():
    c = cfg(signals={"jailbreak": False, "pii": False})
    d = decide(c, req(), FakeSignals(jailbreak=0.99, pii=frozenset({"EMAIL_ADDRESS"})))
    assert d.blocked is None and d.pii_types == frozenset()


@pytest.mark.parametrize(
    "family_model, decision_reasoning, expected",
    [
        ("small", True, {"chat_template_kwargs": {"keep": 1, "enable_thinking": True}}),
        ("small", False, {"chat_template_kwargs": {"keep": 1, "enable_thinking": False}}),
        ("ds", True, {"chat_template_kwargs": {"keep": 1, "thinking": True}}),
        ("oss", True, {"reasoning_effort": "high"}),
        ("oss", False, {"reasoning_effort": "low"}),
    ],
)
def test_reasoning_is_set_the_way_each_family_understands(family_model, decision_reasoning, expected):
    from router_extproc.decision import Decision

    c = cfg()
    body = {"model": "auto", "messages": [], "chat_template_kwargs": {"keep": 1}, "tools": [{"x": 1}],
            "response_format": {"type": "json_object"}, "stream_options": {"include_usage": True}}
    d = Decision(model=family_model, auto=True, reasoning=decision_reasoning,
                 reasoning_effort="high" if decision_reasoning else None)
    out = rewrite_body(body, c.model(family_model), d)
    assert out["model"] == c.model(family_model).served_name
    for k, v in expected.items():
        assert out[k] == v
    for k in ("tools", "response_format", "stream_options", "messages"):
        assert out[k] == body[k]
    assert body["model"] == "auto", "the client's body is not mutated"


def test_reasoning_none_leaves_the_body_alone():
    from router_extproc.decision import Decision

    c = cfg()
    body = {"model": "small", "messages": [], "chat_template_kwargs": {"enable_thinking": True}}
    out = rewrite_body(body, c.model("small"), Decision(model="small", auto=False))
    assert out == {**body, "model": "small"}
