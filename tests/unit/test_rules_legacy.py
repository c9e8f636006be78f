"""Migration (#23): without `decisions:`, the `routing:` section is read as an equivalent rule set
(config_rules.legacy_rules) and decided by the one rules path. The specification is the routing code it replaced,
kept below verbatim as `reference`: over a grid of configs and signal readings both decide the same, field by field.
test_decision.py and test_pii_policy.py keep asserting the section's behaviour through the new path."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from router_extproc import decision as D
from router_extproc.config import parse_config
from router_extproc.decision import Decision, decide

from .test_decision import CONFIG, FakeSignals, req


def reference(config, category: str | None, base: dict[str, Any]) -> Decision:
    """The `routing:` decision as decision._route_auto made it before the translation (unchanged)."""
    confidence, complexity, cx_score = base["confidence"], base["complexity"], base["complexity_score"]
    routed_pii = base["pii_types"] - base["pii_redact"]
    rule = config.routing.complexity
    route_category, why = D._domain(config, category, confidence)
    route = config.routing.category(route_category)
    candidates = [config.default_model] if route is None else [name for name, _ in route.model_scores]
    reasoning = False
    effort = None
    if complexity == "simple" and rule.simple_model is not None:
        ordered = [rule.simple_model, *[c for c in candidates if c != rule.simple_model]]
        why += f", simple ({cx_score:.2f}) → {rule.simple_model}"
    else:
        ordered = list(candidates)
        if complexity == "complex" and rule.complex_model is not None and route is None:
            ordered = [rule.complex_model, *[c for c in ordered if c != rule.complex_model]]
        if route is not None and route.use_reasoning:
            reasoning, effort = True, route.reasoning_effort or "medium"
        if complexity is not None:
            why += f", {complexity} ({cx_score:.2f})"
    chosen_name = ordered[0]
    if routed_pii:
        allowed = [n for n in ordered if D._model(config, n).allows_pii(routed_pii)]
        if not allowed:
            return Decision(model=chosen_name, category=route_category, blocked="pii",
                            reason=f"no model in {route_category} accepts {D._fmt(routed_pii)}", **base)
        if allowed[0] != chosen_name:
            why += f", PII {D._fmt(routed_pii)} moved {chosen_name} → {allowed[0]}"
        chosen_name = allowed[0]
    if D._model(config, chosen_name).family == "none":
        reasoning, effort = None, None
    return Decision(model=chosen_name, category=route_category, reasoning=reasoning,
                    reasoning_effort=effort if reasoning else None, reason=why, **base)


def variant(name: str):
    data = json.loads(json.dumps(CONFIG))
    data["models"].append({"name": "tiny", "endpoint": "127.0.0.1:9005", "family": "none", "pii_allow": ["*"]})
    cx = data["routing"]["complexity"]
    if name == "complex_model":
        cx["complex_model"] = "ds"
    elif name == "no_simple_model":
        del cx["simple_model"]
    elif name == "complexity_off":
        cx["enabled"] = False
    elif name == "category_off":
        data["signals"] = {"category": False}
    elif name == "family_none":
        cx["simple_model"] = "tiny"
        data["routing"]["categories"]["law"]["model_scores"] = {"tiny": 1.0, "oss": 0.5}
    elif name == "no_categories":
        data["routing"]["categories"] = {}
        cx["complex_model"] = "small"
    return parse_config(data, source=Path(f"{name}.yaml"))


VARIANTS = ["as_shipped", "complex_model", "no_simple_model", "complexity_off", "category_off", "family_none",
            "no_categories"]
READINGS = list(itertools.product(
    ["math", "law", "history", "other", "biology"],          # routed categories, and one without a route
    [0.3, 0.9],                                              # under / over routing.confidence_threshold
    [0.1, 0.9],                                              # simple / complex
    [frozenset(), frozenset({"EMAIL_ADDRESS"}), frozenset({"PERSON"}), frozenset({"US_SSN"})],
))


@pytest.mark.parametrize("name", VARIANTS)
def test_the_routing_section_read_as_rules_decides_as_the_code_it_replaced(name):
    config = variant(name)
    assert config.decisions is None and config.rules.legacy
    for category, confidence, complexity, pii in READINGS:
        signals = FakeSignals(category=category, category_confidence=confidence, complexity=complexity, pii=pii)
        resolved = D.resolve(config)
        cat, base = D._readings(config, signals, resolved.jailbreak, True, resolved.routes)
        got = decide(config, req(), signals)
        if got.blocked in ("jailbreak", "injection") or (got.blocked == "pii" and "policy blocks" in got.reason):
            continue   # the guards run before any routing, unchanged
        assert got == reference(config, cat, base), (name, category, confidence, complexity, pii)


def test_the_translation_is_one_rule_per_category_and_complexity_lane():
    rs = variant("complex_model").rules
    assert [r.name for r in rs.rules] == ["math/simple", "law/simple", "history/simple", "other/simple",
                                          "math", "law", "history", "other", "simple", "complex"]
    assert rs.rules[0].action.candidates == ("small", "large")     # simple_model first, then math's models
    assert rs.rules[4].action.reasoning and rs.rules[4].action.reasoning_effort == "high"
    assert rs.default.action.candidates == ("large",)


def test_a_translated_decision_keeps_the_legacy_outward_form():
    d = decide(variant("as_shipped"), req(), FakeSignals(category="math", complexity=0.9))
    assert d.rule is None and d.candidates == () and d.headers == ()   # no x-router-decision for `routing:`
    assert d.reason == "category math, complex (0.90)"
