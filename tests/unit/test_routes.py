"""Custom routes from example utterances (routes.py, the `routes:` section): validation at load, nearest-example
matching, the `route` predicate in decisions, and the embedding done once per config load (never per request)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from router_extproc import config_rules
from router_extproc import routes as RT
from router_extproc.config import parse_config
from router_extproc.decision import decide
from router_extproc.errors import ConfigError
from router_extproc.pipeline import Router
from router_extproc.thresholds import resolve

from ..fakes import FakeSignals as FakeEngine, SignalValues, embed
from .test_decision import CONFIG
from .test_rules import req

ROUTES = [
    {"name": "billing", "examples": ["I was charged twice", "refund my invoice"], "threshold": 0.5},
    {"name": "shipping", "examples": ["where is my parcel", "track my order"]},
]
RULES = [
    {"name": "money", "priority": 10, "when": {"route": "billing"}, "model": "small"},
    {"name": "parcels", "priority": 5, "when": {"route": ["shipping"]}, "model": "oss"},
    {"name": "general", "default": True, "model": "large"},
]


def cfg(routes=None, rules=None, **over):
    data = json.loads(json.dumps(CONFIG))
    data["routes"] = ROUTES if routes is None else routes
    data["decisions"] = {"rules": RULES if rules is None else rules}
    data.update(over)
    return parse_config(data, source=Path("routes.yaml"))


@dataclass
class Sig(SignalValues):
    """A signal result whose embedding is the fake encoder's of `text`."""

    text: str = ""

    @property
    def embedding(self):
        return embed(self.text)


def index(config):
    return RT.build_index(config.decisions.routes, lambda ts: np.stack([embed(t) for t in ts]))


# ---- validation at load ------------------------------------------------------------------------------------

def test_routes_parse_with_the_threshold_left_to_the_fit():
    specs = {s.name: s for s in cfg().decisions.routes}
    assert specs["billing"].threshold == 0.5 and specs["shipping"].threshold is None   # fitted at load
    assert specs["shipping"].examples == ("where is my parcel", "track my order")
    assert specs["billing"].strictness == 0.0                   # the judge's fitted cut unless the operator moves it


def test_a_routes_strictness_is_read_as_the_judges_cut():
    specs = {s.name: s for s in cfg([{**ROUTES[0], "strictness": -1.5}, ROUTES[1]]).decisions.routes}
    assert specs["billing"].strictness == -1.5 and specs["shipping"].strictness == 0.0


@pytest.mark.parametrize("routes, rules, key, words", [
    ([{"name": "billing", "examples": []}, ROUTES[1]], None, "routes[0].examples", "non-empty list"),
    ([{"name": "billing"}, ROUTES[1]], None, "routes[0].examples", "non-empty list"),
    ([{"name": "billing", "examples": ["ok", "  "]}, ROUTES[1]], None, "routes[0].examples[1]", "non-empty string"),
    ([ROUTES[0], {"name": "billing", "examples": ["x"]}], None, "routes[1].name", "duplicate route name"),
    ([ROUTES[0], {"name": "shipping", "examples": ["I was charged twice"]}], None, "routes[1].examples[0]",
     "also an example of routes[0]"),
    (None, [{"name": "x", "when": {"route": "sales"}, "model": "small"}, RULES[2]], "decisions.rules[0].when.route",
     "unknown route 'sales'"),
    (None, [RULES[0], RULES[2]], "routes[1]", "read by no decision"),
    ([{**ROUTES[0], "threshold": 2}, ROUTES[1]], None, "routes[0].threshold", ""),
    ([{**ROUTES[0], "examples": ["x" * 3000]}, ROUTES[1]], None, "routes[0].examples[0]", "one utterance"),
    ([{**ROUTES[0], "exemples": ["x"]}, ROUTES[1]], None, "routes[0].exemples", "unknown key"),
    ([{**ROUTES[0], "strictness": 9}, ROUTES[1]], None, "routes[0].strictness", "within [-4.0, 4.0]"),
    ([{**ROUTES[0], "strictness": "high"}, ROUTES[1]], None, "routes[0].strictness", "a number"),
])
def test_bad_routes_are_rejected_naming_file_and_key(routes, rules, key, words):
    with pytest.raises(ConfigError) as err:
        cfg(routes, rules)
    assert str(err.value).startswith(f"routes.yaml: {key}") and words in str(err.value)


def test_routes_without_decisions_are_rejected():
    data = json.loads(json.dumps(CONFIG))
    data["routes"] = ROUTES
    with pytest.raises(ConfigError, match="routes.yaml: routes: .*decisions"):
        parse_config(data, source=Path("routes.yaml"))


def test_a_route_predicate_needs_the_signal_pass():
    off = {"category": False, "complexity": False, "jailbreak": False, "pii": False}
    with pytest.raises(ConfigError, match=r"decisions.rules\[0\].when: route in \[billing\] reads a signal"):
        cfg(signals=off)


def test_too_many_examples_are_rejected(monkeypatch):
    monkeypatch.setattr(config_rules, "MAX_EXAMPLES", 3)
    with pytest.raises(ConfigError, match=r"routes.yaml: routes\[1\].examples: more than 3 examples"):
        cfg()


def test_ten_thousand_examples_load_and_match():
    many = [{"name": "billing", "examples": [f"billing question {i}" for i in range(5000)]},
            {"name": "shipping", "examples": [f"shipping question {i}" for i in range(5000)]}]
    c = cfg(many)
    ix = index(c)
    assert ix.matrix.shape == (10_000, embed("x").shape[0])
    assert ix.match(embed("shipping question 4321")).route == "shipping"


# ---- matching ----------------------------------------------------------------------------------------------

def test_the_nearest_example_names_the_route():
    ix = index(cfg())
    m = ix.match(embed("track my order"))
    assert m.route == "shipping" and m.similarity == pytest.approx(1.0, abs=1e-5)
    # a route's score is the mean cosine of its two nearest examples: one stray example is not enough
    other = float(embed("refund my invoice") @ embed("I was charged twice"))
    assert ix.scores(embed("refund my invoice"))[0] == pytest.approx((1.0 + other) / 2, abs=1e-4)


def test_below_every_threshold_no_route_matches():
    m = index(cfg()).match(embed("what is the capital of France"))
    assert m.route is None and m.nearest in ("billing", "shipping") and m.score < m.bar


def test_each_route_has_its_own_threshold():
    ix = index(cfg())
    # halfway between a billing example and an unrelated text: cosine ~0.7 to it, score ~0.4, under billing's 0.5
    v = embed("I was charged twice") + embed("unrelated")
    m = ix.match(v / np.linalg.norm(v))
    assert m.nearest == "billing" and m.route is None


def test_no_embedding_means_not_measured():
    assert index(cfg()).match(None) is None


def test_a_rebuild_embeds_only_new_examples():
    c = cfg()
    first = index(c)
    seen: list[str] = []

    def counting(ts):
        seen.extend(ts)
        return np.stack([embed(t) for t in ts])

    more = cfg([ROUTES[0], {"name": "shipping", "examples": ["track my order", "my box never came"]}])
    again = RT.build_index(more.decisions.routes, counting, previous=first)
    assert seen == ["my box never came"]
    assert again.match(embed("my box never came")).route == "shipping"


# ---- decisions -----------------------------------------------------------------------------------------------

def test_decide_routes_by_the_matched_route():
    c = cfg()
    th = resolve(c, routes=index(c))
    d = decide(c, req("whatever"), Sig("I was charged twice"), thresholds=th)
    assert (d.rule, d.model, d.route) == ("money", "small", "billing") and d.route_similarity > 0.99
    d = decide(c, req("whatever"), Sig("where is my parcel"), thresholds=th)
    assert (d.rule, d.model, d.route) == ("parcels", "oss", "shipping")
    d = decide(c, req("whatever"), Sig("tell me a joke"), thresholds=th)
    assert (d.rule, d.route) == ("general", None)


def test_without_an_index_no_route_matches():
    c = cfg()
    assert decide(c, req("x"), Sig("I was charged twice")).rule == "general"


def test_the_router_embeds_routes_at_load_and_on_reload():
    engine = FakeEngine()
    router = Router(cfg(), signals=engine)
    assert router.routes is not None and router.routes.match(embed("track my order")).route == "shipping"
    router.swap_config(cfg([ROUTES[0], {"name": "shipping", "examples": ["my box never came"]}]))
    assert router.new_exchange().thresholds.routes.match(embed("my box never came")).route == "shipping"
    assert router.routes.match(embed("track my order")).route is None


async def test_a_reload_embeds_the_new_examples_off_the_event_loop(tmp_path):
    import threading

    import yaml

    from router_extproc.app import ConfigWatcher
    from router_extproc.config import load_config
    from router_extproc.metrics import Metrics

    threads: list[str] = []

    class Engine(FakeEngine):
        def analyze_batch(self, texts):
            threads.append(threading.current_thread().name)
            if any("boom" in t for t in texts):
                raise RuntimeError("encoder failed")
            return super().analyze_batch(texts)

    def write(routes):
        data = json.loads(json.dumps(CONFIG))
        path.write_text(yaml.safe_dump({**data, "routes": routes, "decisions": {"rules": RULES}}))

    path = tmp_path / "desk.yaml"
    write(ROUTES)
    metrics = Metrics()
    router = Router(load_config(path), signals=Engine(), metrics=metrics)
    watcher = ConfigWatcher(path, router, metrics)
    write([ROUTES[0], {"name": "shipping", "examples": ["my box never came"]}])
    threads.clear()
    assert await watcher.areload() is True
    assert threads and threading.main_thread().name not in threads
    assert router.routes.match(embed("my box never came")).route == "shipping"
    write([ROUTES[0], {"name": "shipping", "examples": ["boom"]}])
    assert await watcher.areload() is False                       # rejected: the running routes keep serving
    assert router.routes.match(embed("my box never came")).route == "shipping"


def test_explain_prints_the_route_match():
    import io

    from router_extproc.explain import explain

    c = cfg()
    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "x"}]}).encode()
    d = explain(c, body, out, signals=Sig("where is my parcel"), routes=index(c))
    text = out.getvalue()
    assert d.rule == "parcels" and "  route: shipping (score 0.480 >= bar " in text and "[x] parcels" in text
    out = io.StringIO()
    explain(c, body, out, signals=Sig("a poem please"), routes=index(c))
    assert "  route: none (nearest " in out.getvalue() and "route: None" in out.getvalue()
