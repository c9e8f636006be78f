"""The custom-route matcher fitted at load from the examples alone (routes.py): each route's bar from its own
examples by leave-one-out, the score of the two nearest examples, and the category head's classes ranked with the
routes, so a request the head is sure of needs a closer match than one it is unsure of."""

from __future__ import annotations

import math

import numpy as np
import pytest

from router_extproc import routes as RT
from router_extproc.decision import decide
from router_extproc.thresholds import (ROUTE_BASE, ROUTE_HEAD_TEMPERATURE, ROUTE_TIGHTNESS, ROUTE_TIGHTNESS_ONE,
                                       resolve)

from .test_routes import Sig, cfg
from .test_rules import req

DIM = 8


def unit(*pairs: tuple[int, float]) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    for i, x in pairs:
        v[i] = x
    return v / np.linalg.norm(v)


# tight: its examples lie close together around axis 0; loose: spread between axes 1, 2 and 3
VECTORS = {
    "t1": unit((0, 1), (4, 0.1)), "t2": unit((0, 1), (5, 0.1)), "t3": unit((0, 1), (6, 0.1)),
    "l1": unit((1, 1)), "l2": unit((1, 1), (2, 1)), "l3": unit((2, 1), (3, 1)),
    "o1": unit((7, 1)),
}


def build(*specs: RT.RouteSpec) -> RT.RouteIndex:
    return RT.build_index(specs, lambda ts: np.stack([VECTORS[t] for t in ts]))


TIGHT = RT.RouteSpec("tight", ("t1", "t2", "t3"))
LOOSE = RT.RouteSpec("loose", ("l1", "l2", "l3"))


def test_each_route_bar_is_fitted_from_its_own_examples_by_leave_one_out():
    ix = build(TIGHT, LOOSE)
    # tight: every example's nearest other is ~0.99 away; loose: 0.71 (l1-l2, l2-l1/l3, l3-l2)
    assert RT.tightness(ix.matrix[:3]) == pytest.approx(0.990, abs=1e-3)
    assert RT.tightness(ix.matrix[3:]) == pytest.approx(0.5 ** 0.5, abs=1e-3)
    assert ix.thresholds[0] == pytest.approx(ROUTE_BASE + ROUTE_TIGHTNESS * 0.990, abs=1e-3)
    assert ix.thresholds[0] > ix.thresholds[1]        # a tight route asks for a closer match


def test_an_operator_threshold_replaces_the_fit_and_one_example_uses_the_default_tightness():
    ix = build(RT.RouteSpec("tight", TIGHT.examples, threshold=0.7), RT.RouteSpec("one", ("o1",)))
    assert list(ix.thresholds) == pytest.approx([0.7, ROUTE_BASE + ROUTE_TIGHTNESS * ROUTE_TIGHTNESS_ONE])


def test_the_fit_is_deterministic_and_bounded_for_many_examples():
    rng = np.random.default_rng(0)
    vecs = {f"e{i}": v for i, v in enumerate(rng.normal(size=(3000, DIM)).astype(np.float32))}
    spec = RT.RouteSpec("many", tuple(vecs))
    a, b = (RT.build_index([spec], lambda ts: np.stack([vecs[t] for t in ts])) for _ in range(2))
    assert a.thresholds[0] == b.thresholds[0] and math.isfinite(a.thresholds[0])


def test_the_head_votes_a_sure_category_needs_a_closer_match():
    ix = build(TIGHT, LOOSE)
    q = unit((0, 1), (7, 1.3))                        # near the tight route, not on it
    score = float(ix.scores(q)[0])
    tau = float(ix.thresholds[0])
    # place the request between the bars a sure and an unsure head ask for
    assert tau + ROUTE_HEAD_TEMPERATURE * math.log(0.3) <= score < tau
    assert ix.match(q, confidence=0.3).route == "tight"       # the head is unsure: it fits no built-in class
    sure = ix.match(q, confidence=0.99)
    assert sure.route is None and sure.nearest == "tight"     # a built-in class wins the ranking
    assert sure.bar == pytest.approx(tau + ROUTE_HEAD_TEMPERATURE * math.log(0.99), abs=1e-6)
    assert ix.match(q).route is None                          # no head (category off): the route's own bar


def test_the_winner_is_ranked_by_its_margin_over_its_bar_and_reports_its_share():
    ix = build(TIGHT, LOOSE)
    m = ix.match(VECTORS["l2"], confidence=0.5)
    assert m.route == "loose" and 0.5 < m.probability < 1.0 and m.score >= m.bar


def test_the_decision_passes_the_head_confidence_only_when_the_category_signal_is_on():
    c = cfg()
    th = resolve(c, routes=RT.build_index(c.decisions.routes, _fake))
    unsure = decide(c, req("x"), Sig("where is my parcel", category_confidence=0.05), thresholds=th)
    assert unsure.route == "shipping"
    off = cfg(signals={"category": False})
    th = resolve(off, routes=RT.build_index(off.decisions.routes, _fake))
    assert decide(off, req("x"), Sig("where is my parcel", category_confidence=1e-9), thresholds=th).route \
        == "shipping"   # the confidence is not read: the bar is the route's own


def _fake(ts):
    from ..fakes import embed
    return np.stack([embed(t) for t in ts])


@pytest.mark.parametrize("confidence", [1e-9, 0.3, 0.9, 1.0])
def test_the_head_only_ever_lowers_a_route_bar(confidence):
    ix = build(TIGHT, LOOSE)
    m = ix.match(VECTORS["l1"], confidence)
    assert m.bar <= float(ix.thresholds[1]) + 1e-6 and math.isfinite(m.bar)


def test_explain_says_why_no_route_matched():
    import io
    import json

    from router_extproc.explain import explain

    c = cfg()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "x"}]}).encode()
    out = io.StringIO()
    explain(c, body, out, signals=Sig("tell me a joke"), routes=RT.build_index(c.decisions.routes, _fake))
    assert "  route: none (nearest shipping: score " in out.getvalue() and "< bar " in out.getvalue()
