"""Completion <-> SSE: cache a streamed answer as a plain completion, replay any completion as a stream.

* :func:`assemble_sse` turns a complete ``text/event-stream`` chat completion body into a ``chat.completion``
  dict, or ``None`` when the stream is incomplete (no ``data: [DONE]``, no finish reason), carries an error
  event, or is not parseable — such responses are never cached.
* :func:`render_sse` turns a completion into SSE bytes: a role chunk, content chunks, tool-call chunks,
  a finish chunk (with ``usage`` when requested), and ``data: [DONE]``; the id and created are fresh.
* :func:`refresh` gives a stored completion a fresh ``id`` and ``created``.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any, Mapping

from router_extproc.openai import new_completion_id, restamped

__all__ = ["assemble_sse", "render_sse", "refresh", "new_completion_id"]


def refresh(completion: Mapping[str, Any]) -> dict:
    """A deep copy under a fresh id and time: the caller may change it without touching the stored entry."""
    return restamped(copy.deepcopy(dict(completion)))


def _events(body: bytes | str):
    text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        data_lines = [ln[5:].lstrip(" ") if ln.startswith("data:") else None for ln in block.split("\n")]
        data = [d for d in data_lines if d is not None]
        if data:
            yield "\n".join(data)


def assemble_sse(body: bytes | str) -> dict | None:
    """The completion a finished SSE stream delivered, or ``None`` if it did not finish cleanly."""
    try:
        events = list(_events(body))
    except UnicodeDecodeError:
        return None
    if not events or events[-1].strip() != "[DONE]":
        return None
    meta: dict[str, Any] = {}
    choices: dict[int, dict] = {}
    usage = None
    for ev in events[:-1]:
        ev = ev.strip()
        if ev == "[DONE]":
            return None
        try:
            chunk = json.loads(ev)
        except (ValueError, RecursionError):   # bad JSON, a >4,300-digit integer, nesting beyond the stack
            return None
        if not isinstance(chunk, dict) or "error" in chunk:
            return None
        for k in ("id", "created", "model", "system_fingerprint", "service_tier"):
            if chunk.get(k) is not None and k not in meta:
                meta[k] = chunk[k]
        if chunk.get("usage"):
            usage = chunk["usage"]
        chunk_choices = chunk.get("choices") or []
        # Any chunk of another shape than OpenAI's makes the stream unstorable; the client still gets it all.
        if not isinstance(chunk_choices, list) or not all(_delta_ok(c) for c in chunk_choices):
            return None
        for c in chunk_choices:
            _add_delta(choices.setdefault(_index(c), {"role": None, "content": [], "refusal": [], "tools": {},
                                                      "finish_reason": None}), c)
    if not choices or any(st["finish_reason"] is None for st in choices.values()):
        return None
    out_choices = []
    for i in sorted(choices):
        st = choices[i]
        msg: dict[str, Any] = {"role": st["role"] or "assistant",
                               "content": "".join(st["content"]) if st["content"] or not st["tools"] else None}
        if st["refusal"]:
            msg["refusal"] = "".join(st["refusal"])
        if st["tools"]:
            msg["tool_calls"] = [
                {"id": t["id"], "type": t["type"], "function": {"name": t["name"], "arguments": "".join(t["arguments"])}}
                for _, t in sorted(st["tools"].items())
            ]
        out_choices.append({"index": i, "message": msg, "logprobs": None, "finish_reason": st["finish_reason"]})
    out = {"id": meta.get("id") or new_completion_id(), "object": "chat.completion",
           "created": meta.get("created") or int(time.time()), "model": meta.get("model", ""),
           "choices": out_choices}
    if meta.get("system_fingerprint"):
        out["system_fingerprint"] = meta["system_fingerprint"]
    if usage:
        out["usage"] = usage
    return out


def _index(obj: dict) -> int:
    i = obj.get("index", 0)
    return i if type(i) is int else -1


def _opt_str(x: Any) -> bool:
    return x is None or isinstance(x, str)


def _delta_ok(c: Any) -> bool:
    """A choice chunk of the shape _add_delta reads: objects, lists and strings where OpenAI has them."""
    if not isinstance(c, dict) or _index(c) < 0:
        return False
    delta = c.get("delta") or {}
    if not isinstance(delta, dict) or not _opt_str(c.get("finish_reason")):
        return False
    if not all(_opt_str(delta.get(k)) for k in ("role", "content", "refusal")):
        return False
    tools = delta.get("tool_calls") or []
    if not isinstance(tools, list):
        return False
    for tc in tools:
        fn = tc.get("function") or {} if isinstance(tc, dict) else None
        if (not isinstance(fn, dict) or _index(tc) < 0
                or not all(_opt_str(x) for x in (tc.get("id"), tc.get("type"), fn.get("name"),
                                                 fn.get("arguments")))):
            return False
    return True


def _add_delta(st: dict, c: dict) -> None:
    delta = c.get("delta") or {}
    if delta.get("role"):
        st["role"] = delta["role"]
    if delta.get("content"):
        st["content"].append(delta["content"])
    if delta.get("refusal"):
        st["refusal"].append(delta["refusal"])
    for tc in delta.get("tool_calls") or []:
        t = st["tools"].setdefault(_index(tc), {"id": None, "type": "function", "name": "", "arguments": []})
        if tc.get("id"):
            t["id"] = tc["id"]
        if tc.get("type"):
            t["type"] = tc["type"]
        fn = tc.get("function") or {}
        if fn.get("name"):
            t["name"] += fn["name"]
        if fn.get("arguments"):
            t["arguments"].append(fn["arguments"])
    if c.get("finish_reason"):
        st["finish_reason"] = c["finish_reason"]


def _split_text(text: str, size: int) -> list[str]:
    """Lossless split into pieces of about ``size`` characters, cut after a space where possible."""
    parts, i = [], 0
    while i < len(text):
        j = min(len(text), i + size)
        if j < len(text):
            k = text.rfind(" ", i + 1, j)
            if k > i:
                j = k + 1
        parts.append(text[i:j])
        i = j
    return parts


def render_sse(completion: Mapping[str, Any], *, chunk_chars: int = 64, include_usage: bool = False) -> bytes:
    """SSE bytes replaying ``completion`` as a ``chat.completion.chunk`` stream with a fresh id/created."""
    cid, created = new_completion_id(), int(time.time())
    model = completion.get("model", "")
    base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
    if completion.get("system_fingerprint"):
        base["system_fingerprint"] = completion["system_fingerprint"]
    out: list[bytes] = []

    def emit(choices: list, **extra) -> None:
        chunk = dict(base, choices=choices, **extra)
        out.append(b"data: " + json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n")

    choices = completion.get("choices") or [{"index": 0, "message": {"role": "assistant", "content": ""},
                                             "finish_reason": "stop"}]
    for c in choices:
        i = c.get("index", 0)
        msg = c.get("message") or {}
        emit([{"index": i, "delta": {"role": msg.get("role", "assistant"), "content": ""}, "logprobs": None,
               "finish_reason": None}])
        for piece in _split_text(msg.get("content") or "", chunk_chars):
            emit([{"index": i, "delta": {"content": piece}, "logprobs": None, "finish_reason": None}])
        if msg.get("refusal"):
            emit([{"index": i, "delta": {"refusal": msg["refusal"]}, "logprobs": None, "finish_reason": None}])
        for ti, tc in enumerate(msg.get("tool_calls") or []):
            emit([{"index": i, "delta": {"tool_calls": [dict(tc, index=ti)]}, "logprobs": None,
                   "finish_reason": None}])
        emit([{"index": i, "delta": {}, "logprobs": None, "finish_reason": c.get("finish_reason") or "stop"}])
    if include_usage and completion.get("usage"):
        emit([], usage=completion["usage"])
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)
