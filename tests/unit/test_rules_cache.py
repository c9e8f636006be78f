"""A decision's cache policy (rules.CachePolicy): a route narrows the `semantic_cache` section for its requests —
off, a higher similarity bar, a shorter age — and the rules can never read the lookup's outcome (docs/routing.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from router_extproc.config import parse_config
from router_extproc.decision import decide
from router_extproc.errors import ConfigError
from router_extproc.metrics import Metrics
from router_extproc.openai import parse_chat_request
from router_extproc.rules import CachePolicy
from router_extproc.stages.cache import CacheStage
from router_extproc.stages.exchange import Exchange
from router_extproc.thresholds import route_cache_similarity

from .test_decision import CONFIG, FakeSignals

CACHE = {"enabled": True, "backend_type": "memory", "similarity_threshold": 0.8, "ttl_seconds": 3600,
         "cache_anonymous": True}
RULES = [
    {"name": "live-prices", "priority": 20, "when": {"domain": "economics"}, "model": "small",
     "cache": {"enabled": False}},
    {"name": "strict", "priority": 10, "when": {"domain": "law"}, "model": "oss",
     "cache": {"threshold": 0.95, "ttl_s": 60}},
    {"name": "general", "default": True, "model": "large"},
]


def cfg(rules=None, cache=None):
    data = json.loads(json.dumps(CONFIG))
    data["semantic_cache"] = CACHE if cache is None else cache
    data["decisions"] = {"rules": RULES if rules is None else rules}
    return parse_config(data, source=Path("cache-rules.yaml"))


def req(content="What is a tort?"):
    return parse_chat_request(json.dumps({"model": "auto", "messages": [{"role": "user", "content": content}],
                                          "temperature": 0}).encode())


@dataclasses.dataclass
class Hit:
    completion: dict
    similarity: float
    exact: bool
    age_s: float = 0.0


class ScriptedCache:
    """Answers every semantic lookup with one scripted hit (None: a miss); records what it was asked."""

    def __init__(self, semantic: Hit | None = None, exact: Hit | None = None) -> None:
        self.semantic, self.exact = semantic, exact
        self.asked: list[str] = []
        self.claimed = 0

    def exact_lookup(self, key: Any) -> Hit | None:
        self.asked.append("exact")
        return self.exact

    async def lookup(self, key: Any, embedding: Any, text: str) -> Hit | None:
        self.asked.append("semantic")
        return self.semantic

    def claim(self, key: Any) -> bool:
        self.claimed += 1
        return True

    async def wait_for_leader(self, key: Any, timeout_s: float | None = None) -> Hit | None:
        return None

    def release(self, key: Any, completion: dict | None) -> None:
        pass

    def store(self, key: Any, embedding: Any, completion: dict) -> None:
        pass


async def lookup(config, category: str, cache: ScriptedCache):
    request = req()
    decision = decide(config, request, FakeSignals(category=category))
    ex = Exchange(config=config, path="/v1/chat/completions")
    ex.embedding, ex.embedded_text = [1.0], "What is a tort?"   # the key's text: no second embedding
    ex.request, ex.decision = request, decision
    stage = CacheStage(cache, None, Metrics())
    hit = await stage.lookup(ex, request, decision, FakeSignals(category=category), config)
    return ex, hit


# ---- load ---------------------------------------------------------------------------------------------------

def test_an_action_carries_its_cache_policy_into_the_decision():
    c = cfg()
    assert decide(c, req(), FakeSignals(category="law")).cache == CachePolicy(True, 0.95, 60.0)
    assert decide(c, req(), FakeSignals(category="economics")).cache == CachePolicy(enabled=False)
    assert decide(c, req(), FakeSignals(category="history")).cache is None   # the section's policy unchanged


def test_a_route_can_only_raise_the_similarity_bar():
    assert route_cache_similarity(None, 0.8) is None
    assert route_cache_similarity(0.95, 0.8) == 0.95


def _err(rules, cache=None) -> str:
    with pytest.raises(ConfigError) as e:
        cfg(rules=[*rules, {"name": "d", "default": True, "model": "large"}], cache=cache)
    return str(e.value)


@pytest.mark.parametrize("rule, where, why", [
    ({"cache": {"threshold": 0.5}}, "decisions.rules[0].cache.threshold", "only raise the bar"),
    ({"cache": {"ttl_s": 7200}}, "decisions.rules[0].cache.ttl_s", "only shorten"),
    ({"cache": {"ttl_s": 0}}, "decisions.rules[0].cache.ttl_s", "> 0"),
    ({"cache": {"threshold": 1.5}}, "decisions.rules[0].cache.threshold", "within"),
    ({"cache": {"enabled": False, "ttl_s": 5}}, "decisions.rules[0].cache.enabled", "mean nothing"),
    ({"cache": {"similarity": 0.9}}, "decisions.rules[0].cache.similarity", "unknown key"),
    ({"cache": {"enabled": True}, "block": "no", "model": None}, "decisions.rules[0].cache", "never reaches"),
])
def test_bad_cache_policies_are_rejected_naming_the_key(rule, where, why):
    base = {"name": "a", "when": {"domain": "law"}, "model": "small"}
    msg = _err([{k: v for k, v in {**base, **rule}.items() if v is not None}])
    assert f": {where}: " in msg and why in msg, msg


def test_a_route_cannot_switch_on_a_cache_the_section_leaves_off():
    msg = _err([{"name": "a", "when": {"domain": "law"}, "model": "small", "cache": {"threshold": 0.9}}],
               cache={"enabled": False})
    assert "decisions.rules[0].cache: the semantic cache is off" in msg


def test_a_rule_cannot_read_the_cache_outcome():
    # The lookup needs the decision (its model is a hard filter, its policy the bar): reading the outcome in the
    # rule that makes the decision would be circular, so the predicate is refused with the reason.
    msg = _err([{"name": "a", "when": {"cache": "hit"}, "model": "small"}])
    assert ": decisions.rules[0].when.cache: " in msg and "after the decision" in msg


# ---- the cache stage ---------------------------------------------------------------------------------------

async def test_a_route_with_the_cache_off_neither_looks_up_nor_stores():
    cache = ScriptedCache(semantic=Hit({"x": 1}, 0.99, False), exact=Hit({"x": 1}, 1.0, True))
    ex, hit = await lookup(cfg(), "economics", cache)
    assert hit is None and cache.asked == [] and not ex.store and ex.cache_state == "bypass"


async def test_a_semantic_hit_under_the_routes_bar_is_a_miss_and_the_request_goes_upstream():
    cache = ScriptedCache(semantic=Hit({"x": 1}, 0.9, False))
    ex, hit = await lookup(cfg(), "law", cache)        # strict: 0.95
    assert hit is None and ex.store and ex.leader and cache.asked == ["exact", "semantic"]
    cache = ScriptedCache(semantic=Hit({"x": 1}, 0.9, False))
    _, hit = await lookup(cfg(), "history", cache)     # the section's policy: 0.9 passes its verifier
    assert hit is not None


async def test_an_answer_older_than_the_routes_ttl_is_not_served():
    old = ScriptedCache(exact=Hit({"x": 1}, 1.0, True, age_s=120))
    _, hit = await lookup(cfg(), "law", old)            # strict: 60 s
    assert hit is None
    young = ScriptedCache(exact=Hit({"x": 1}, 1.0, True, age_s=30))
    _, hit = await lookup(cfg(), "law", young)
    assert hit is not None and young.asked == ["exact"]
    _, hit = await lookup(cfg(), "history", ScriptedCache(exact=Hit({"x": 1}, 1.0, True, age_s=120)))
    assert hit is not None                             # another route reads the same entry under its own policy


def test_explain_shows_the_routes_cache_policy():
    import io

    from router_extproc.explain import explain

    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "a tort?"}]}).encode()
    explain(cfg(), body, out, signals=FakeSignals(category="law"))
    assert "cache: threshold 0.95, ttl_s 60.0" in out.getvalue()
