"""`router-extproc explain`: every signal, every rule's outcome in evaluation order, and the chosen decision."""

from __future__ import annotations

import io
import json
from pathlib import Path

from router_extproc.explain import explain, load_prompt

from .test_decision import FakeSignals
from .test_rules import cfg


def test_explain_lists_signals_rules_and_the_decision(tmp_path):
    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "Acme ValueError again"}]}).encode()
    d = explain(cfg(), body, out, signals=FakeSignals(category="law", complexity=0.1))
    text = out.getvalue()
    assert d.rule == "code"
    assert "category: law (confidence 0.900)" in text and "keyword errors: match" in text
    assert "[ ] secret (priority 200): pii in [US_SSN]" in text
    assert "[x] code (priority 100)" in text and "[x] not-history (priority 5)" in text   # traced past the winner
    assert "[ ] general: default" in text and "rule: code\n  model: ds" in text


def test_explain_without_signals_or_decisions_still_decides(tmp_path):
    from .test_decision import cfg as legacy

    out = io.StringIO()
    p = tmp_path / "p.txt"
    p.write_text("hello there")
    d = explain(legacy(), load_prompt(p), out, signals=None)
    assert "signals:\n  (none)" in out.getvalue() and "none configured" in out.getvalue()
    assert d.model == "small"   # the fallback category `other` routes to small


def test_a_prompt_file_may_be_a_body_a_prompt_or_plain_text(tmp_path):
    for content in ('{"prompt": "hi"}', '{"messages": [{"role": "user", "content": "hi"}]}', "hi"):
        p = tmp_path / "p.json"
        p.write_text(content)
        body = json.loads(load_prompt(p))
        assert body["model"] == "auto" and body["messages"][-1]["content"] == "hi"


def test_explain_says_when_a_guard_decided_before_the_rules():
    out = io.StringIO()
    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "Acme ValueError"}]}).encode()
    d = explain(cfg(), body, out, signals=FakeSignals(jailbreak=0.99))
    assert d.blocked == "jailbreak" and "rule: none (a guard" in out.getvalue()


def test_a_body_the_router_refuses_is_said_as_its_answer_not_a_traceback(tmp_path):
    from router_extproc.explain import run_explain

    p = tmp_path / "p.json"
    p.write_text('{"model": 3, "messages": [{"role": "user", "content": "hi"}]}')
    out = io.StringIO()
    config = Path(__file__).resolve().parents[2] / "config" / "config.yaml"
    assert run_explain(str(config), str(p), out) == 2
    assert out.getvalue().startswith("the router answers 400 invalid_type:")
