"""How a rule picks among its candidates (rules.order_candidates): `first`, `cheapest` (optionally only among those
scoring at least `min_score`) and `score-weighted` (confidence × score − cost_weight × relative cost)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router_extproc import rules as R
from router_extproc.config import parse_config
from router_extproc.decision import decide
from router_extproc.errors import ConfigError

from .test_decision import CONFIG, FakeSignals, req

COST = {"small": 1.0, "oss": 4.0, "large": 8.0}


def action(select, cands=("large", "small"), scores=(), **kw) -> R.Action:
    return R.Action(candidates=cands, select=select, scores=tuple(scores), **kw)


def test_first_keeps_the_operators_order_and_cheapest_sorts_by_cost():
    assert R.order_candidates(action("first"), COST.get, 0.9) == ["large", "small"]
    assert R.order_candidates(action("cheapest", ("large", "oss", "small")), COST.get, 0.9) == ["small", "oss", "large"]


def test_cheapest_with_a_min_score_takes_the_cheapest_good_enough_model():
    a = action("cheapest", ("small", "oss", "large"), {"small": 0.5, "oss": 0.85, "large": 0.95}.items(),
               min_score=0.8)
    # the ones under the bar stay as the last fallbacks
    assert R.order_candidates(a, COST.get, 0.9) == ["oss", "large", "small"]


def test_score_weighted_buys_quality_when_the_domain_is_sure_and_saves_when_it_is_not():
    a = action("score-weighted", scores={"large": 0.95, "small": 0.7}.items(), cost_weight=0.2)
    # sure: large 0.9*0.95 - 0.2 = 0.655 > small 0.9*0.7 - 0.2/8 = 0.605
    assert R.order_candidates(a, COST.get, 0.9) == ["large", "small"]
    # unsure: large 0.6*0.95 - 0.2 = 0.37 < small 0.6*0.7 - 0.025 = 0.395
    assert R.order_candidates(a, COST.get, 0.6) == ["small", "large"]
    # not measured: confidence 1, the quality scores decide unless cost outweighs them
    assert R.order_candidates(a, COST.get, None)[0] == "large"
    free = {"large": 0.0, "small": 0.0}
    assert R.order_candidates(a, free.get, 0.1) == ["large", "small"]   # no costs: the scores alone


RULES = [
    {"name": "math", "priority": 1, "when": {"domain": "math"}, "candidates": ["large", "small"],
     "select": "score-weighted", "scores": {"large": 0.95, "small": 0.7}, "cost_weight": 0.2},
    {"name": "rest", "default": True, "candidates": ["small", "oss", "large"], "select": "cheapest",
     "scores": {"small": 0.5, "oss": 0.85, "large": 0.95}, "min_score": 0.8},
]


def cfg(rules=None):
    data = json.loads(json.dumps(CONFIG))
    data["decisions"] = {"rules": RULES if rules is None else rules}
    return parse_config(data, source=Path("select.yaml"))


def test_decide_uses_the_category_heads_confidence_for_score_weighted():
    c = cfg()
    sure = decide(c, req(), FakeSignals(category="math", category_confidence=0.9))
    unsure = decide(c, req(), FakeSignals(category="math", category_confidence=0.6))
    assert (sure.model, sure.candidates) == ("large", ("large", "small"))
    assert (unsure.model, unsure.candidates) == ("small", ("small", "large"))
    assert decide(c, req(), FakeSignals(category="law")).model == "oss"


@pytest.mark.parametrize("extra, where, why", [
    ({"select": "score-weighted", "scores": {"large": 0.9}}, "decisions.rules[0].scores", "missing: small"),
    ({"select": "score-weighted", "scores": {"large": 0.9, "small": 0.5, "oss": 0.1}},
     "decisions.rules[0].scores.oss", "not one of this rule's candidates"),
    ({"select": "score-weighted", "scores": {"large": 1.5, "small": 0.5}}, "decisions.rules[0].scores.large",
     "within"),
    ({"select": "first", "scores": {"large": 0.9, "small": 0.5}}, "decisions.rules[0].scores", "change nothing"),
    ({"select": "cheapest", "min_score": 0.5}, "decisions.rules[0].min_score", "with `scores`"),
    ({"select": "cheapest", "cost_weight": 0.5}, "decisions.rules[0].cost_weight", "score-weighted"),
])
def test_bad_selections_are_rejected_naming_the_key(extra, where, why):
    rule = {"name": "a", "when": {"domain": "math"}, "candidates": ["large", "small"], **extra}
    with pytest.raises(ConfigError) as e:
        cfg([rule, {"name": "d", "default": True, "model": "large"}])
    assert f"select.yaml: {where}: " in str(e.value) and why in str(e.value), str(e.value)
