"""A route's `negatives:` (routes.py): utterances the route is not though they read like it (another company's
bill, the same words about something else). A turn at least as close to a route's negatives as to its examples does
not match that route; the next route still may. Validated at load, naming the file and key."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest

from router_extproc import routes as RT
from router_extproc.decision import decide
from router_extproc.errors import ConfigError
from router_extproc.thresholds import resolve

from ..fakes import embed
from .test_routes import Sig, cfg
from .test_rules import req

NETFLIX = "Netflix charged me twice"
ROUTES = [
    {"name": "billing", "examples": ["I was charged twice", "refund my invoice"], "negatives": [NETFLIX]},
    {"name": "shipping", "examples": ["where is my parcel", "track my order"]},
]


def unit(*parts):
    v = sum(w * embed(t) for t, w in parts)
    return v / np.linalg.norm(v)


def index(routes=ROUTES, margin=0.0):
    c = cfg(routes=routes)
    ix = RT.build_index(c.decisions.routes, lambda ts: np.stack([embed(t) for t in ts]))
    return ix if margin == 0.0 else dataclasses.replace(ix, negative_margin=margin)


def test_negatives_parse_and_are_embedded_with_the_examples():
    c = cfg(routes=ROUTES)
    assert c.decisions.routes[0].negatives == (NETFLIX,) and c.decisions.routes[1].negatives == ()
    ix = index()
    assert NETFLIX in ix.vectors and ix.negatives.matrix.shape == (1, ix.matrix.shape[1])
    assert list(ix.negative_routes) == [0]


def test_a_turn_closer_to_a_routes_negatives_does_not_match_it():
    ix = index()
    near_negative = unit((NETFLIX, 1.0), ("I was charged twice", 0.6))
    m = ix.match(near_negative)
    assert m.route is None and m.refused == ("billing",)
    near_example = unit(("I was charged twice", 1.0), (NETFLIX, 0.4))
    assert ix.match(near_example).route == "billing" and ix.match(near_example).refused == ()


def test_a_negative_refuses_only_its_own_route():
    ix = index([{**ROUTES[0], "negatives": ["where is my parcel from eBay"]}, ROUTES[1]])
    m = ix.match(unit(("where is my parcel", 1.0), ("where is my parcel from eBay", 0.1)))
    assert m.route == "shipping" and m.refused == ()


def test_the_margin_widens_what_the_negatives_refuse():
    between = unit(("I was charged twice", 1.0), ("refund my invoice", 1.0), (NETFLIX, 0.9))
    assert index().match(between).route == "billing"
    assert index(margin=0.3).match(between).route is None


def test_decide_and_explain_say_the_negatives_refused_the_route():
    from router_extproc.explain import explain

    c = cfg(routes=ROUTES)
    ix = index()
    sig = Sig(NETFLIX)
    assert decide(c, req(NETFLIX), sig, thresholds=resolve(c, routes=ix)).route is None
    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": NETFLIX}]}).encode()
    explain(c, body, out, signals=sig, routes=ix)
    assert "as close to the negatives of billing as to their examples" in out.getvalue()


@pytest.mark.parametrize("negatives, key, words", [
    ([], "routes[0].negatives", "non-empty list"),
    ("Netflix", "routes[0].negatives", "non-empty list"),
    ([""], "routes[0].negatives[0]", "non-empty string"),
    (["x" * (RT.MAX_EXAMPLE_CHARS + 1)], "routes[0].negatives[0]", "one utterance"),
    (["track my order"], "routes[0].negatives[0]", "also an example of routes[1]"),   # another route's example
])
def test_bad_negatives_are_rejected_naming_file_and_key(negatives, key, words):
    with pytest.raises(ConfigError) as err:
        cfg(routes=[{**ROUTES[0], "negatives": negatives}, ROUTES[1]])
    assert "routes.yaml" in str(err.value) and key in str(err.value) and words in str(err.value)


def test_an_out_of_scope_route_takes_no_negatives():
    with pytest.raises(ConfigError, match=r"routes\[2\]\.negatives.*out_of_scope"):
        cfg(routes=[*ROUTES, {"name": "none", "examples": ["hello"], "out_of_scope": True, "negatives": ["x"]}])


def test_negatives_count_towards_the_example_limit(monkeypatch):
    from router_extproc import config_rules

    monkeypatch.setattr(config_rules, "MAX_EXAMPLES", 4)
    with pytest.raises(ConfigError, match=r"routes\[0\]\.negatives.*more than 4"):
        cfg(routes=[{**ROUTES[0], "negatives": [NETFLIX, "Spotify billed me", "my bank fee"]}, ROUTES[1]])
