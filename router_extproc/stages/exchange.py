"""The request-scoped `Exchange` and the plain values a phase answers with (server.py turns them into protobuf)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import RouterConfig
from ..decision import Decision
from ..openai import APIRequest
from ..thresholds import Thresholds


@dataclass(frozen=True, slots=True)
class Respond:
    """Answer the client from the router; the upstream is never touched."""

    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    details: str = ""


@dataclass(frozen=True, slots=True)
class Continue:
    """Let the request go on, with these request-header changes."""

    set_headers: Mapping[str, str] = field(default_factory=dict)
    remove_headers: tuple[str, ...] = ()
    body: bytes | None = None          # replacement body (content-length is set to match)
    clear_route_cache: bool = False
    skip_body: bool = False            # headers phase: this request's body need not be sent to us


@dataclass(frozen=True, slots=True)
class ResponsePlan:
    set_headers: Mapping[str, str]
    tap_body: bool                     # stream the response body through us (to store it or restore PII)
    remove_headers: tuple[str, ...] = ()


@dataclass
class Exchange:
    """Everything the router remembers about one HTTP request."""

    config: RouterConfig               # the config this request started with (reloads are atomic per request)
    thresholds: Thresholds | None = None  # resolved with `config` (thresholds.resolve); None: from the config alone
    method: str = ""
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    started: float = field(default_factory=time.perf_counter)
    chat: bool = False
    request: APIRequest | None = None
    body_bytes: int = 0                # size of the request body as received (parse.request_body)
    decision: Decision | None = None
    cache_state: str = "bypass"        # the x-router-cache value
    cache_key: Any = None
    embedding: Any = None              # embedding of `embedded_text`
    embedded_text: str = ""
    store: bool = False
    leader: bool = False               # this request fetches upstream for coalesced followers
    forwarded_at: float | None = None
    response_status: int | None = None
    response_chunks: list[bytes] = field(default_factory=list)
    response_bytes: int = 0
    finished: bool = False
    reads: tuple = ()                  # what the signal pass read (signals/inputs.plan); PII offsets point into these
    persona_names: frozenset[str] = frozenset()   # the operator's persona names (Signals.operator_names)
    pii_counts: dict[str, int] = field(default_factory=dict)  # entities found per type (the log's, never values)
    redaction: Any = None              # pii.redact.Redaction: this request's placeholders, never logged or cached
    restorer: Any = None               # puts the redacted values back into the answer
    # live: live routing (live.py), usage (usage.py) and tracing (tracing.py)
    fallback: str = ""                 # the x-router-fallback value when live routing moved the request
    live_model: str | None = None      # the model counted in flight (live.py) until the stream ends
    next_model: str | None = None      # the model Envoy's last attempt goes to (x-router-next)
    hop: str = ""                      # this stream is Envoy's fallback attempt to that model (parse.request_headers)
    tenant: str = ""                   # hashed usage.tenant_header value (usage.py)
    strip_usage: bool = False          # the router asked the stream for its usage: the client does not get it
    usage_tap: Any = None              # usage.SSEUsage, or a bytearray for a JSON answer
    span: Any = None                   # the request's tracing span (tracing.py), ended with the stream
    trace_headers: dict[str, str] = field(default_factory=dict)   # traceparent of the ext_proc call (Envoy's)
