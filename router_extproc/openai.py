"""OpenAI chat-completions shapes: request parsing and validation, error bodies, completions and SSE.

Nothing here knows about gRPC or Envoy; the server turns these values into ext_proc messages.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
RESPONSES_PATH = "/v1/responses"
MODELS_PATH = "/v1/models"
# The API paths whose bodies the router reads, guards and routes. Envoy routes these (and the router-answered
# MODELS_PATH) and nothing else unless the operator passes a path through explicitly: one list for both sides.
ROUTED_PATHS = (CHAT_PATH, COMPLETIONS_PATH, RESPONSES_PATH)


@dataclass(frozen=True, slots=True)
class APIError(Exception):
    """An error the router answers itself, in OpenAI's error shape."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None

    def body(self) -> bytes:
        return error_body(self.message, type=self.type, param=self.param, code=self.code)


def error_body(message: str, *, type: str, param: str | None = None, code: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": type, "param": param, "code": code}}
    ).encode()


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of text that a request sends to a model, and who wrote it.

    Every API shape (chat, legacy completions, Responses) is reduced to segments, so the signals stage decides
    in one place which roles each signal reads (the operator's system prompt is trusted; user turns and tool
    results are not)."""

    role: str    # system | developer | user | assistant | tool | function | tool_spec | document
    text: str
    turn: int    # index of the message (or input item) it came from; -1 for request-level text (tools, documents)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request. `body` is the parsed JSON, kept whole so every field the
    router does not own survives the rewrite."""

    body: dict[str, Any]
    model: str
    messages: list[dict[str, Any]]
    stream: bool

    @property
    def temperature(self) -> float:
        # OpenAI's default is 1.0: a missing temperature is a sampled request, not a greedy one.
        t = self.body.get("temperature")
        return 1.0 if t is None else float(t)

    def segments(self) -> tuple[Segment, ...]:
        """Every piece of text this request sends to a model, with who wrote it (signals/inputs.py decides which
        signal reads which role). Empty texts are kept out; image and audio parts carry no text."""
        out: list[Segment] = []
        for turn, m in enumerate(self.messages):
            role = m["role"]
            text = content_text(m.get("content"))
            if text:
                out.append(Segment(role, text, turn))
            # Tool-call arguments are text a model reads back in later turns: an injection can ride in them.
            calls = m.get("tool_calls") if isinstance(m.get("tool_calls"), list) else []
            for call in [*calls, m.get("function_call")]:
                fn = call.get("function", call) if isinstance(call, dict) else None
                args = fn.get("arguments") if isinstance(fn, dict) else None
                if args:
                    out.append(Segment(role, args if isinstance(args, str) else json.dumps(args), turn))
        tools = self.body.get("tools") if isinstance(self.body.get("tools"), list) else []
        functions = self.body.get("functions") if isinstance(self.body.get("functions"), list) else []
        for spec in [*tools, *functions]:
            fn = spec.get("function", spec) if isinstance(spec, dict) else None
            text = "\n".join(_descriptions(fn)) if isinstance(fn, dict) else ""
            if text:
                out.append(Segment("tool_spec", text, -1))
        docs = self.body.get("documents")
        for doc in docs if isinstance(docs, list) else []:
            text = "\n".join(_document_strings(doc))
            if text:
                out.append(Segment("document", text, -1))
        return tuple(out)

    def last_user_text(self) -> str:
        for m in reversed(self.messages):
            if m.get("role") == "user":
                return content_text(m.get("content"))
        return ""


def _descriptions(fn: dict[str, Any]) -> list[str]:
    """A function spec's description and every description in its parameters' JSON schema, at any depth."""
    out: list[str] = []
    stack: list[Any] = [fn]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("description"), str) and node["description"]:
                out.append(node["description"])
            stack.extend(reversed([v for v in node.values() if isinstance(v, (dict, list))]))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return out


def _document_strings(value: Any) -> list[str]:
    """Every string in a JSON value (a document is a string, or an object such as {"title", "text"} or
    Cohere's {"data": {...}}), depth-first, without recursion."""
    out: list[str] = []
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if node:
                out.append(node)
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return out


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TEXT_PARTS = ("text", "input_text")


def content_text(content: Any) -> str:
    """Text of a message's content: a string, or the text of a content-part list (`text` and `input_text` parts,
    and bare strings). Image and audio parts carry no text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            p if isinstance(p, str) else p["text"] for p in content
            if isinstance(p, str) or (isinstance(p, dict) and p.get("type") in TEXT_PARTS
                                      and isinstance(p.get("text"), str))
        )
    return ""


def _require_type(obj: dict[str, Any], key: str, types: tuple[type, ...], label: str) -> None:
    if key in obj and obj[key] is not None:
        value = obj[key]
        if isinstance(value, bool) and bool not in types:
            raise APIError(400, f"'{key}' must be {label}", param=key, code="invalid_type")
        if not isinstance(value, types):
            raise APIError(400, f"'{key}' must be {label}", param=key, code="invalid_type")


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse and validate a chat-completions body; raise APIError (400) with a precise message."""
    try:
        # Decode explicitly: json.loads(bytes) would guess UTF-16/32 from the first bytes.
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise APIError(400, "Request body is not valid UTF-8", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise APIError(
            400, f"Request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    except RecursionError:
        raise APIError(400, "Request body is nested too deeply", code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "Request body must be a JSON object", code="invalid_json")

    model = body.get("model")
    if model is None:
        raise APIError(400, "'model' is required", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise APIError(400, "'model' must be a non-empty string", param="model", code="invalid_type")

    messages = body.get("messages")
    if messages is None:
        raise APIError(400, "'messages' is required", param="messages", code="missing_required_parameter")
    if not isinstance(messages, list) or not messages:
        raise APIError(400, "'messages' must be a non-empty array", param="messages", code="invalid_type")
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise APIError(400, f"'{where}' must be an object", param=where, code="invalid_type")
        role = m.get("role")
        # An unhashable role (list/object) made `in frozenset` raise TypeError (a 500).
        if not isinstance(role, str) or role not in _ROLES:
            raise APIError(
                400, f"'{where}.role' must be one of {', '.join(sorted(_ROLES))}",
                param=f"{where}.role", code="invalid_value",
            )
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise APIError(
                400, f"'{where}.content' must be a string or an array of content parts",
                param=f"{where}.content", code="invalid_type",
            )
        if content is None and role in ("system", "developer", "user"):
            raise APIError(400, f"'{where}.content' is required", param=f"{where}.content",
                           code="missing_required_parameter")

    _require_type(body, "stream", (bool,), "a boolean")
    _require_type(body, "temperature", (int, float), "a number")
    _require_type(body, "top_p", (int, float), "a number")
    _require_type(body, "n", (int,), "an integer")
    _require_type(body, "max_tokens", (int,), "an integer")
    _require_type(body, "max_completion_tokens", (int,), "an integer")
    _require_type(body, "seed", (int,), "an integer")
    _require_type(body, "tools", (list,), "an array")
    _require_type(body, "response_format", (dict,), "an object")
    _require_type(body, "stream_options", (dict,), "an object")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise APIError(400, "'temperature' must be between 0 and 2", param="temperature",
                       code="invalid_value")
    if body.get("n") is not None and body["n"] < 1:
        raise APIError(400, "'n' must be at least 1", param="n", code="invalid_value")

    return ChatRequest(body=body, model=model, messages=messages, stream=bool(body.get("stream")))


def dump_body(body: dict[str, Any]) -> bytes:
    # Compact separators and no ASCII escaping keep the rewritten body close to what clients send.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def models_list(models: Iterable[tuple[str, str]]) -> bytes:
    """`GET /v1/models`: (id, owner) pairs, including the auto-model names."""
    now = int(time.time())
    return json.dumps(
        {"object": "list", "data": [{"id": m, "object": "model", "created": now, "owned_by": o}
                                    for m, o in models]}
    ).encode()


def completion(model: str, content: str, *, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": new_completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }

