"""What identifies a cache entry, and when the cache may be used at all.

Rules (each has a test in tests/unit/test_cache_keys.py):

* **Scope** — entries are partitioned by tenant: ``sha256`` of the configured headers present (default
  ``authorization`` and ``x-api-key``; a header that an auth filter in front of the router sets can be listed
  instead), hex[:32]; ``"anon"`` when none of them is present. Scope is a hard filter, never similarity.
  Anonymous requests are neither looked up nor stored unless ``cache_anonymous: true``: without a tenant, every
  client would share one scope.
* **Hard filters** (``filter_key``) — an allow-list, so that a field nobody thought of (``guided_json``,
  ``structured_outputs``, ``chat_template_kwargs``, ``documents``, ``reasoning``, ``top_k``, ``extra_body``, the
  next vLLM extension...) can never make two requests share an answer: EVERY request field is hashed into the
  filter key except those listed in ``_MAY_DIFFER`` — ``messages`` (split below), ``model`` (replaced by the chosen
  model), the sampling fields of the exact fingerprint (``temperature``, ``top_p``, penalties; ``max_tokens`` /
  ``max_completion_tokens`` count by tier), and fields that do not change the answer's content (``stream``,
  ``stream_options``, ``user``, ``metadata``, ``store``, ``service_tier``, ``safety_identifier``,
  ``prompt_cache_key``). ``stop`` is compared as a set. From ``messages``: the **system prompt** (exact), the
  turns older than the recent window (exact) and any non-text content (images, audio: hashed). None of these go
  into the embedding.
* **Exact only** (``CacheKey.exact_only``) — a request whose answer is a tool call or a structured output
  (``tools``/``functions`` present, ``response_format`` of type ``json_schema``/``json_object``, any ``guided_*``
  field, ``structured_outputs``; also inside ``extra_body``) is only ever served by a literal repeat: a similar
  question with other arguments must not get its call or its JSON.
* **Semantic text** (``text``) — the recent conversation (the last ``context_turns`` non-system messages, most
  recent last). A single-turn request embeds just the user message; multi-turn requests embed
  ``"role: content"`` lines. The system prompt is not embedded: it is an exact hard filter instead, which is
  stricter and keeps the embedding on the part that varies (the verifier is calibrated on question pairs).
* **Fingerprint** — hash of scope + filter parts + the full messages + temperature/top_p/penalties, each user
  message read through :func:`normalize_text`: equal fingerprints are the same request up to case, spacing,
  trailing punctuation, Unicode forms and a polite wrapper, served by the exact-match fast path without embedding.
  Quoted text and code are compared verbatim: there case and spacing can change the answer.
* **Policy** — anonymous requests (see Scope) are not cached by default; ``Cache-Control: no-cache`` (or
  ``Pragma: no-cache``) skips lookup, ``no-store`` skips storing; a prompt with PII is neither looked up nor
  stored; ``n > 1`` is not cached; a missing ``temperature`` is the OpenAI default 1.0, and requests above
  ``max_temperature`` (default 1.0, inclusive) are not cached, so the seed's temperature 0.7 flow is cached.
* **Responses** — only 2xx ``chat.completion`` objects with every choice finished by ``stop``/``tool_calls``
  (not ``length``/``content_filter``) and a body within ``max_response_bytes`` are stored.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Mapping

from router_extproc.config_cache import SemanticCacheConfig
from router_extproc.openai import DEFAULT_TEMPERATURE, part_text

__all__ = [
    "CacheKey",
    "CachePolicy",
    "build_key",
    "decide_policy",
    "scope_of",
    "response_cacheable",
    "semantic_text",
    "normalize_text",
    "DEFAULT_TEMPERATURE",
]

ANON_SCOPE = "anon"

# sampling fields that only make the exact fingerprint differ
_EXACT_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_MAX_TOKENS = ("max_tokens", "max_completion_tokens")
# The allow-list: request fields left out of the filter key. Everything else is a hard filter.
_MAY_DIFFER = frozenset({"messages", "model", "n", *_EXACT_FIELDS, *_MAX_TOKENS, "stream", "stream_options", "user",
                         "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key"})
_STRUCTURED_FORMATS = ("json_schema", "json_object")


@dataclass(frozen=True, slots=True)
class CacheKey:
    scope: str
    filter_key: str
    fingerprint: str
    text: str
    exact_only: bool = False   # tool calls and structured outputs: literal repeats only, never a semantic hit


@dataclass(frozen=True, slots=True)
class CachePolicy:
    lookup: bool
    store: bool
    reason: str


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# Segments compared verbatim: fenced and inline code, double-quoted text, and single-quoted text that is not an
# apostrophe ("don't"). "Reverse 'Abc'" and "reverse 'abc'" have different answers; so may two indentations of code.
# Every pattern of this module is scanned once per request over the whole prompt (up to the 8 MiB body), so none may
# backtrack: each quoted segment stops at the next opener too ("\u201c" x 1M on one line was quadratic), and the
# trailing wrapper is peeled by _strip_trailing, not by a regex (a nested-quantifier form hung on " \n" runs).
_VERBATIM = re.compile(r"```.*?(?:```|\Z)|`[^`\n]*`|\"[^\"\n]*\"|\u201c[^\u201c\u201d\n]*\u201d|(?<!\w)'[^'\n]*'(?!\w)", re.S)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'"})
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]+s?\b")  # US, IT, NASA, GPUs: lower-cased they can read as other words
# A polite wrapper adds nothing to what is asked; only these fixed phrases are removed, and only at the ends.
# a greeting only with its punctuation or "there": "Hey Jude lyrics" and "Hello world in Rust" are requests
_LEAD = re.compile(r"^(?:(?:hi|hello|hey)(?: there\b[\s,!.]*|[,!.]+\s*)|(?:please|pls|kindly)\b[\s,]*"
                   r"|(?:can|could|would|will) you (?:please )?(?:tell me|let me know)\b[\s,:]*"
                   r"|(?:can|could|would|will) you please\b[\s,]*"
                   r"|i(?: would|'d) like to know\b[\s,:]*|i want(?:ed)? to know\b[\s,:]*)+")
_POLITE_END = ("thank you", "please", "thanks", "pls", "thx", "ty")
_END_MARKS = "?.!\u2026"
_END_PUNCT = re.compile(r"(?<=[^\W\d_])[?.!\u2026]+$")
_SPACES = re.compile(r"(?<=\S)[ \t\u00a0]+")


def _normalize_plain(text: str, fold_acronyms: bool) -> str:
    if fold_acronyms:
        text = text.lower()
    else:  # lower case between the acronyms, joined once (a splice per acronym was quadratic in their number)
        out, pos = [], 0
        for m in _ACRONYM.finditer(text):
            out += (text[pos:m.start()].lower(), m.group())
            pos = m.end()
        out.append(text[pos:].lower())
        text = "".join(out)
    # runs of spaces inside a line become one, spaces ending a line go; indentation is kept (it is syntax in
    # pasted Python or YAML)
    lines = _SPACES.sub(" ", text).split("\n")
    return "\n".join([ln.rstrip(" \t") for ln in lines[:-1]] + lines[-1:])


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"  # what `\w` matches in a str pattern


def _strip_trailing(s: str) -> str:
    """Drop a trailing wrapper: whitespace, a polite word ("thanks", ", please") and a run of ?.!… that follows a
    letter (not a digit: "What is 5!" keeps its factorial), in any order and number. Peeled from the end by index, so
    it is linear in the text whatever it holds."""
    end = len(s)
    while True:
        j = end
        while j and s[j - 1].isspace():
            j -= 1
        k = j
        while k and s[k - 1] in _END_MARKS:
            k -= 1
        if k < j:
            v = k
            while v and s[v - 1].isspace():
                v -= 1
            if v and s[v - 1].isalnum() and not s[v - 1].isdecimal():
                end = v
                continue
        for w in _POLITE_END:
            i = j - len(w)
            if i >= 0 and s.startswith(w, i) and (i == 0 or not _is_word(s[i - 1])):
                while i and (s[i - 1] == "," or s[i - 1].isspace()):
                    i -= 1
                end = i
                break
        else:
            return s[:j]


def normalize_text(text: str) -> str:
    """The form of a prompt that the exact tier compares: Unicode NFKC (full-width letters, ligatures, no-break
    spaces), invisible characters dropped, curly apostrophes straightened, lower case (acronyms such as "US" or
    "IT" kept, unless the whole text is in capitals), runs of spaces as one, surrounding blank lines and trailing
    ``?.!`` after a word dropped ("What is 5!" keeps its factorial), and a polite wrapper at either end removed
    ("Please", "Hi,", "Can you tell me", "thanks"). Quoted text and code stay verbatim."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_QUOTES)
    letters = [c for c in _VERBATIM.sub("", text) if c.isalpha()]
    shouting = bool(letters) and all(c.isupper() for c in letters)
    out, pos = [], 0
    for m in _VERBATIM.finditer(text):
        out.append(_normalize_plain(text[pos:m.start()], shouting))
        out.append(m.group())
        pos = m.end()
    out.append(_normalize_plain(text[pos:], shouting))
    s = "".join(out).strip("\n ")
    core = _strip_trailing(_LEAD.sub("", s))
    return core or _END_PUNCT.sub("", s) or s  # "Thanks!" alone is a prompt, not a wrapper


def _h(obj: Any, n: int = 32) -> str:
    return hashlib.sha256(_canon(obj).encode()).hexdigest()[:n]


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        if isinstance(v, bytes):
            v = v.decode("latin-1")
        out[k.lower()] = v
    return out


def scope_of(headers: Mapping[str, str], scope_headers: tuple[str, ...] = ("authorization", "x-api-key")) -> str:
    """The tenant of a request: a hash of the configured headers' values, or ``"anon"`` if none is present."""
    h = _lower(headers)
    parts = [(name, h[name]) for name in scope_headers if h.get(name)]
    if not parts:
        return ANON_SCOPE
    return hashlib.sha256(_canon(parts).encode()).hexdigest()[:32]


def _content_text(content: Any, media: list) -> str:
    """Text of a message content (string or list of parts); non-text parts are appended to ``media``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):
        texts = []
        for part in content:
            text = part_text(part)
            if text is None:
                media.append(part)
            else:
                texts.append(text.strip())
        return "\n".join(t for t in texts if t)
    media.append(content)
    return ""


def _norm_message(m: Any, media: list) -> dict:
    if not isinstance(m, Mapping):
        return {"raw": m}
    out: dict[str, Any] = {"role": m.get("role"), "content": _content_text(m.get("content"), media)}
    for k in ("name", "tool_calls", "tool_call_id", "function_call"):
        if m.get(k) is not None:
            out[k] = m[k]
    return out


def _line(m: dict) -> str:
    text = m.get("content") or ""
    if m.get("tool_calls"):
        text = (text + " " + _canon(m["tool_calls"])).strip()
    if m.get("function_call"):
        text = (text + " " + _canon(m["function_call"])).strip()
    return text


def _split(messages: list[dict], context_turns: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(system messages, older turns outside the window, recent turns)."""
    system = [m for m in messages if m.get("role") in ("system", "developer")]
    turns = [m for m in messages if m.get("role") not in ("system", "developer")]
    k = max(1, context_turns)
    return system, turns[:-k] if len(turns) > k else [], turns[-k:]


def semantic_text(recent: list[dict]) -> str:
    if len(recent) == 1 and recent[0].get("role") == "user":
        return _line(recent[0])
    return "\n".join(f"{m.get('role')}: {_line(m)}" for m in recent)


def _tier(value: Any, tiers: tuple[int, ...]) -> str:
    if value is None:
        return "default"
    try:
        v = int(value)
    except (TypeError, ValueError):
        return f"raw:{value!r}"
    for t in tiers:
        if v <= t:
            return f"<={t}"
    return f">{tiers[-1]}" if tiers else str(v)


def _stop(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    if isinstance(v, list):
        return sorted(str(x) for x in v)
    return v


def _exact_only(body: Mapping) -> bool:
    extra = body.get("extra_body")
    for b in (body, extra if isinstance(extra, Mapping) else {}):
        rf = b.get("response_format")
        if (b.get("tools") or b.get("functions") or b.get("structured_outputs") is not None
                or (isinstance(rf, Mapping) and rf.get("type") in _STRUCTURED_FORMATS)
                or any(k.startswith("guided_") and v is not None for k, v in b.items())):
            return True
    return False


def build_key(body: Mapping, model: str, headers: Mapping[str, str], cfg: SemanticCacheConfig) -> CacheKey:
    """The cache key of a chat completion request routed to ``model``."""
    scope = scope_of(headers, cfg.scope_headers)
    media: list = []
    raw_msgs = body.get("messages") or []
    messages = [_norm_message(m, media) for m in raw_msgs] if isinstance(raw_msgs, list) else []
    system, older, recent = _split(messages, cfg.context_turns)
    filters: dict[str, Any] = {"model": model}
    for f, v in body.items():
        if f not in _MAY_DIFFER and v is not None:
            filters[f] = _stop(v) if f == "stop" else v
    filters["n"] = body.get("n") or 1
    filters["max_tokens"] = _tier(body.get("max_completion_tokens", body.get("max_tokens")), cfg.max_tokens_tiers)
    filters["system"] = _h([_line(m) for m in system]) if system else None
    filters["older"] = _h(older) if older else None
    filters["media"] = _h(media) if media else None
    filter_key = _h(filters)
    exact = {f: body.get(f) for f in _EXACT_FIELDS}
    exact["temperature"] = exact["temperature"] if exact["temperature"] is not None else DEFAULT_TEMPERATURE
    if body.get("max_completion_tokens", body.get("max_tokens")) is not None:
        exact["max_tokens"] = body.get("max_completion_tokens", body.get("max_tokens"))
    # the user's words up to trivial variants (normalize_text); everything else exactly as sent
    typed = [{**m, "content": normalize_text(m["content"])} if m.get("role") == "user" and "content" in m else m
             for m in messages]
    fingerprint = _h({"scope": scope, "filters": filters, "messages": typed, "exact": exact})
    return CacheKey(scope=scope, filter_key=filter_key, fingerprint=fingerprint, text=semantic_text(recent),
                    exact_only=_exact_only(body))


def _cache_control(headers: Mapping[str, str]) -> set[str]:
    h = _lower(headers)
    tokens = set()
    for name in ("cache-control", "pragma"):
        for t in (h.get(name) or "").split(","):
            t = t.strip().lower().split("=", 1)[0]
            if t:
                tokens.add(t)
    return tokens


def decide_policy(
    body: Mapping, headers: Mapping[str, str], cfg: SemanticCacheConfig, *, has_pii: bool
) -> CachePolicy:
    """What the cache may do for one request. ``reason`` names the first rule that turned something off."""
    if not cfg.enabled:
        return CachePolicy(False, False, "disabled")
    if has_pii:
        return CachePolicy(False, False, "pii")
    if not cfg.cache_anonymous and scope_of(headers, cfg.scope_headers) == ANON_SCOPE:
        return CachePolicy(False, False, "anonymous")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return CachePolicy(False, False, "no-messages")
    n = body.get("n")
    if n is not None and n != 1:
        return CachePolicy(False, False, "n>1")
    temp = body.get("temperature")
    temp = DEFAULT_TEMPERATURE if temp is None else temp
    try:
        if float(temp) > cfg.max_temperature:
            return CachePolicy(False, False, "temperature")
    except (TypeError, ValueError):
        return CachePolicy(False, False, "temperature")
    cc = _cache_control(headers)
    lookup = "no-cache" not in cc
    store = "no-store" not in cc
    if not lookup and not store:
        return CachePolicy(False, False, "no-cache,no-store")
    if not lookup:
        return CachePolicy(False, True, "no-cache")
    if not store:
        return CachePolicy(True, False, "no-store")
    return CachePolicy(True, True, "ok")


def response_cacheable(status: int, completion: Any, *, max_bytes: int | None = None) -> str:
    """``"ok"`` when a response may be stored, else the reason it may not."""
    if not 200 <= int(status) < 300:
        return "status"
    if not isinstance(completion, Mapping) or completion.get("object") not in ("chat.completion", None):
        return "not-a-completion"
    choices = completion.get("choices")
    if not isinstance(choices, list) or not choices:
        return "no-choices"
    for c in choices:
        if not isinstance(c, Mapping) or c.get("finish_reason") not in ("stop", "tool_calls", "function_call"):
            return "incomplete"
        msg = c.get("message")
        if not isinstance(msg, Mapping):
            return "incomplete"
    if max_bytes is not None and len(_canon(completion).encode()) > max_bytes:
        return "too-large"
    return "ok"
