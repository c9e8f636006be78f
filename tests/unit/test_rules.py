"""Operator decisions (rules.py, config_rules.py): the rule language, its validation at load, and how decide
applies it. Without a `decisions:` section the routing config decides exactly as before (test_decision.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router_extproc import rules as R
from router_extproc.config import parse_config
from router_extproc.decision import decide
from router_extproc.errors import ConfigError
from router_extproc.openai import parse_chat_request

from .test_decision import CONFIG, FakeSignals

KEYWORDS = {
    "code": {"terms": ["stack trace", "traceback", "segfault"]},
    "errors": {"terms": [r"\w+Error\b"], "regex": True, "case_sensitive": True, "whole_word": False},
    "acme": {"terms": ["Acme"], "case_sensitive": True},
}
RULES = [
    {"name": "secret", "priority": 200, "when": {"pii": ["US_SSN"]}, "block": "No SSNs here."},
    {"name": "code", "priority": 100, "when": {"all": [{"keyword": "acme"}, {"keyword": ["code", "errors"]}]},
     "candidates": ["ds", "large"], "reasoning": True, "reasoning_effort": "high", "headers": {"x-team": "code"}},
    {"name": "long", "priority": 50, "when": {"context_length": {"min": 100}}, "model": "large"},
    {"name": "hard-math", "priority": 10, "when": {"domain": "math", "complexity": "complex"},
     "candidates": ["large", "small"], "select": "cheapest"},
    {"name": "not-history", "priority": 5, "when": {"not": {"domain": ["history", "math"]}}, "model": "oss"},
    {"name": "general", "default": True, "model": "large"},
]


def cfg(rules=None, keywords=None, debug=False):
    data = json.loads(json.dumps(CONFIG))
    data["keywords"] = KEYWORDS if keywords is None else keywords
    data["decisions"] = {"debug_header": debug, "rules": RULES if rules is None else rules}
    return parse_config(data, source=Path("rules.yaml"))


def req(content="q", model="auto"):
    messages = [{"role": "system", "content": "Acme traceback"}, {"role": "user", "content": content}]
    return parse_chat_request(json.dumps({"model": model, "messages": messages}).encode())


# ---- the engine -------------------------------------------------------------------------------------------

def test_keyword_sets_respect_case_and_whole_words():
    ks = R.compile_keywords("k", ("trace",), regex=False, case_sensitive=False, whole_word=True)
    assert ks.matches("a TRACE here") and not ks.matches("traceback")
    cs = R.compile_keywords("k", ("Acme",), regex=False, case_sensitive=True, whole_word=True)
    assert cs.matches("Acme's bug") and not cs.matches("acme")
    lit = R.compile_keywords("k", ("a.b",), regex=False, case_sensitive=False, whole_word=False)
    assert lit.matches("xa.by") and not lit.matches("axb")   # literal terms are escaped


def test_a_catastrophic_regex_runs_in_linear_time():
    ks = R.compile_keywords("k", ("(a+)+$",), regex=True, case_sensitive=True, whole_word=False)
    assert not ks.matches("a" * 50_000 + "!")    # backtracking engines never return from this; RE2 does at once


def test_priority_decides_and_the_default_catches_the_rest():
    rs = cfg().decisions
    facts = R.Facts(domain="math", complexity="complex", text="x")
    assert R.evaluate(rs, facts).rule.name == "hard-math"
    assert R.evaluate(rs, R.Facts(domain="history", text="x")).rule.name == "general"
    traced = R.evaluate(rs, R.Facts(domain="law", pii_types=frozenset({"US_SSN"}), text="x"), trace=True)
    assert traced.rule.name == "secret"
    assert traced.matched == ("secret", "not-history")
    assert traced.trace[-1] == ("general", True) and ("code", False) in traced.trace


def test_context_length_uses_the_token_estimate_unless_given():
    assert R.Facts(text="x" * 400).token_count == 100
    assert R.Facts(text="x", tokens=7).token_count == 7


# ---- decide -----------------------------------------------------------------------------------------------

def test_keywords_route_a_code_question_with_its_headers_and_reasoning():
    d = decide(cfg(), req("Acme crashes with ValueError"), FakeSignals(category="law"))
    assert (d.rule, d.model, d.reasoning, d.reasoning_effort) == ("code", "ds", True, "high")
    assert d.headers == (("x-team", "code"),)


def test_keywords_read_the_users_text_not_the_system_prompt():
    d = decide(cfg(), req("hello"), FakeSignals(category="history", complexity=0.1))
    assert d.rule == "general"


def test_long_prompts_take_the_long_context_rule():
    d = decide(cfg(), req("word " * 100), FakeSignals(category="history"))
    assert (d.rule, d.model) == ("long", "large")


def test_cheapest_selects_by_models_cost():
    d = decide(cfg(), req("integrate"), FakeSignals(category="math", complexity=0.9))
    assert (d.rule, d.model) == ("hard-math", "small")     # small costs 1, large 8


def test_a_block_rule_answers_with_its_message():
    d = decide(cfg(), req("my ssn"), FakeSignals(category="law", pii=frozenset({"US_SSN"})))
    assert (d.blocked, d.block_message, d.rule) == ("policy", "No SSNs here.", "secret")


def test_the_pii_policy_still_applies_to_the_chosen_candidate():
    # large accepts only PERSON: an email moves the request to the next candidate that accepts it.
    d = decide(cfg(), req("integrate"), FakeSignals(category="math", complexity=0.9,
                                                     pii=frozenset({"EMAIL_ADDRESS"})))
    assert d.model == "small" and not d.blocked
    d = decide(cfg(), req("x"), FakeSignals(category="law", pii=frozenset({"EMAIL_ADDRESS"})))
    assert (d.rule, d.blocked) == ("not-history", "pii")   # oss accepts no PII and is the only candidate


def test_an_explicit_model_is_not_rerouted_by_rules():
    d = decide(cfg(), req("Acme ValueError", model="small"), FakeSignals())
    assert d.model == "small" and d.rule is None


def test_guards_run_before_the_rules():
    d = decide(cfg(), req("Acme ValueError"), FakeSignals(jailbreak=0.99))
    assert d.blocked == "jailbreak"


def test_matched_rules_are_listed_only_with_the_debug_header():
    s = FakeSignals(category="math", complexity=0.9, pii=frozenset({"US_SSN"}))
    assert decide(cfg(), req("x"), s).matched == ()
    assert decide(cfg(debug=True), req("x"), s).matched == ("secret", "hard-math")


def test_without_decisions_the_routing_section_decides_as_before():
    data = json.loads(json.dumps(CONFIG))
    c = parse_config(data, source=Path("old.yaml"))
    assert c.decisions is None
    d = decide(c, req("x"), FakeSignals(category="math", complexity=0.9))
    assert (d.model, d.rule, d.reasoning_effort) == ("large", None, "high")


# ---- validation at load: each error names the file and the key ------------------------------------------

def _err(**kw) -> str:
    with pytest.raises(ConfigError) as e:
        cfg(**kw)
    assert str(e.value).startswith("rules.yaml: ")
    return str(e.value)


def _with(rule, *more):
    return [rule, *more, {"name": "general", "default": True, "model": "large"}]


@pytest.mark.parametrize("rules, where, why", [
    (_with({"name": "a", "when": {"lang": "fr"}, "model": "small"}), "decisions.rules[0].when.lang",
     "unknown signal"),
    (_with({"name": "a", "when": {"language": "french"}, "model": "small"}), "decisions.rules[0].when.language",
     "unknown language 'french'"),
    (_with({"name": "a", "when": {"domain": "billing"}, "model": "small"}), "decisions.rules[0].when.domain",
     "unknown domain"),
    (_with({"name": "a", "when": {"keyword": "nope"}, "model": "small"}), "decisions.rules[0].when.keyword",
     "unknown keyword set"),
    (_with({"name": "a", "when": {"domain": "math"}, "model": "gpt-9"}), "decisions.rules[0].model",
     "unknown model"),
    (_with({"name": "a", "when": {"any": []}, "model": "small"}), "decisions.rules[0].when.any", "non-empty"),
    (_with({"name": "a", "when": {"context_length": {"min": 9, "max": 3}}, "model": "small"}),
     "decisions.rules[0].when.context_length", "never fire"),
    (_with({"name": "a", "model": "small"}), "decisions.rules[0].when", "unconditional"),
    (_with({"name": "a", "when": {"domain": "math"}, "model": "small"},
           {"name": "a", "when": {"domain": "law"}, "model": "small"}), "decisions.rules[1].name", "duplicate"),
    (_with({"name": "a", "priority": 5, "when": {"domain": "math"}, "model": "small"},
           {"name": "b", "priority": 1, "when": {"domain": "math"}, "model": "large"}),
     "decisions.rules[1].when", "unreachable"),
    ([{"name": "a", "when": {"domain": "math"}, "model": "small"}], "decisions.rules", "default decision is required"),
    (_with({"name": "a", "when": {"domain": "math"}, "model": "small", "select": "random"}),
     "decisions.rules[0].select", "must be one of"),
    (_with({"name": "a", "when": {"domain": "math"}, "model": "small", "headers": {"x-router-model": "x"}}),
     "decisions.rules[0].headers.x-router-model", "belong to the router"),
    (_with({"name": "a", "when": {"domain": "math"}}), "decisions.rules[0]", "needs `model`"),
    (_with({"name": "a", "when": {"domain": "math"}, "model": "small", "headers": {"x-a": "b\r\nx-evil: 1"}}),
     "decisions.rules[0].headers.x-a", "control characters"),
    (_with({"name": "a", "when": {"domain": "math"}, "model": "small", "headers": {"bad name": "v"}}),
     "decisions.rules[0].headers.bad name", "not a valid HTTP header name"),
])
def test_bad_rules_are_rejected_naming_the_key(rules, where, why):
    msg = _err(rules=rules)
    assert f": {where}: " in msg and why in msg, msg


def test_a_bad_regex_is_rejected_naming_the_keyword_set():
    msg = _err(keywords={"k": {"terms": ["(unclosed"], "regex": True}})
    assert ": keywords.k.terms: bad regex" in msg


@pytest.mark.parametrize("switch, cond", [
    ({"signals": {"category": False}}, {"domain": "math"}),
    ({"signals": {"complexity": False}}, {"not": {"complexity": "simple"}}),
    ({"routing": {"complexity": {"enabled": False}}}, {"complexity": "complex"}),
    ({"guards": {"pii": False}}, {"any": [{"keyword": "code"}, {"pii": "any"}]}),
])
def test_a_rule_over_a_signal_that_is_switched_off_is_rejected(switch, cond):
    data = json.loads(json.dumps(CONFIG))
    for k, v in switch.items():
        data[k] = {**data.get(k, {}), **v}
    data["keywords"] = KEYWORDS
    data["decisions"] = {"rules": _with({"name": "a", "when": cond, "model": "small"})}
    with pytest.raises(ConfigError, match=r"rules.yaml: decisions.rules\[0\].when: .* switches off"):
        parse_config(data, source=Path("rules.yaml"))


def test_keywords_without_decisions_are_rejected():
    data = json.loads(json.dumps(CONFIG))
    data["keywords"] = KEYWORDS
    with pytest.raises(ConfigError, match="keywords"):
        parse_config(data, source=Path("rules.yaml"))


# ---- the reply headers and hot reload -------------------------------------------------------------------

def _exchange(config, d):
    from router_extproc.stages.exchange import Exchange

    ex = Exchange(config=config, path="/v1/chat/completions")
    ex.request = req("x")
    ex.decision = d
    return ex


def test_the_decision_and_its_headers_go_on_the_reply_and_matches_only_when_debugging():
    from router_extproc import headers as H
    from router_extproc.stages import reply

    s = FakeSignals(category="law")
    for debug in (False, True):
        c = cfg(debug=debug)
        d = decide(c, req("Acme segfault"), s)
        h = reply.decision_headers(_exchange(c, d))
        assert h[H.DECISION] == "code" and h["x-team"] == "code"
        assert (H.DECISION_MATCHED in h) is debug
    assert h[H.DECISION_MATCHED] == "code,not-history"


def test_a_policy_block_replies_403_with_the_rules_message():
    from router_extproc.stages import reply

    c = cfg()
    d = decide(c, req("x"), FakeSignals(pii=frozenset({"US_SSN"})))
    r = reply.blocked(_exchange(c, d), d)
    body = json.loads(r.body)["error"]
    assert r.status == 403 and body["message"] == "No SSNs here." and body["code"] == "blocked_by_policy"


def test_a_reload_with_bad_rules_is_rejected_and_the_old_rules_keep_serving(tmp_path):
    import yaml

    from router_extproc.app import ConfigWatcher
    from router_extproc.config import load_config
    from router_extproc.metrics import Metrics
    from router_extproc.pipeline import Router

    data = json.loads(json.dumps(CONFIG))
    data.update(keywords=KEYWORDS, decisions={"rules": RULES})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    metrics = Metrics()
    router = Router(load_config(path), metrics=metrics)
    watcher = ConfigWatcher(path, router, metrics)
    # a later reload removes the model a rule routes to: rejected at load, never a 500 at request time
    data["models"] = [m for m in data["models"] if m["name"] != "ds"]
    path.write_text(yaml.safe_dump(data))
    assert watcher.reload() is False
    assert [r.name for r in router.config.decisions.rules][:2] == ["secret", "code"]
    assert router.config.model("ds") is not None
    data = json.loads(json.dumps(CONFIG))
    data.update(keywords=KEYWORDS, decisions={"rules": RULES[3:]})
    path.write_text(yaml.safe_dump(data))
    assert watcher.reload() is True
    assert [r.name for r in router.config.decisions.rules] == ["hard-math", "not-history"]


async def test_through_the_pipeline_the_rule_routes_and_names_itself_in_the_headers():
    from router_extproc import headers as H
    from router_extproc.pipeline import Continue, Router
    from tests.fakes import FakeCache, FakeSignals as EngineSignals, chat, exchange

    data = {
        "models": [{"name": "small", "endpoint": "127.0.0.1:1"}, {"name": "large", "endpoint": "127.0.0.1:2"}],
        "default_model": "large",
        "signals": {"category": False, "complexity": False, "jailbreak": True, "pii": True},
        "keywords": {"greeting": {"terms": ["hello", "hi"]}},
        "decisions": {"debug_header": True, "rules": [
            {"name": "hello", "priority": 1, "when": {"keyword": "greeting"}, "model": "small",
             "headers": {"x-lane": "fast"}},
            {"name": "rest", "default": True, "model": "large"}]},
    }
    router = Router(parse_config(data, source=Path("p.yaml")), signals=EngineSignals(), cache=FakeCache())
    answer, hdrs = await exchange(router, chat("Hello there", model="auto"))
    assert isinstance(answer, Continue)
    assert answer.set_headers == {"x-selected-model": "small", H.DECISION: "hello"}   # the upstream sees it too
    assert hdrs[H.MODEL] == "small" and hdrs[H.DECISION] == "hello" and hdrs["x-lane"] == "fast"
    assert hdrs[H.DECISION_MATCHED] == "hello"
    _, hdrs = await exchange(router, chat("What is tax?", model="auto"))
    assert hdrs[H.MODEL] == "large" and hdrs[H.DECISION] == "rest" and hdrs[H.DECISION_MATCHED] == ""


def test_live_fallback_stays_within_the_rules_candidates():
    from router_extproc.live import candidates

    c = cfg()
    d = decide(c, req("Acme crashes with ValueError"), FakeSignals(category="math"))
    assert d.rule == "code" and candidates(c, d) == ["ds", "large"]   # not math's large, small
    d = decide(c, req("x"), FakeSignals(category="history", complexity=0.1))
    assert d.rule == "general" and candidates(c, d) == ["large"]
