"""OpenAI API shapes: parsing and validation of chat-completions, legacy completions and Responses requests,
the API paths, error bodies, completions and SSE.

Nothing here knows about gRPC or Envoy; the server turns these values into ext_proc messages.
"""

from __future__ import annotations

import gc
import json
import math
import posixpath
import re
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
RESPONSES_PATH = "/v1/responses"
MODELS_PATH = "/v1/models"
# The API paths whose bodies the router reads, guards and routes. Envoy routes these (and the router-answered
# MODELS_PATH) and nothing else unless the operator passes a path through explicitly: one list for both sides.
ROUTED_PATHS = (CHAT_PATH, COMPLETIONS_PATH, RESPONSES_PATH)
# Endings of paths that carry prompts on some server: a path ending so that the router does not handle is
# refused, never forwarded unread (a mounted prefix such as /openai/v1/chat/completions included).
_PROMPT_ENDINGS = ("/completions", "/responses", "/messages", "/generate", "/embeddings", "/chat")


def canonical_path(raw: str) -> str:
    """The path as a lenient upstream server would resolve it: query and fragment dropped, percent-escapes
    decoded (repeatedly, so %252F cannot hide a slash), backslashes as slashes, runs of slashes merged, dot
    segments resolved, trailing slash dropped, case folded. Envoy normalises too (see envoy_config.py); the
    router does it again so no spelling of a routed path can skip the guards, whatever Envoy's config."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    for _ in range(4):
        decoded = urllib.parse.unquote(path, errors="replace")
        if decoded == path:
            break
        path = decoded
    path = path.split("?", 1)[0].split("#", 1)[0]   # an encoded "?" still ends the path for the upstream
    path = posixpath.normpath("/" + path.replace("\\", "/"))
    path = "/" + path.lstrip("/")   # normpath keeps a leading "//"
    return path.rstrip("/").lower() or "/"


def looks_like_api(path: str) -> bool:
    """A canonical path that an OpenAI-compatible upstream may answer with a model: never forwarded unread."""
    return path == "/v1" or path.startswith("/v1/") or path.endswith(_PROMPT_ENDINGS)


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
        t = self.body.get("temperature")
        return DEFAULT_TEMPERATURE if t is None else float(t)

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


_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TEXT_PARTS = ("text", "input_text")
# OpenAI's default: a missing temperature is a sampled request, not a greedy one (the cache policy reads it too).
DEFAULT_TEMPERATURE = 1.0


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


def part_text(part: Any) -> str | None:
    """Text of one chat content part (a `text` or `input_text` part, or a bare string); None for a part that
    carries no text (image, audio, file). The one rule both the signal inputs and the cache key read."""
    if isinstance(part, str):
        return part
    if isinstance(part, Mapping) and part.get("type") in TEXT_PARTS and isinstance(part.get("text"), str):
        return part["text"]
    return None


def content_text(content: Any) -> str:
    """Text of a message's content: a string, or the text of a content-part list. Image and audio parts carry
    no text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in map(part_text, content) if t is not None)
    return ""


def _require_type(obj: dict[str, Any], key: str, types: tuple[type, ...], label: str) -> None:
    if key in obj and obj[key] is not None:
        value = obj[key]
        if isinstance(value, bool) and bool not in types:
            raise APIError(400, f"'{key}' must be {label}", param=key, code="invalid_type")
        if not isinstance(value, types):
            raise APIError(400, f"'{key}' must be {label}", param=key, code="invalid_type")


# Deeper JSON than any real request needs. Python's decoder accepts ~990 levels, but every later recursive pass
# (cache-key canonical JSON, deepcopy, logging) then runs out of stack: refuse it at the door with a 400.
MAX_JSON_DEPTH = 64
# More JSON values than any real request carries (a 200-turn conversation has ~1,000; large tool schemas a few
# thousand). 8 MiB of `0,0,0,...` is 4 M values: checking and re-encoding them (literal-repeat and cache keys,
# the rewrite) took seconds of CPU for one request; now only the C decoder's pass over them is paid.
MAX_JSON_VALUES = 100_000
# Integers beyond int64 are no valid value for any OpenAI field, and float() of a 400-digit integer raises.
_INT_LIMIT = 2**63
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> float:
    raise APIError(400, f"Request body is not valid JSON: {name} is not a JSON number", code="invalid_json")


def load_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or APIError(400) with a precise reason. Every value that the later
    stages could not encode, hash or log (lone surrogates, non-finite or oversized numbers, deep nesting) is
    refused here, so no later stage has to defend against it."""
    try:
        # Decode explicitly: json.loads(bytes) would guess UTF-16/32 from the first bytes.
        body = _decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise APIError(400, "Request body is not valid UTF-8", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise APIError(
            400, f"Request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            code="invalid_json",
        ) from None
    except RecursionError:
        raise APIError(400, "Request body is nested too deeply", code="invalid_json") from None
    except ValueError as exc:
        # int() refuses integers of more than 4,300 digits (CVE-2020-10735 guard) with a plain ValueError.
        raise APIError(400, f"Request body has a number out of range: {str(exc)[:80]}",
                       code="invalid_json") from None
    if not isinstance(body, dict):
        raise APIError(400, "Request body must be a JSON object", code="invalid_json")
    _check_values(body, strings=_SURROGATE_ESCAPE.search(raw) is not None)
    return body


def _decode(text: str) -> Any:
    if len(text) < 64 * 1024:
        return json.loads(text, parse_constant=_reject_constant)
    # Millions of small containers (8 MiB of `[],[],...`) trigger a cyclic-GC pass every few hundred allocations:
    # 0.9 s to decode instead of 0.23 s. Decoded JSON has no cycles, so nothing is lost by pausing it.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return json.loads(text, parse_constant=_reject_constant)
    finally:
        if was_enabled:
            gc.enable()


def _too_many_values() -> APIError:
    return APIError(400, f"Request body has more than {MAX_JSON_VALUES} JSON values", code="invalid_json")


def _check_values(body: dict[str, Any], *, strings: bool) -> None:
    """Depth, size, number range and (when the raw body had a surrogate escape) string encodability, without
    recursion."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise APIError(400, f"Request body is nested more than {MAX_JSON_DEPTH} levels deep",
                           code="invalid_json")
        count += len(node)
        if count > MAX_JSON_VALUES:
            raise _too_many_values()
        values = node.values() if isinstance(node, dict) else node
        if strings and isinstance(node, dict):
            for k in node:
                _check_string(k)
        for v in values:
            t = type(v)
            if t is dict or t is list:
                stack.append((v, depth + 1))
            elif t is str:
                if strings:
                    _check_string(v)
            elif t is int:
                if not -_INT_LIMIT <= v < _INT_LIMIT:
                    raise APIError(400, "Request body has an integer outside the 64-bit range",
                                   code="invalid_value")
            elif t is float and not math.isfinite(v):
                raise APIError(400, "Request body has a number out of range", code="invalid_value")


def _check_string(s: str) -> None:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise APIError(400, "Request body has a lone UTF-16 surrogate escape (\\ud800-\\udfff): "
                           "not valid Unicode text", code="invalid_json") from None


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse and validate a chat-completions body; raise APIError (400) with a precise message."""
    body = load_json_object(raw)

    model = _require_model(body)
    messages = _required(body, "messages")
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

    _check_sampling(body)
    _require_type(body, "max_completion_tokens", (int,), "an integer")
    _require_type(body, "tools", (list,), "an array")
    _require_type(body, "response_format", (dict,), "an object")
    return ChatRequest(body=body, model=model, messages=messages, stream=bool(body.get("stream")))


def _required(body: dict[str, Any], key: str) -> Any:
    value = body.get(key)
    if value is None:
        raise APIError(400, f"'{key}' is required", param=key, code="missing_required_parameter")
    return value


def _require_model(body: dict[str, Any]) -> str:
    model = _required(body, "model")
    if not isinstance(model, str) or not model:
        raise APIError(400, "'model' must be a non-empty string", param="model", code="invalid_type")
    return model


def _check_sampling(body: dict[str, Any]) -> None:
    """The fields every generation API shares, checked the same way for chat, completions and responses."""
    _require_type(body, "stream", (bool,), "a boolean")
    _require_type(body, "temperature", (int, float), "a number")
    _require_type(body, "top_p", (int, float), "a number")
    _require_type(body, "n", (int,), "an integer")
    _require_type(body, "max_tokens", (int,), "an integer")
    _require_type(body, "seed", (int,), "an integer")
    _require_type(body, "stream_options", (dict,), "an object")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise APIError(400, "'temperature' must be between 0 and 2", param="temperature",
                       code="invalid_value")
    if body.get("n") is not None and body["n"] < 1:
        raise APIError(400, "'n' must be at least 1", param="n", code="invalid_value")


# ── legacy completions and the Responses API ──────────────────────────────────────────────────────────
# Both are reduced to the same protocol as ChatRequest (body, model, stream, segments()), so they pass the
# same signals, guards, decision and model rewrite. Neither is cached (see docs/cache.md).


def _joined(segments: list[Segment], roles: tuple[str, ...]) -> str:
    return "\n".join(s.text for s in segments if s.role in roles and s.text)


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """`POST /v1/completions`: `prompt` as a string or a list of strings (each one a prompt of its own);
    `suffix` is text the model sees too."""

    body: dict[str, Any]
    model: str
    prompts: tuple[str, ...]
    stream: bool
    api = "completions"

    def segments(self) -> list[Segment]:
        # The strings of a list prompt are one client's batch of prompts, sent at once: one user text, a prompt a
        # line. Read as separate turns they were a conversation (history weights, a short "follow-up" borrowing the
        # one before) and each was judged alone, though one is often a short template the guard cannot judge on
        # its own: ["Say hi.", "Say bye."] was blocked as a jailbreak because "Say bye." alone scored 0.75. An
        # attack in any one of them is still in the text the guard reads.
        text = "\n".join(p for p in self.prompts if p)
        out = [Segment("user", text, 0)] if text else []
        suffix = self.body.get("suffix")
        if isinstance(suffix, str) and suffix:
            out.append(Segment("user", suffix, -1))
        return out

    def prompt_text(self) -> str:
        return _joined(self.segments(), ("user",))

    def last_user_text(self) -> str:
        return self.prompts[-1] if self.prompts else ""


def parse_completion_request(raw: bytes) -> CompletionRequest:
    body = load_json_object(raw)
    model = _require_model(body)
    prompt = _required(body, "prompt")
    if isinstance(prompt, str):
        prompts: tuple[str, ...] = (prompt,)
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = tuple(prompt)
    elif isinstance(prompt, list) and prompt and all(
            type(p) is int or (isinstance(p, list) and all(type(t) is int for t in p)) for p in prompt):
        # The router has no tokenizer of the served model: it cannot read token ids, so it cannot guard them.
        raise APIError(400, "Token-id prompts are not supported by this router: send the prompt as text",
                       param="prompt", code="unsupported_prompt_type")
    else:
        raise APIError(400, "'prompt' must be a string or a non-empty array of strings", param="prompt",
                       code="invalid_type")
    _require_type(body, "suffix", (str,), "a string")
    _require_type(body, "best_of", (int,), "an integer")
    _check_sampling(body)
    return CompletionRequest(body=body, model=model, prompts=prompts, stream=bool(body.get("stream")))


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """`POST /v1/responses`: `input` (a string or a list of items) and `instructions`.

    With `previous_response_id` or `conversation` the upstream adds stored history the router never sees:
    the guards read what the request carries, and `history_hidden` says so (it is logged)."""

    body: dict[str, Any]
    model: str
    stream: bool
    items: tuple[Segment, ...]
    api = "responses"

    @property
    def history_hidden(self) -> bool:
        return bool(self.body.get("previous_response_id") or self.body.get("conversation"))

    def segments(self) -> list[Segment]:
        return list(self.items)

    def prompt_text(self) -> str:
        # Tool results are read as untrusted input; assistant items are model output (as for chat).
        return _joined(self.segments(), ("system", "developer", "user", "tool"))

    def last_user_text(self) -> str:
        users = [s.text for s in self.items if s.role == "user" and s.text]
        return users[-1] if users else ""


_RESPONSES_ROLES = frozenset({"system", "developer", "user", "assistant"})
# Keys of an input item that never carry text a model reads.
_ITEM_META = frozenset({"type", "id", "call_id", "status", "role", "detail", "image_url", "file_id", "file_url",
                        "file_data", "data", "format", "mime_type", "encrypted_content"})


def _strings(value: Any, out: list[str]) -> None:
    """Every string a model would read in an item of a type the router does not know (bounded by the
    parser's depth limit), so an unknown item can never carry text past the guards."""
    if isinstance(value, str):
        if value:
            out.append(value)
    elif isinstance(value, list):
        for v in value:
            _strings(v, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in _ITEM_META:
                _strings(v, out)


def _part_text(part: Any, where: str) -> str:
    """Text of one content part: input_text / output_text / text / refusal / summary_text, or a bare string.
    Images, audio and files contribute no text (the router has no reader for them)."""
    if isinstance(part, str):
        return part
    if not isinstance(part, dict):
        raise APIError(400, f"'{where}' must be an object or a string", param=where, code="invalid_type")
    texts: list[str] = []
    _strings(part, texts)
    return "\n".join(texts)


def _item_segments(item: Any, turn: int) -> list[Segment]:
    where = f"input[{turn}]"
    if not isinstance(item, dict):
        raise APIError(400, f"'{where}' must be an object", param=where, code="invalid_type")
    kind = item.get("type", "message")
    if not isinstance(kind, str):
        raise APIError(400, f"'{where}.type' must be a string", param=f"{where}.type", code="invalid_type")
    if kind == "message":
        role = item.get("role")
        if not isinstance(role, str) or role not in _RESPONSES_ROLES:
            raise APIError(400, f"'{where}.role' must be one of {', '.join(sorted(_RESPONSES_ROLES))}",
                           param=f"{where}.role", code="invalid_value")
        content = item.get("content")
        if isinstance(content, str):
            return [Segment(role, content, turn)]
        if not isinstance(content, list):
            raise APIError(400, f"'{where}.content' must be a string or an array of content parts",
                           param=f"{where}.content", code="invalid_type")
        # one message's parts are one text, as for chat (content_text): a part alone ("Say bye.") is no turn
        text = "\n".join(t for t in (_part_text(p, f"{where}.content[{j}]") for j, p in enumerate(content)) if t)
        return [Segment(role, text, turn)] if text else []
    if kind == "item_reference":
        return []   # a stored item the router cannot see, like previous_response_id
    texts: list[str] = []
    _strings(item, texts)
    # Tool results come back into the model's context from outside: the guards treat them as untrusted input.
    role = "tool" if kind.endswith("_output") else "assistant"
    return [Segment(role, t, turn) for t in texts]


def _tool_spec_segments(tools: Any) -> list[Segment]:
    if not isinstance(tools, list):
        return []
    texts: list[str] = []
    for tool in tools:
        if isinstance(tool, dict):
            # Descriptions and names reach the model's context; the JSON schema's structure does not need reading.
            _strings({k: v for k, v in tool.items() if k in ("name", "description", "parameters")}, texts)
    return [Segment("tool_spec", t, -1) for t in texts]


def parse_responses_request(raw: bytes) -> ResponsesRequest:
    body = load_json_object(raw)
    model = _require_model(body)
    segments: list[Segment] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise APIError(400, "'instructions' must be a string", param="instructions", code="invalid_type")
        segments.append(Segment("system", instructions, -1))
    inp = body.get("input")
    if isinstance(inp, str):
        segments.append(Segment("user", inp, 0))
    elif isinstance(inp, list):
        for i, item in enumerate(inp):
            segments.extend(_item_segments(item, i))
    elif inp is not None:
        raise APIError(400, "'input' must be a string or an array of input items", param="input",
                       code="invalid_type")
    prompt = body.get("prompt")
    if isinstance(prompt, dict):
        texts: list[str] = []
        _strings(prompt.get("variables"), texts)
        segments.extend(Segment("user", t, -1) for t in texts)
    if inp is None and not body.get("previous_response_id") and not body.get("conversation") and not prompt:
        raise APIError(400, "'input' is required", param="input", code="missing_required_parameter")
    segments.extend(_tool_spec_segments(body.get("tools")))
    _check_sampling(body)
    _require_type(body, "max_output_tokens", (int,), "an integer")
    _require_type(body, "reasoning", (dict,), "an object")
    return ResponsesRequest(body=body, model=model, stream=bool(body.get("stream")), items=tuple(segments))


def responses_reasoning(body: dict[str, Any]) -> dict[str, Any]:
    """The Responses API spells chat's `reasoning_effort` as `reasoning.effort`: move what the rewrite set."""
    effort = body.pop("reasoning_effort", None)
    if effort is not None:
        body["reasoning"] = {**(body.get("reasoning") or {}), "effort": effort}
    return body


APIRequest = ChatRequest | CompletionRequest | ResponsesRequest
# The parser of each routed API path.
PARSERS = {CHAT_PATH: parse_chat_request, COMPLETIONS_PATH: parse_completion_request,
           RESPONSES_PATH: parse_responses_request}


def dump_body(body: dict[str, Any]) -> bytes:
    # Compact separators and no ASCII escaping keep the rewritten body close to what clients send.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def restamped(completion: Mapping[str, Any]) -> dict[str, Any]:
    """A (shallow) copy of a completion under a fresh id and the current time: what every replayed answer gets."""
    return {**completion, "id": new_completion_id(), "created": int(time.time())}


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

