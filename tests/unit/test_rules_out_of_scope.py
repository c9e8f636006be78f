"""Out-of-scope examples (`routes: [{name, examples, out_of_scope: true}]`): what the operator expects that is
none of the routes. When such a route scores best, no route matches, whatever the thresholds; no rule may read it."""

from __future__ import annotations

import numpy as np
import pytest

from router_extproc.errors import ConfigError

from ..fakes import embed
from .test_routes import ROUTES, RULES, cfg, index

OTHER = {"name": "other", "examples": ["what is the capital of France", "tell me a joke"], "out_of_scope": True}


def test_an_out_of_scope_example_nearest_means_no_route():
    ix = index(cfg(routes=[*ROUTES, OTHER]))
    m = ix.match(embed("what is the capital of France"))
    assert m.route is None and m.nearest == "other" and m.similarity == pytest.approx(1.0, abs=1e-5)
    assert ix.match(embed("track my order")).route == "shipping"   # the routes still match


def test_it_wins_over_a_route_whose_threshold_is_reached():
    # halfway between a shipping example and an out-of-scope one, a bit closer to the latter: shipping's score is
    # over its default threshold, but the out-of-scope example is nearer
    v = 0.45 * embed("where is my parcel") + 0.55 * embed("tell me a joke")
    m = index(cfg(routes=[*ROUTES, OTHER])).match(v / np.linalg.norm(v))
    assert m.route is None and m.nearest == "other"


def test_no_decision_needs_to_read_it():
    assert [s.name for s in cfg(routes=[*ROUTES, OTHER]).decisions.routes][-1] == "other"


@pytest.mark.parametrize("route, rules, where, why", [
    ({**OTHER, "threshold": 0.5}, RULES, "routes[2].threshold", "never matches"),
    ({**OTHER, "strictness": 1.0}, RULES, "routes[2].strictness", "never matches"),
    (OTHER, [{"name": "x", "priority": 20, "when": {"route": "other"}, "model": "small"}, *RULES],
     "decisions.rules[0].when", "out_of_scope"),
])
def test_a_threshold_or_a_rule_on_it_is_rejected(route, rules, where, why):
    with pytest.raises(ConfigError) as e:
        cfg(routes=[*ROUTES, route], rules=rules)
    assert f"routes.yaml: {where}: " in str(e.value) and why in str(e.value), str(e.value)
