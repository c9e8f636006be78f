"""Redaction as a policy action: typed placeholders in what is forwarded, originals back in the answer.

One `Redaction` per request (it lives in the request's Exchange and dies with it): the mapping placeholder ->
original value is never logged, cached or shared. Placeholders carry a per-request nonce, `[EMAIL_1_k3v9qz]`,
chosen so that it appears nowhere in the request: a placeholder the user typed (`[EMAIL_1]`, or one copied from
another conversation) is never restored into a value, and one request's answer can only ever receive its own
values.

What is redacted: every string a request sends to a model (TEXT_FIELDS: chat messages with their contents, text
parts, bare string parts, tool-call arguments and tool results; a completions prompt; a Responses input and
instructions), scanned by the rules, plus every occurrence of a value the signal model found in the text it read
(names and addresses, which no rule finds). The text parts of one message are scanned each on its own and joined:
a value that only the joined text shows ("jane@exa" + "mple.org") becomes one placeholder in the part where it
starts and is cut from the next. Overlapping matches resolve to the longest span (a URL with its credentials
becomes one placeholder, not two nested ones).
"""
from __future__ import annotations

import json
import re
import secrets
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import re2

from .rules import Entity, rule_entities
from .taxonomy import LABEL

PLACEHOLDER = re2.compile(r"\[[A-Z_]{2,12}_\d{1,4}_[a-z0-9]{6}\]")
# Keys of a message whose strings never reach the model as text (ids, roles, function names, media).
_SKIP_KEYS = frozenset({"role", "type", "id", "tool_call_id", "name", "image_url", "input_audio", "file",
                        "audio", "refusal"})
_NONCE_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_MAX_HOLD = 40  # longest placeholder prefix an SSE restorer holds back


class Redaction:
    """The placeholder mapping of one request."""

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        self.originals: dict[str, str] = {}          # placeholder -> value
        self._by_value: dict[tuple[str, str], str] = {}
        self.counts: Counter[str] = Counter()        # type -> distinct values redacted

    def placeholder(self, pii_type: str, value: str) -> str:
        key = (pii_type, value)
        ph = self._by_value.get(key)
        if ph is None:
            self.counts[pii_type] += 1
            ph = f"[{LABEL[pii_type]}_{self.counts[pii_type]}_{self.nonce}]"
            self._by_value[key] = ph
            self.originals[ph] = value
        return ph

    def restore(self, text: str) -> str:
        if "[" not in text or self.nonce not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self.originals.get(m.group(0), m.group(0)), text)

    def __repr__(self) -> str:  # never the values
        return f"Redaction({dict(self.counts)})"


def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if k not in _SKIP_KEYS:
                yield from _strings(v)


def _map_strings(obj: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_strings(v, fn) for v in obj]
    if isinstance(obj, dict):
        return {k: (v if k in _SKIP_KEYS else _map_strings(v, fn)) for k, v in obj.items()}
    return obj


def new_nonce(body_text: str) -> str:
    while True:
        nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(6))
        if nonce not in body_text:
            return nonce


def _known_spans(text: str, known: Iterable[tuple[str, str]]) -> list[Entity]:
    """Whole-word occurrences of values the signal model found."""
    out: list[Entity] = []
    for typ, value in known:
        i = text.find(value)
        while i >= 0:
            e = i + len(value)
            if (i == 0 or not text[i - 1].isalnum()) and (e == len(text) or not text[e].isalnum()):
                out.append((i, e, typ, 0.8))
            i = text.find(value, e)
    return out


def _choose(spans: list[Entity]) -> list[Entity]:
    """Non-overlapping spans, the longest of each overlapping cluster first."""
    chosen: list[Entity] = []
    for s, e, t, sc in sorted(spans, key=lambda x: (-(x[1] - x[0]), x[0])):
        if all(e <= c[0] or s >= c[1] for c in chosen):
            chosen.append((s, e, t, sc))
    return sorted(chosen)


def _spans(text: str, types: frozenset[str], known: list[tuple[str, str]]) -> list[Entity]:
    return _choose([x for x in rule_entities(text) if x[2] in types] + _known_spans(text, known)) if text else []


def redact_text(text: str, types: frozenset[str], known: list[tuple[str, str]], red: Redaction) -> str:
    spans = _spans(text, types, known)
    if not spans:
        return text
    parts, last = [], 0
    for s, e, typ, _ in spans:
        parts += [text[last:s], red.placeholder(typ, text[s:e])]
        last = e
    parts.append(text[last:])
    return "".join(parts)


def _part_text(p: Any) -> str | None:
    if isinstance(p, str):
        return p
    if isinstance(p, dict) and p.get("type") in ("text", "input_text") and isinstance(p.get("text"), str):
        return p["text"]
    return None


def redact_parts(parts: list[Any], types: frozenset[str], known: list[tuple[str, str]], red: Redaction
                 ) -> list[Any]:
    """A content-part list with its text parts redacted as one text (see the module doc); other parts as usual."""
    idx = [i for i, p in enumerate(parts) if _part_text(p) is not None]
    texts = [_part_text(parts[i]) or "" for i in idx]
    starts = [sum(map(len, texts[:k])) for k in range(len(texts))]
    joined = "".join(texts)
    # each part on its own, plus the values only the joined text shows (one split across a boundary)
    spans = [(a + st, a + e, t, sc) for a, tx in zip(starts, texts) for st, e, t, sc in _spans(tx, types, known)]
    cuts = starts[1:]
    spans += [x for x in _spans(joined, types, known)
              if any(x[0] < c < x[1] for c in cuts) and not any(x[0] < y[1] and y[0] < x[1] for y in spans)]
    spans = sorted(spans)
    out = [p if i in idx else _map_strings(p, lambda s: redact_text(s, types, known, red))
           for i, p in enumerate(parts)]
    for k, i in enumerate(idx):
        a, b = starts[k], starts[k] + len(texts[k])
        pieces, last = [], a
        for s, e, typ, _ in spans:
            if e <= a or s >= b:
                continue
            pieces.append(joined[last:max(s, a)])
            if s >= a:  # the value starts in this part: its placeholder goes here
                pieces.append(red.placeholder(typ, joined[s:e]))
            last = min(e, b)
        pieces.append(joined[last:b])
        new = "".join(pieces)
        out[i] = new if isinstance(parts[i], str) else {**parts[i], "text": new}
    return out


# The body fields that carry text to the model: chat `messages`, legacy completions `prompt`, Responses `input`
# (a string or items shaped like messages) and `instructions`.
TEXT_FIELDS = ("messages", "prompt", "input", "instructions")


def redact_request(body: dict[str, Any], types: frozenset[str], known: Iterable[tuple[str, str]]
                   ) -> tuple[dict[str, Any], Redaction]:
    """A copy of a request body with every entity of `types` in its text fields replaced by a placeholder.

    `known`: (type, value) pairs the signal model found; values shorter than two characters are ignored (they
    would match inside too much ordinary text)."""
    fields = {k: body[k] for k in TEXT_FIELDS if k in body}
    red = Redaction(new_nonce("\n".join(_strings(fields))))
    values = sorted({(t, v) for t, v in known if t in types and len(v.strip()) >= 2}, key=lambda x: -len(x[1]))
    def text(s: str) -> str:
        return redact_text(s, types, values, red)

    def message(m: Any) -> Any:
        if not (isinstance(m, dict) and isinstance(m.get("content"), list)):
            return _map_strings(m, text)
        rest = _map_strings({k: v for k, v in m.items() if k != "content"}, text)
        return {**rest, "content": redact_parts(m["content"], types, values, red)}

    out = dict(body)
    for k, v in fields.items():
        out[k] = [message(m) for m in v] if isinstance(v, list) else _map_strings(v, text)
    return out, red


# ── the answer ─────────────────────────────────────────────────────────────────────────────────────────
def _restore_message(msg: Any, red: Redaction) -> None:
    if not isinstance(msg, dict):
        return
    for key in ("content", "reasoning_content", "reasoning", "text"):
        if isinstance(msg.get(key), str):
            msg[key] = red.restore(msg[key])
    calls = msg.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
            fn["arguments"] = red.restore(fn["arguments"])
    fc = msg.get("function_call")
    if isinstance(fc, dict) and isinstance(fc.get("arguments"), str):
        fc["arguments"] = red.restore(fc["arguments"])


def restore_completion(raw: bytes, red: Redaction) -> bytes:
    """A whole chat completion with the placeholders in its choices restored (other fields are left alone)."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw
    if not isinstance(obj, dict) or not (_restore_choices(obj, red) or _restore_output(obj, red)):
        return raw
    return json.dumps(obj, ensure_ascii=False).encode()


def _restore_choices(obj: dict, red: Redaction) -> bool:
    """Chat and legacy completions: choices[].message, choices[].text."""
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return False
    for c in choices:
        if isinstance(c, dict):
            _restore_message(c.get("message"), red)
            if isinstance(c.get("text"), str):
                c["text"] = red.restore(c["text"])
    return True


def _restore_output(obj: dict, red: Redaction) -> bool:
    """Responses API: output[].content[].text and function-call arguments."""
    output = obj.get("output")
    if not isinstance(output, list):
        return False
    if isinstance(obj.get("output_text"), str):  # the convenience field some servers add
        obj["output_text"] = red.restore(obj["output_text"])
    for item in output:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("arguments"), str):
            item["arguments"] = red.restore(item["arguments"])
        for part in item.get("content") if isinstance(item.get("content"), list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                part["text"] = red.restore(part["text"])
    return True


def _hold(text: str) -> int:
    """Where the tail of a streamed text may be the start of a placeholder (held back until the next chunk)."""
    i = text.rfind("[", max(0, len(text) - _MAX_HOLD))
    if i < 0 or any(not (c.isalnum() or c == "_") for c in text[i + 1:]):
        return len(text)
    return i


_EVENT_END = re.compile(rb"\r?\n\r?\n")


class SSERestorer:
    """Restores placeholders in an SSE stream (chat, legacy completions, Responses), chunk by chunk.

    A placeholder can be split across network chunks (an event cut in two) and across events (the model emits it
    token by token): complete events are rewritten, an incomplete event waits for the rest, and the tail of each
    choice's text that may begin a placeholder is held back and prepended to that choice's next delta."""

    def __init__(self, red: Redaction) -> None:
        self.red = red
        self._buf = b""
        self._pending: dict[tuple, str] = {}
        self._last: dict[str, Any] = {}

    def feed(self, chunk: bytes, end: bool = False) -> bytes:
        self._buf += chunk
        out: list[bytes] = []
        pos = 0
        for m in _EVENT_END.finditer(self._buf):
            out.append(self._event(self._buf[pos:m.start()]) + m.group(0))
            pos = m.end()
        self._buf = self._buf[pos:]
        if end:
            rest, self._buf = self._buf, b""
            out.append(self._flush() + (self._event(rest) if rest.strip() else rest))
        return b"".join(out)

    def _event(self, raw: bytes) -> bytes:
        lines = raw.split(b"\n")
        data = [i for i, ln in enumerate(lines) if ln.startswith(b"data:")]
        if len(data) != 1:
            return raw
        payload = lines[data[0]][5:].strip()
        if payload == b"[DONE]":
            flushed = self._flush()
            return flushed + raw if flushed else raw
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return raw
        if not isinstance(obj, dict):
            return raw
        if isinstance(obj.get("type"), str) and obj["type"].startswith("response."):
            return self._responses_event(obj, lines, data[0], raw)
        if not isinstance(obj.get("choices"), list):
            return raw
        self._last = {k: obj[k] for k in ("id", "object", "created", "model") if k in obj}
        changed = False
        for c in obj["choices"]:
            if not isinstance(c, dict):
                continue
            final = bool(c.get("finish_reason"))
            if isinstance(c.get("delta"), dict):
                changed |= self._delta(c.get("index", 0), c["delta"], final)
            elif isinstance(c.get("text"), str):  # legacy completions stream
                old = c["text"]
                c["text"] = self._text((c.get("index", 0), "text"), old, final)
                changed |= c["text"] != old
        if not changed:
            return raw
        lines[data[0]] = b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        return b"\n".join(lines)

    def _responses_event(self, obj: dict, lines: list[bytes], at: int, raw: bytes) -> bytes:
        """Responses API stream: output_text deltas are held back like chat deltas; `.done` events and the final
        response object carry the whole text and are restored as they are."""
        kind = obj["type"]
        key = ("response", obj.get("item_id"), obj.get("content_index"))
        prefix = b""
        if kind == "response.output_text.delta" and isinstance(obj.get("delta"), str):
            obj["delta"] = self._text(key, obj["delta"], False)
        elif kind == "response.output_text.done":
            rest = self._pending.pop(key, "")
            if rest:  # the held-back tail goes out as one more delta before the done event
                delta = {**obj, "type": "response.output_text.delta", "delta": self.red.restore(rest)}
                delta.pop("text", None)
                prefix = (b"event: response.output_text.delta\ndata: "
                          + json.dumps(delta, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n")
            if isinstance(obj.get("text"), str):
                obj["text"] = self.red.restore(obj["text"])
        elif isinstance(obj.get("response"), dict):
            _restore_output(obj["response"], self.red)
        elif isinstance(obj.get("item"), dict):
            _restore_output({"output": [obj["item"]]}, self.red)
        else:
            return raw
        lines[at] = b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        return prefix + b"\n".join(lines)

    def _text(self, key: tuple, text: str, final: bool) -> str:
        text = self._pending.pop(key, "") + text
        cut = len(text) if final else _hold(text)
        if cut < len(text):
            self._pending[key] = text[cut:]
        return self.red.restore(text[:cut])

    def _delta(self, index: Any, delta: dict, final: bool) -> bool:
        changed = False
        key = (index, "content")
        if isinstance(delta.get("content"), str) or (final and key in self._pending):
            old = delta.get("content")
            delta["content"] = self._text(key, old or "", final)
            changed = delta["content"] != old
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                old = fn["arguments"]
                fn["arguments"] = self._text((index, "tool", call.get("index", 0)), old, final)
                changed |= fn["arguments"] != old
        return changed

    def _flush(self) -> bytes:
        """Held-back text of a stream that ended without a finish_reason, as one more event."""
        if not self._pending:
            return b""
        choices, events = [], []
        for (index, kind, *rest), text in sorted(self._pending.items(), key=lambda kv: str(kv[0])):
            if index == "response":
                ev = {"type": "response.output_text.delta", "item_id": kind, "content_index": rest[0],
                      "delta": self.red.restore(text)}
                events.append(b"event: response.output_text.delta\ndata: "
                              + json.dumps(ev, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n")
                continue
            if kind == "text":
                choices.append({"index": index, "text": self.red.restore(text), "finish_reason": None})
                continue
            delta: dict[str, Any] = ({"content": self.red.restore(text)} if kind == "content" else
                                     {"tool_calls": [{"index": rest[0],
                                                      "function": {"arguments": self.red.restore(text)}}]})
            choices.append({"index": index, "delta": delta, "finish_reason": None})
        self._pending.clear()
        if not choices:
            return b"".join(events)
        obj = {**self._last, "choices": choices}
        return b"".join(events) + b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() \
            + b"\n\n"


class JSONRestorer:
    """Holds a JSON answer back until it is whole, then restores it (a placeholder can span network chunks)."""

    def __init__(self, red: Redaction, limit: int) -> None:
        self.red = red
        self.limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.gave_up = False

    def feed(self, chunk: bytes, end: bool = False) -> bytes:
        if self.gave_up:
            return chunk
        self._chunks.append(chunk)
        self._size += len(chunk)
        if self._size > self.limit:
            # too big to hold: pass it on as it came (placeholders left in place)
            self.gave_up = True
            out, self._chunks = b"".join(self._chunks), []
            return out
        if not end:
            return b""
        raw, self._chunks = b"".join(self._chunks), []
        return restore_completion(raw, self.red)
