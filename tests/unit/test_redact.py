"""Redaction as a policy action (router_extproc/pii/redact.py): what the model sees, what the user gets back."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from router_extproc.pii.redact import (PLACEHOLDER, JSONRestorer, SSERestorer, redact_request, redact_text,
                                       restore_completion)

ALL = frozenset({"EMAIL_ADDRESS", "SECRET", "US_SSN", "PERSON", "PASSWORD", "URL", "USERNAME", "PHONE_NUMBER"})


def chat(*messages) -> dict:
    return {"model": "auto", "messages": list(messages), "temperature": 0.2}


def test_each_entity_becomes_a_typed_placeholder_and_the_same_value_the_same_placeholder():
    body = chat({"role": "user", "content": "mail jane@example.org, cc jane@example.org and bob@example.org"})
    out, red = redact_request(body, ALL, [])
    text = out["messages"][0]["content"]
    assert "@" not in text
    phs = PLACEHOLDER.findall(text)
    assert len(phs) == 3 and phs[0] == phs[1] != phs[2]
    assert phs[0].startswith("[EMAIL_1_") and phs[2].startswith("[EMAIL_2_")
    assert body["messages"][0]["content"].count("@") == 3  # the client's body is not modified in place
    assert dict(red.counts) == {"EMAIL_ADDRESS": 2}


def test_only_the_configured_types_are_redacted():
    body = chat({"role": "user", "content": "mail jane@example.org, ssn 078-05-1120"})
    out, _ = redact_request(body, frozenset({"US_SSN"}), [])
    assert out["messages"][0]["content"].startswith("mail jane@example.org, ssn [SSN_1_")


def test_names_found_by_the_model_are_replaced_wherever_they_occur_as_whole_words():
    body = chat({"role": "system", "content": "You help Avery."},
                {"role": "user", "content": "Avery, as you cross 84 years old... (Averyanov is someone else)"})
    out, red = redact_request(body, ALL, [("PERSON", "Avery")])
    system, user = (m["content"] for m in out["messages"])
    assert "Avery" not in system and "Avery," not in user and "Averyanov" in user
    assert set(red.originals.values()) == {"Avery"}


def test_tool_calls_tool_results_and_every_part_shape_are_redacted():
    body = chat(
        {"role": "user", "content": [{"type": "text", "text": "write to jane@example.org"}, "bare 078-05-1120",
                                     {"type": "image_url", "image_url": {"url": "https://x.org/u/jane.png"}}]},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "send_mail", "arguments": json.dumps({"to": "jane@example.org"})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sent to jane@example.org, ssn 078-05-1120"})
    out, red = redact_request(body, ALL, [])
    dumped = json.dumps(out)
    assert "jane@example.org" not in dumped and "078-05-1120" not in dumped
    assert json.loads(out["messages"][1]["tool_calls"][0]["function"]["arguments"])["to"].startswith("[EMAIL_1_")
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == "send_mail"  # names are not text
    assert out["messages"][0]["content"][2] == body["messages"][0]["content"][2]  # media untouched


def test_an_entity_split_across_content_parts_is_one_placeholder_where_it_starts():
    # the model reads the parts as one text: no half of the value may reach it
    parts = [{"type": "text", "text": "mail jane@exa"}, "mple.org please",
             {"type": "image_url", "image_url": {"url": "https://x.org/a.png"}}, {"type": "text", "text": " bye"}]
    out, red = redact_request(chat({"role": "user", "content": parts}), ALL, [])
    got = out["messages"][0]["content"]
    assert got[0]["text"].startswith("mail [EMAIL_1_") and got[1] == " please" and got[3]["text"] == " bye"
    assert got[2] == parts[2] and list(red.originals.values()) == ["jane@example.org"]


def test_overlapping_entities_become_one_placeholder_for_the_longest():
    text = "db at postgres://admin:S3cr3tP4ss@db.example.com:5432/app now"
    out, red = redact_request(chat({"role": "user", "content": text}), ALL, [])
    assert "S3cr3tP4ss" not in out["messages"][0]["content"]
    assert len(red.originals) == 1 and list(red.originals.values()) == ["S3cr3tP4ss"]
    # a model-found name inside a rule match does not split it
    _, red = redact_request(chat({"role": "user", "content": "write jane.roe@example.org"}), ALL,
                            [("PERSON", "jane")])
    assert list(red.originals.values()) == ["jane.roe@example.org"]


def test_a_placeholder_the_user_typed_is_never_restored():
    body = chat({"role": "user", "content": "literal [EMAIL_1] and [EMAIL_1_abcdef], mine is jane@example.org"})
    out, red = redact_request(body, ALL, [])
    assert red.nonce not in "literal [EMAIL_1] and [EMAIL_1_abcdef]"
    mine = next(iter(red.originals))
    answer = f"[EMAIL_1] [EMAIL_1_abcdef] {mine}"
    assert red.restore(answer) == "[EMAIL_1] [EMAIL_1_abcdef] jane@example.org"


def test_two_requests_never_share_placeholders():
    _, a = redact_request(chat({"role": "user", "content": "a@example.org"}), ALL, [])
    _, b = redact_request(chat({"role": "user", "content": "b@example.org"}), ALL, [])
    assert a.nonce != b.nonce
    assert b.restore(next(iter(a.originals))) == next(iter(a.originals))  # a's placeholder means nothing to b


def test_restore_a_json_completion_touches_only_the_choices():
    body = chat({"role": "user", "content": "mail jane@example.org"})
    _, red = redact_request(body, ALL, [])
    ph = next(iter(red.originals))
    comp = {"id": "c", "choices": [{"index": 0, "message": {"role": "assistant", "content": f"Wrote to {ph}.",
                                                            "tool_calls": [{"function": {"arguments": f'"{ph}"'}}]}}],
            "echo": ph}
    got = json.loads(restore_completion(json.dumps(comp).encode(), red))
    assert got["choices"][0]["message"]["content"] == "Wrote to jane@example.org."
    assert got["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == '"jane@example.org"'
    assert got["echo"] == ph


def test_json_restorer_holds_the_answer_until_it_is_whole():
    _, red = redact_request(chat({"role": "user", "content": "mail jane@example.org"}), ALL, [])
    ph = next(iter(red.originals))
    raw = json.dumps({"choices": [{"index": 0, "message": {"content": f"to {ph}"}}]}).encode()
    r = JSONRestorer(red, limit=1 << 20)
    cut = raw.index(b"_1_") + 1
    assert r.feed(raw[:cut]) == b""
    assert json.loads(r.feed(raw[cut:], end=True))["choices"][0]["message"]["content"] == "to jane@example.org"


def _sse(deltas: list[str], finish: bool = True) -> bytes:
    ev = [json.dumps({"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"content": d},
                                                            "finish_reason": None}]}) for d in deltas]
    if finish:
        ev.append(json.dumps({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    return b"".join(b"data: " + e.encode() + b"\n\n" for e in ev) + b"data: [DONE]\n\n"


def _content(stream: bytes) -> str:
    out = ""
    for line in stream.split(b"\n"):
        if line.startswith(b"data: {"):
            for c in json.loads(line[6:])["choices"]:
                out += c["delta"].get("content") or ""
    return out


def _pieces(ph: str) -> list[str]:
    return ["Dear ", ph[:3], ph[3:9], ph[9:] + ", your", " order"]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), max_size=12), finish=st.booleans())
def test_sse_restores_placeholders_split_across_events_and_network_chunks(cuts, finish):
    _, red = redact_request(chat({"role": "user", "content": "I am Jane, jane@example.org"}), ALL,
                            [("PERSON", "Jane")])
    ph = next(p for p, v in red.originals.items() if v == "Jane")
    stream = _sse(_pieces(ph), finish)
    r = SSERestorer(red)
    bounds = sorted({c % len(stream) for c in cuts} | {0, len(stream)})
    got = b"".join(r.feed(stream[a:b], end=b == len(stream)) for a, b in zip(bounds, bounds[1:]))
    assert _content(got) == "Dear Jane, your order"
    assert got.rstrip().endswith(b"data: [DONE]")


def test_sse_leaves_text_that_only_looks_like_a_placeholder_start():
    _, red = redact_request(chat({"role": "user", "content": "jane@example.org"}), ALL, [])
    got = SSERestorer(red).feed(_sse(["see [1", "] and [note", "s]"]), end=True)
    assert _content(got) == "see [1] and [notes]"


def test_redact_text_without_entities_returns_the_same_string():
    _, red = redact_request(chat({"role": "user", "content": "x"}), ALL, [])
    s = "What is the capital of France?"
    assert redact_text(s, ALL, [], red) is s


# ── the other API shapes: legacy completions and the Responses API ─────────────────────────────────────
def test_completions_prompt_and_responses_input_and_instructions_are_redacted():
    out, _ = redact_request({"model": "auto", "prompt": ["mail jane@example.org", "ssn 078-05-1120"]}, ALL, [])
    assert "jane@example.org" not in json.dumps(out) and "078-05-1120" not in json.dumps(out)
    body = {"model": "auto", "instructions": "Reply to jane@example.org",
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "key sk-proj-"
                                                    "Zq8vT2mWx4Kp9Lr7Ns3Bd6Fh1Jc5Gy0A"}]}]}
    out, red = redact_request(body, ALL, [])
    assert "jane@example.org" not in json.dumps(out) and "sk-proj" not in json.dumps(out)
    assert set(red.counts) == {"EMAIL_ADDRESS", "SECRET"}
    out, _ = redact_request({"model": "auto", "input": "mail jane@example.org"}, ALL, [])
    assert out["input"].startswith("mail [EMAIL_1_")


def test_restore_legacy_completions_and_responses_objects():
    _, red = redact_request({"model": "auto", "prompt": "mail jane@example.org"}, ALL, [])
    ph = next(iter(red.originals))
    legacy = {"choices": [{"index": 0, "text": f"to {ph}"}]}
    assert json.loads(restore_completion(json.dumps(legacy).encode(), red))["choices"][0]["text"] == \
        "to jane@example.org"
    resp = {"object": "response", "output": [{"type": "message", "content": [{"type": "output_text",
                                                                              "text": f"to {ph}"}]}]}
    got = json.loads(restore_completion(json.dumps(resp).encode(), red))
    assert got["output"][0]["content"][0]["text"] == "to jane@example.org"


def test_sse_restores_legacy_completions_and_responses_streams():
    _, red = redact_request({"model": "auto", "prompt": "mail jane@example.org"}, ALL, [])
    ph = next(iter(red.originals))
    legacy = b"".join(b"data: " + json.dumps({"choices": [{"index": 0, "text": t, "finish_reason": f}]}).encode()
                      + b"\n\n" for t, f in (("to ", None), (ph[:5], None), (ph[5:], None), ("", "stop")))
    got = SSERestorer(red).feed(legacy + b"data: [DONE]\n\n", end=True)
    text = "".join(c["text"] for ln in got.split(b"\n") if ln.startswith(b"data: {")
                   for c in json.loads(ln[6:])["choices"])
    assert text == "to jane@example.org"

    def ev(kind, **kw):
        return (f"event: {kind}\n".encode() + b"data: "
                + json.dumps({"type": kind, "item_id": "m1", "content_index": 0, **kw}).encode() + b"\n\n")
    stream = (ev("response.output_text.delta", delta="to " + ph[:4]) + ev("response.output_text.delta", delta=ph[4:])
              + ev("response.output_text.delta", delta=" ok [") + ev("response.output_text.done", text=f"to {ph} ok [")
              + ev("response.completed", response={"output": [{"content": [{"text": f"to {ph} ok ["}]}]}))
    got = SSERestorer(red).feed(stream, end=True)
    events = [json.loads(ln[6:]) for ln in got.split(b"\n") if ln.startswith(b"data: {")]
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == \
        "to jane@example.org ok ["
    assert events[-2]["text"] == "to jane@example.org ok ["
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == "to jane@example.org ok ["
