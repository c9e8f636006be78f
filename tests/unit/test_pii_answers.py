"""router_extproc/pii/answers.py: which answers carry PII of their own (and so are never stored)."""

from router_extproc.pii.answers import answer_pii_types


def _answer(content=None, arguments=None):
    msg = {"role": "assistant", "content": content}
    if arguments is not None:
        msg["tool_calls"] = [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]
    return {"choices": [{"index": 0, "message": msg, "finish_reason": "stop"}]}


def test_a_plain_answer_has_none():
    assert answer_pii_types(_answer("The capital of France is Paris, home to 2.1 million people.")) == set()


def test_contact_details_in_the_text_are_found():
    found = answer_pii_types(_answer("Reach Dana at dana.kowalski@gmail.com or +1 415 555 0134."))
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER"} <= found


def test_tool_call_arguments_and_content_parts_are_read():
    assert "EMAIL_ADDRESS" in answer_pii_types(_answer(None, '{"to": "dana.kowalski@gmail.com"}'))
    parts = [{"type": "text", "text": "SSN 078-05-1120 on file"}]
    assert answer_pii_types(_answer(parts))


def test_odd_shapes_carry_no_text():
    assert answer_pii_types({"choices": ["x", {"message": "y"}, {"message": {"tool_calls": [3]}}]}) == set()
    assert answer_pii_types({}) == set()


def test_the_operators_persona_name_in_an_answer_is_not_personal_data_but_another_name_is():
    persona = frozenset({"ava"})
    assert answer_pii_types(_answer("Hi Ava! Solar, wind and hydro."), persona) == set()
    assert "PERSON" in answer_pii_types(_answer("Hi Ava! Solar, wind and hydro."))
    assert "PERSON" in answer_pii_types(_answer("Hi Olen, solar, wind and hydro."), persona)
