"""A decision's system prompt (`system_prompt: {text, mode: insert|replace}`): applied to the body the model
reads (act stage) and to the body the cache key is built from, never to the client's own body."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router_extproc.config import parse_config
from router_extproc.decision import Decision, decide, with_system_prompt
from router_extproc.errors import ConfigError
from router_extproc.rules import SystemPrompt

from .test_decision import CONFIG, FakeSignals, req

RULES = [
    {"name": "lawyer", "priority": 10, "when": {"domain": "law"}, "model": "oss",
     "system_prompt": {"text": "You are a careful legal assistant.", "mode": "replace"}},
    {"name": "general", "default": True, "model": "large",
     "system_prompt": {"text": "Answer briefly."}},
]


def cfg(rules=None):
    data = json.loads(json.dumps(CONFIG))
    data["decisions"] = {"rules": RULES if rules is None else rules}
    return parse_config(data, source=Path("sp.yaml"))


def d(text="Be nice.", mode="insert") -> Decision:
    return Decision(model="large", auto=True, system_prompt=SystemPrompt(text, mode))


CLIENT = {"model": "auto", "messages": [{"role": "system", "content": "Talk like a pirate."},
                                        {"role": "developer", "content": "Never say no."},
                                        {"role": "user", "content": "hi"}]}


# ---- the body ------------------------------------------------------------------------------------------------

def test_insert_puts_the_operators_prompt_first_in_the_clients_system_turn():
    out = with_system_prompt(CLIENT, d())
    assert out["messages"][0] == {"role": "system", "content": "Be nice.\n\nTalk like a pirate."}
    assert out["messages"][1:] == CLIENT["messages"][1:]
    assert CLIENT["messages"][0]["content"] == "Talk like a pirate."   # the client's body is untouched


def test_insert_without_a_system_turn_adds_one():
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert with_system_prompt(body, d())["messages"] == [{"role": "system", "content": "Be nice."},
                                                         {"role": "user", "content": "hi"}]


def test_insert_into_content_parts_adds_a_text_part_first():
    body = {"messages": [{"role": "system", "content": [{"type": "text", "text": "Pirate."}]},
                         {"role": "user", "content": "hi"}]}
    first = with_system_prompt(body, d())["messages"][0]
    assert first["content"] == [{"type": "text", "text": "Be nice."}, {"type": "text", "text": "Pirate."}]


def test_replace_drops_the_clients_system_and_developer_turns():
    out = with_system_prompt(CLIENT, d(mode="replace"))
    assert out["messages"] == [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "hi"}]


def test_the_responses_api_gets_it_as_instructions_and_completions_are_left_alone():
    assert with_system_prompt({"input": "hi", "instructions": "Pirate."}, d())["instructions"] == "Be nice.\n\nPirate."
    assert with_system_prompt({"input": "hi", "instructions": "Pirate."}, d(mode="replace"))["instructions"] == \
        "Be nice."
    assert with_system_prompt({"input": "hi"}, d())["instructions"] == "Be nice."
    legacy = {"prompt": "hi"}
    assert with_system_prompt(legacy, d()) == legacy


def test_without_a_system_prompt_the_body_is_the_clients():
    plain = Decision(model="large", auto=True)
    assert with_system_prompt(CLIENT, plain) is CLIENT


# ---- load and decide -----------------------------------------------------------------------------------------

def test_the_rules_system_prompt_is_carried_by_the_decision():
    c = cfg()
    assert decide(c, req(), FakeSignals(category="law")).system_prompt == \
        SystemPrompt("You are a careful legal assistant.", "replace")
    assert decide(c, req(), FakeSignals(category="math")).system_prompt == SystemPrompt("Answer briefly.", "insert")


@pytest.mark.parametrize("sp, where, why", [
    ({"text": ""}, "decisions.rules[0].system_prompt.text", "must not be empty"),
    ({"text": "x", "mode": "append"}, "decisions.rules[0].system_prompt.mode", "must be one of"),
    ({"text": "x" * 20_001}, "decisions.rules[0].system_prompt.text", "at most"),
    ({"text": "x", "role": "system"}, "decisions.rules[0].system_prompt.role", "unknown key"),
])
def test_bad_system_prompts_are_rejected_naming_the_key(sp, where, why):
    with pytest.raises(ConfigError) as e:
        cfg([{"name": "a", "when": {"domain": "law"}, "model": "small", "system_prompt": sp},
             {"name": "d", "default": True, "model": "large"}])
    assert f"sp.yaml: {where}: " in str(e.value) and why in str(e.value), str(e.value)


def test_a_blocking_rule_cannot_carry_a_system_prompt():
    with pytest.raises(ConfigError, match=r"rules\[0\].system_prompt: a blocking rule never forwards"):
        cfg([{"name": "a", "when": {"domain": "law"}, "block": "no", "system_prompt": {"text": "x"}},
             {"name": "d", "default": True, "model": "large"}])


# ---- through the pipeline: the act stage and the cache key ---------------------------------------------------

def _router():
    from router_extproc.pipeline import Router
    from tests.fakes import FakeCache, FakeSignals as EngineSignals

    data = {
        "models": [{"name": "small", "served_name": "demo/small", "endpoint": "127.0.0.1:1"},
                   {"name": "large", "served_name": "demo/large", "endpoint": "127.0.0.1:2"}],
        "default_model": "large",
        "signals": {"category": False, "complexity": False, "jailbreak": True, "pii": True},
        "semantic_cache": {"enabled": True, "backend_type": "memory", "cache_anonymous": True},
        "keywords": {"pirate": {"terms": ["arr"]}},
        "decisions": {"rules": [
            {"name": "pirate", "priority": 1, "when": {"keyword": "pirate"}, "model": "small",
             "system_prompt": {"text": "Speak like a pirate.", "mode": "replace"}},
            {"name": "rest", "default": True, "model": "large"}]},
    }
    cache = FakeCache()
    return Router(parse_config(data, source=Path("p.yaml")), signals=EngineSignals(), cache=cache), cache


async def test_the_forwarded_body_carries_the_system_prompt_and_clears_the_route_cache():
    from router_extproc.pipeline import Continue
    from tests.fakes import chat, exchange

    router, _ = _router()
    body = chat("arr, where is the treasure?", model="auto")
    body["messages"].insert(0, {"role": "system", "content": "Be formal."})
    answer, _ = await exchange(router, body)
    assert isinstance(answer, Continue) and answer.clear_route_cache
    sent = json.loads(answer.body)
    assert sent["model"] == "demo/small"
    assert sent["messages"] == [{"role": "system", "content": "Speak like a pirate."},
                                {"role": "user", "content": "arr, where is the treasure?"}]


async def test_the_cache_key_is_the_request_the_model_reads():
    from router_extproc.cache.keys import build_key
    from tests.fakes import chat, exchange

    router, cache = _router()
    await exchange(router, chat("arr, where is the treasure?", model="auto"))
    (stored,) = cache.entries
    effective = {"model": "auto", "temperature": 0.2,
                 "messages": [{"role": "system", "content": "Speak like a pirate."},
                              {"role": "user", "content": "arr, where is the treasure?"}]}
    key = build_key(effective, "small", {}, router.config.semantic_cache)
    assert stored == (key.scope, key.fingerprint)
    # the client's own system prompt is replaced, so both bodies are one request for the model: one entry serves both
    again = chat("arr, where is the treasure?", model="auto")
    again["messages"].insert(0, {"role": "system", "content": "Be formal."})
    answer, hdrs = await exchange(router, again)
    assert hdrs is None and json.loads(answer.body)["choices"][0]["message"]["content"].startswith("re: ")
