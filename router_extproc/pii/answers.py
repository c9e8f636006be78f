"""Whether an upstream answer carries PII, read before the answer is stored in the cache.

A prompt with PII is never cached (signals); an answer can carry PII of its own (a model quoting an e-mail address
from its tools, inventing a phone number), and a stored answer is replayed to every later asker in its scope. The
rules alone decide (RE2, linear in the text, no model pass), so the check stays cheap on the response path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..openai import content_text
from .rules import rule_entities


def _texts(completion: Mapping[str, Any]) -> Iterator[str]:
    for choice in completion.get("choices") or ():
        msg = choice.get("message") if isinstance(choice, Mapping) else None
        if not isinstance(msg, Mapping):
            continue
        yield content_text(msg.get("content"))
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping) and isinstance(fn.get("arguments"), str):
                yield fn["arguments"]


def answer_pii_types(completion: Mapping[str, Any], persona: frozenset[str] = frozenset()) -> set[str]:
    """The PII types the rules find in an answer's text and tool-call arguments (empty: none). ``persona``: the
    casefolded words of the names the operator gave the assistant (signals/inputs.operator_names); an answer that
    greets or signs with them ("Hi! I'm Ava") carries no one's personal data, as in the request."""
    return {e[2] for text in _texts(completion) if text for e in rule_entities(text)
            if not (e[2] == "PERSON" and persona and frozenset(text[e[0]:e[1]].casefold().split()) <= persona)}
