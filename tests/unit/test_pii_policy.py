"""PII policy: types and groups in the config, and what each action (route, block, redact) does to a decision."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from router_extproc.config import parse_config
from router_extproc.decision import decide
from router_extproc.errors import ConfigError
from router_extproc.openai import parse_chat_request
from router_extproc.pii.taxonomy import ALL_TYPES, GROUPS

MODELS = [
    {"name": "local", "endpoint": "127.0.0.1:9001", "pii_allow": ["*"]},
    {"name": "cloud", "endpoint": "127.0.0.1:9002", "pii_allow": ["contact", "PERSON"]},
]


def cfg(pii=None, models=MODELS, **over):
    data = {"models": models, "default_model": "cloud",
            "routing": {"categories": {"other": {"model_scores": {"cloud": 1.0, "local": 0.5}}}}, **over}
    if pii is not None:
        data["pii"] = pii
    return parse_config(json.loads(json.dumps(data)), source=Path("pii.yaml"))


@dataclass
class Sig:
    pii: frozenset = field(default_factory=frozenset)
    category: str = "other"
    category_confidence: float = 0.9
    complexity: float = 0.9
    jailbreak: float = 0.0

    @property
    def pii_types(self):
        return self.pii


def req(model="auto"):
    return parse_chat_request(json.dumps({"model": model, "messages": [{"role": "user", "content": "q"}]}).encode())


def test_groups_partition_the_taxonomy_and_cover_the_model_heads_types():
    from router_extproc.config import PII_TYPES

    flat = [t for ts in GROUPS.values() for t in ts]
    assert len(flat) == len(set(flat)) == len(ALL_TYPES)
    assert set(PII_TYPES) <= set(ALL_TYPES)
    assert set(GROUPS) == {"contact", "identity", "financial", "government_id", "secret", "online_identifier"}


def test_pii_allow_speaks_in_groups_and_types_and_old_type_names_keep_working():
    c = cfg()
    cloud = c.model("cloud")
    assert cloud.allows_pii(frozenset({"EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON"}))
    assert not cloud.allows_pii(frozenset({"US_SSN"}))
    assert c.model("local").allows_pii(frozenset({"SECRET"}))


@pytest.mark.parametrize("pii, key", [
    ({"action": "scrub"}, "pii.action"),
    ({"actions": {"secrets": "block"}}, "pii.actions.secrets"),
    ({"actions": {"secret": "hide"}}, "pii.actions.secret"),
    ({"ignore": ["AGES"]}, "pii.ignore"),
    ({"restore": "yes"}, "pii.restore"),
    ({"redact": True}, "pii.redact"),
])
def test_bad_pii_config_names_the_key_and_the_file(pii, key):
    with pytest.raises(ConfigError) as err:
        cfg(pii)
    assert "pii.yaml" in str(err.value) and key in str(err.value)


def test_a_type_entry_beats_its_groups_entry():
    c = cfg({"action": "route", "actions": {"secret": "block", "PASSWORD": "redact"}})
    assert c.pii.action("SECRET") == "block"
    assert c.pii.action("PASSWORD") == "redact"
    assert c.pii.action("EMAIL_ADDRESS") == "route"


def test_route_moves_the_request_to_a_model_that_accepts_the_type():
    d = decide(cfg(), req(), Sig(frozenset({"US_SSN"})))
    assert d.model == "local" and not d.blocked and d.pii_types == {"US_SSN"}


def test_block_refuses_whatever_model_would_accept_it():
    c = cfg({"actions": {"secret": "block"}})
    for model in ("auto", "local"):
        d = decide(c, req(model), Sig(frozenset({"SECRET", "EMAIL_ADDRESS"})))
        assert d.blocked == "pii" and "SECRET" in d.reason


def test_redacted_types_do_not_constrain_routing():
    c = cfg({"actions": {"government_id": "redact"}})
    d = decide(c, req(), Sig(frozenset({"US_SSN", "EMAIL_ADDRESS"})))
    assert d.model == "cloud" and not d.blocked
    assert d.pii_redact == {"US_SSN"} and d.pii_types == {"US_SSN", "EMAIL_ADDRESS"}
    # an explicit model that does not accept the type may still receive the request once it is redacted
    assert not decide(c, req("cloud"), Sig(frozenset({"US_SSN"}))).blocked


def test_ignored_types_are_not_reported():
    d = decide(cfg({"ignore": ["AGE", "online_identifier"]}), req(), Sig(frozenset({"AGE", "URL", "PERSON"})))
    assert d.pii_types == {"PERSON"}


def test_default_action_applies_to_every_type_not_named():
    d = decide(cfg({"action": "redact", "actions": {"secret": "block"}}), req(), Sig(frozenset({"PERSON", "AGE"})))
    assert d.pii_redact == {"PERSON", "AGE"} and not d.blocked
