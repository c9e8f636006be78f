"""What the router does with one HTTP exchange, phase by phase, with no protobuf in sight.

`server.py` feeds each ext_proc message to the matching `on_*` method and turns the returned value
into a ProcessingResponse. Per-request state lives in an `Exchange`, created per gRPC stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import headers as H
from .config import RouterConfig
from .decision import Decision, decide, rewrite_body
from .errors import Overloaded
from .metrics import Metrics
from .openai import (CHAT_PATH, MODELS_PATH, PARSERS, RESPONSES_PATH, ROUTED_PATHS, APIError, APIRequest,
                     ChatRequest, canonical_path, completion, dump_body, error_body, load_json_object,
                     looks_like_api, models_list, new_completion_id, responses_reasoning)
from .live import LiveHooks, LiveState
from .tracing import Tracer
from .usage import UsageHooks
from .signals.inputs import plan

log = logging.getLogger("router_extproc.decision")

JSON = "application/json"
SSE = "text/event-stream"
ROUTE_MEMO_MAX = 10_000  # literal requests whose decision is remembered (see cache/routes.py)
PARSE_INLINE_BYTES = 256 * 1024  # bodies from this size are parsed on a worker thread


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
    method: str = ""
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    request_id: str = ""
    started: float = field(default_factory=time.perf_counter)
    chat: bool = False
    request: APIRequest | None = None
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
    pii_counts: dict[str, int] = field(default_factory=dict)  # entities found per type (the log's, never values)
    redaction: Any = None              # pii.redact.Redaction: this request's placeholders, never logged or cached
    restorer: Any = None               # puts the redacted values back into the answer
    fallback: str = ""                 # live: the x-router-fallback value when live routing moved the request
    live_model: str | None = None      # live: the model counted in flight (live.py) until the stream ends
    next_model: str | None = None      # live: the model Envoy's last attempt goes to (x-router-next)
    hop: str = ""                      # live: this stream is Envoy's fallback attempt to that model (see _hop)
    tenant: str = ""                   # live: hashed usage.tenant_header value (usage.py)
    strip_usage: bool = False          # live: the router asked the stream for its usage: the client does not get it
    usage_tap: Any = None              # live: usage.SSEUsage, or a bytearray for a JSON answer
    span: Any = None                   # live: the request's tracing span (tracing.py), ended with the stream
    trace_headers: dict[str, str] = field(default_factory=dict)   # live: traceparent of the ext_proc call (Envoy's)


class Router:
    """The request brain. Holds the current config and the shared engines (signals, cache, metrics)."""

    def __init__(self, config: RouterConfig, *, signals: Any = None, cache: Any = None,
                 metrics: Metrics | None = None, tracer: Any = None) -> None:
        self._config = config
        self.signals = signals
        self.cache = cache
        self.metrics = metrics or Metrics()
        from .cache.routes import RouteMemo

        # A remembered route only answers while its entry is in the cache's in-process tier, where exact lookups
        # look: a memo larger than that tier would only hold the routes of evicted entries.
        hot = getattr(cache, "hot", None)
        self._routes: RouteMemo[Decision] = RouteMemo(min(ROUTE_MEMO_MAX, getattr(hot, "capacity", ROUTE_MEMO_MAX)))
        # live: per-model health, latency and errors (live.py, rendered into /metrics at scrape time), tokens and
        # budgets (usage.py), tracing (tracing.py)
        self.live = LiveState()
        self.metrics.live.bind(self.live, lambda: self._config)
        self.live_hooks = LiveHooks(self.live, self.metrics)
        self.usage = UsageHooks(self.metrics, self.live)
        self.tracer = tracer if tracer is not None else Tracer.from_config(config.tracing)

    @property
    def config(self) -> RouterConfig:
        return self._config

    def swap_config(self, config: RouterConfig) -> None:
        # A single reference assignment: requests in flight keep the config their Exchange captured.
        self._config = config
        # Remembered decisions were made under the old config: a reload must be able to change them.
        self._routes.clear()

    def new_exchange(self) -> Exchange:
        return Exchange(config=self._config)

    # ── request headers ────────────────────────────────────────────────────────────────────────
    def on_request_headers(self, ex: Exchange, headers: Mapping[str, str], end_of_stream: bool) -> Respond | Continue:
        ex.headers = dict(headers)
        if H.NEXT in headers:
            # live: Envoy's fallback attempt, on its internal listener (envoy_config.HOP). Only the router sets this
            # header: Envoy strips every x-router-* header of a client's request before routing; the internal listener
            # routes on it, so it stays
            ex.hop, ex.chat = headers[H.NEXT], True
            return Continue()
        ex.method = headers.get(":method", "GET").upper()
        ex.path = canonical_path(headers.get(":path", "/"))
        ex.request_id = headers.get(H.REQUEST_ID, "")
        cfg = ex.config
        strip = tuple(H.spoofed(headers.keys(), cfg.route_header))
        if ex.path == MODELS_PATH and ex.method == "GET":
            owners = [(m.name, "router-extproc") for m in cfg.models]
            owners += [(a, "router-extproc") for a in cfg.auto_model_names]
            return Respond(200, models_list(owners), {"content-type": JSON}, "models list")
        if ex.method == "OPTIONS":
            return Continue(remove_headers=strip, skip_body=True)   # a CORS preflight: it carries no prompt
        if ex.path in ROUTED_PATHS and ex.method != "POST":
            return self._error(ex, APIError(405, f"{ex.method} {ex.path} is not supported: use POST",
                                            code="method_not_allowed"))
        if ex.path not in ROUTED_PATHS:
            if looks_like_api(ex.path) and not cfg.envoy.passes_through(ex.path):
                return self._error(ex, APIError(404, f"The router does not serve {ex.method} {ex.path}",
                                                code="unknown_url"))
            return Continue(remove_headers=strip, skip_body=True)
        ex.chat = True
        if end_of_stream:
            return self._error(ex, APIError(400, "Request body is required", code="missing_body"))
        length = headers.get("content-length", "")
        # isascii: str.isdigit() is true for "²", which int() refuses; 16+ digits is over any limit (and int()
        # refuses more than 4,300).
        if length.isascii() and length.isdigit() and (len(length) > 15 or int(length) > cfg.server.max_body_bytes):
            return self._error(ex, _too_large(cfg.server.max_body_bytes))
        raw_path, sep, query = headers.get(":path", "/").partition("?")
        # Another spelling of a routed path is guarded like it, and sent upstream as the path the server serves.
        fixed = {":path": ex.path + sep + query} if raw_path != ex.path else {}
        return Continue(set_headers=fixed, remove_headers=strip)

    # ── request body ───────────────────────────────────────────────────────────────────────────
    async def on_request_body(self, ex: Exchange, body: bytes) -> Respond | Continue:
        cfg = ex.config
        if ex.hop:   # live: Envoy's fallback attempt: the body rewritten for the next model
            return Continue(body=self.live_hooks.hop_body(ex, body))
        if len(body) > cfg.server.max_body_bytes:
            return self._error(ex, _too_large(cfg.server.max_body_bytes))
        # live: one trace per request: a child of Envoy's ext_proc span when Envoy traces, else of the client's
        ex.span = self.tracer.start(ex.trace_headers or ex.headers, ex.path)
        try:
            ex.request = request = await self._parse(ex, body)
            repeat = self._literal_repeat(ex, request) if ex.path == CHAT_PATH else None
            if repeat is not None:
                return repeat
            # A request without text (only previous_response_id, an empty turn) gives the guards nothing to judge:
            # the encoder's score for an empty input is noise (it read as a jailbreak).
            with self.tracer.stage(ex.span, "signals"):   # live:
                signals = await self._signals(ex, request) if _has_text(request) else None
            with self.tracer.stage(ex.span, "decision"):   # live:
                ex.decision = decision = decide(cfg, request, signals, jailbreak_threshold=self._jb_threshold())
        except APIError as err:
            return self._error(ex, err)
        except Overloaded:
            return self._error(ex, APIError(503, "The router is overloaded: retry shortly", type="server_error",
                                            code="router_overloaded"), {"retry-after": "1"})
        if decision.injection:
            self.metrics.injections.labels(decision.injection).inc()

        if decision.blocked:
            return self._blocked(ex, decision)

        model = cfg.model(decision.model)
        assert model is not None
        body = self._redact(ex, request.body, signals)
        hit = None
        # Only chat answers are cached (completions and responses answers have other shapes, docs/cache.md), and a
        # redacted request is neither looked up nor stored.
        if ex.redaction is None and ex.path == CHAT_PATH:
            try:
                with self.tracer.stage(ex.span, "cache_lookup"):   # live:
                    hit = await self._cache_lookup(ex, request, decision, signals)
            except Overloaded:
                # The cache key's own embedding could not be queued: the request is answered uncached.
                ex.store, ex.cache_state, hit = False, "bypass", None
        if hit is not None:
            return hit

        spent = self.usage.over_budget(ex)   # live: the tenant's token budget (usage.py)
        if spent is not None:
            return self._error(ex, *spent)
        # live: another model when the chosen one is down, cooling or over its bounds (its answer is then not stored:
        # the cache key names the chosen one); the route headers name the next candidate for Envoy's last attempt
        moved, live_headers = self.live_hooks.forward(ex, decision)
        if moved is not decision:
            decision = ex.decision = moved
            model = cfg.model(decision.model)
            self.abandon_store(ex)
        # live: the upstream call joins the request's trace
        route_headers = {cfg.route_header: model.name, **live_headers, **self.tracer.inject(ex.span)}
        new_body = rewrite_body(body, model, decision)
        self.usage.ask(ex, new_body, ex.path == CHAT_PATH)   # live: a stream reports its usage only when asked
        if ex.path == RESPONSES_PATH:
            new_body = responses_reasoning(new_body)
        ex.forwarded_at = time.perf_counter()
        self.metrics.decision_seconds.observe(ex.forwarded_at - ex.started)
        self._log(ex, "forward")
        return Continue(
            set_headers=route_headers,
            body=dump_body(new_body),
            clear_route_cache=True,
        )

    async def _parse(self, ex: Exchange, body: bytes) -> Any:
        parse = PARSERS[ex.path]
        if len(body) < PARSE_INLINE_BYTES:
            return parse(body)
        # A multi-megabyte body takes tens of ms to decode: keep the event loop (other streams, health) moving.
        return await asyncio.get_running_loop().run_in_executor(None, parse, body)

    def _route_key(self, ex: Exchange, request: ChatRequest) -> str | None:
        """The literal-repeat key of a request whose cache entry may be served, else None."""
        cfg = ex.config.semantic_cache
        if self.cache is None or cfg is None or not cfg.enabled or not cfg.exact_match:
            return None
        from .cache import decide_policy, scope_of
        from .cache.routes import route_key

        # PII is unknown before the signal pass; remembered decisions never carry PII (see _remember_route).
        if not decide_policy(request.body, ex.headers, cfg, has_pii=False).lookup:
            return None
        return route_key(request.body, scope_of(ex.headers, cfg.scope_headers))

    def _literal_repeat(self, ex: Exchange, request: ChatRequest) -> Respond | None:
        """Answer a byte-for-byte repeat of a cached request without the signal pass (see cache/routes.py)."""
        key = self._route_key(ex, request)
        if key is None or ex.config is not self._config:
            return None
        remembered = self._routes.get(key)
        if remembered is None:
            return None
        decision, cache_key = remembered
        hit = self.cache.exact_lookup(cache_key)
        if hit is None:
            return None
        ex.decision, ex.cache_key = decision, cache_key
        return self._answer_hit(ex, request, hit)

    def _remember_route(self, ex: Exchange, request: ChatRequest, decision: Decision, key: Any) -> None:
        # Called once the full path allowed lookup and storing, so the policy and the tenant scope are known.
        if (decision.blocked or decision.pii_types or ex.config is not self._config
                or not ex.config.semantic_cache.exact_match):
            return
        from .cache.routes import route_key

        # a hit only needs scope + fingerprint: do not keep a second copy of every prompt in memory
        self._routes.put(route_key(request.body, key.scope), decision, replace(key, text=""))

    async def _signals(self, ex: Exchange, request: APIRequest) -> Any:
        if self.signals is None or not ex.config.signals.any_enabled:
            return None
        t0 = time.perf_counter()
        rule = ex.config.signals.inputs
        reads = plan(request.segments(), rule)
        result = await self.signals.analyze_reads(reads, rule.max_tokens_read)
        self.metrics.signal_seconds.labels("all").observe(time.perf_counter() - t0)
        # The routing embedding is the latest turn's (reads[0]): the cache reuses it when its key text is that turn.
        ex.embedding = result.embedding
        ex.embedded_text = reads[0].text
        ex.reads = reads
        for e in result.pii:
            ex.pii_counts[e.type] = ex.pii_counts.get(e.type, 0) + 1
        return result

    def _redact(self, ex: Exchange, body: dict[str, Any], signals: Any) -> dict[str, Any]:
        """The body with the redact-action types replaced by placeholders. Every message is scanned, also the
        turns and tool results the signal pass does not read; the model's finds (names, addresses) add values."""
        cfg = ex.config
        types = cfg.pii.redact_types
        if not types or not (cfg.signals.pii and cfg.guards.pii_enabled):
            return body
        from .pii.redact import redact_request

        # each entity's offsets point into the text of the Read it was found in; a span across lines by line
        known = [(e.type, part) for e in (signals.pii if signals is not None else ())
                 for part in ex.reads[e.read].text[e.start:e.end].split("\n")]
        new, red = redact_request(body, types, known)
        if not red.originals:
            return body
        ex.redaction = red
        for t, n in red.counts.items():
            self.metrics.pii_redacted.labels(t).inc(n)
        return new

    def _jb_threshold(self) -> float:
        # The threshold chosen on the model's calibration split ships in labels.json.
        labels = getattr(self.signals, "labels", None) or {}
        return float(labels.get("thresholds", {}).get("jailbreak", 0.5))

    async def _cache_lookup(self, ex: Exchange, request: ChatRequest, decision: Decision,
                            signals: Any) -> Respond | None:
        cache = self.cache
        cfg = ex.config
        if cache is None or cfg.semantic_cache is None or not cfg.semantic_cache.enabled:
            return None
        from .cache import build_key, decide_policy

        policy = decide_policy(request.body, ex.headers, cfg.semantic_cache, has_pii=bool(decision.pii_types))
        key = build_key(request.body, decision.model, ex.headers, cfg.semantic_cache)
        ex.cache_key = key
        # Entries are indexed by the prompt embedding: with the signal model off nothing can be stored. A prompt the
        # PII tagger could not read whole (the signal budget) is not stored: "PII is never cached" needs every token.
        ex.store = policy.store and signals is not None and not getattr(signals, "unread_tokens", 0)
        ex.cache_state = "miss"
        if not policy.lookup:
            ex.cache_state = "bypass"
            self.metrics.cache_lookups.labels("skipped").inc()
            return None
        if ex.store:
            self._remember_route(ex, request, decision, key)
        hit = cache.exact_lookup(key)
        if hit is None and ex.store and not key.exact_only:
            if key.text != ex.embedded_text:
                # The cache's semantic key (recent turns, system prompt as a hard filter) differs from the
                # classification text for multi-turn requests: embed it on its own (micro-batched).
                ex.embedding = (await self.signals.analyze(key.text, cfg.signals.inputs.max_tokens_read)).embedding
                ex.embedded_text = key.text
            hit = await cache.lookup(key, ex.embedding, key.text)
        if hit is None and ex.store:
            # Coalesce identical concurrent misses: one leader goes upstream, followers wait for it.
            if cache.claim(key):
                ex.leader = True
            else:
                hit = await cache.wait_for_leader(key, cfg.semantic_cache.coalesce_timeout_s)
        if hit is None:
            return None
        return self._answer_hit(ex, request, hit)

    def _answer_hit(self, ex: Exchange, request: ChatRequest, hit: Any) -> Respond:
        from .cache import render_sse

        ex.cache_state = "hit"
        ex.store = False
        self._log(ex, "cache_hit", similarity=round(hit.similarity, 4), exact=hit.exact)
        comp = dict(hit.completion)
        comp["id"] = new_completion_id()
        comp["created"] = int(time.time())
        hdrs = {**self.decision_headers(ex), H.CACHE: "hit"}
        if request.stream:
            return Respond(200, render_sse(comp), {**hdrs, "content-type": SSE, "cache-control": "no-cache"},
                           "cache hit")
        return Respond(200, json.dumps(comp, ensure_ascii=False).encode(), {**hdrs, "content-type": JSON},
                       "cache hit")

    # ── response path ──────────────────────────────────────────────────────────────────────────
    def on_response_headers(self, ex: Exchange, headers: Mapping[str, str]) -> ResponsePlan:
        status = headers.get(":status", "0")
        ex.response_status = int(status) if status.isascii() and status.isdigit() and len(status) == 3 else 0
        if ex.hop:   # live: the fallback attempt's answer says where it came from; the client's stream does the rest
            ex.finished = True
            return ResponsePlan(self.live_hooks.hop_mark(ex), False)
        if self.live_hooks.answered(ex, headers):   # live: the answer came from Envoy's last attempt (next model)
            self.abandon_store(ex)
        out: dict[str, str] = {}
        if ex.chat and ex.decision is not None:
            out = self.decision_headers(ex)
            if ex.forwarded_at is not None:
                self.metrics.upstream_ttfb_seconds.labels(ex.decision.model).observe(
                    time.perf_counter() - ex.forwarded_at)
            self.metrics.upstream_responses.labels(ex.decision.model, f"{ex.response_status // 100}xx").inc()
        ok = 200 <= ex.response_status < 300
        tap = bool(ex.store and ok and self.cache is not None)
        restore = self._restorer(ex, headers) if ok else None
        if not tap:
            self._finish(ex, "forwarded" if ok else f"upstream_{ex.response_status}")
        # live: a fallback mark the router did not confirm is the upstream's, not ours: the client never sees it
        spoofed = (H.FALLBACK,) if H.FALLBACK in headers and H.FALLBACK not in out else ()
        usage_remove = self.usage.on_headers(ex, headers, ok)   # live: read the answer's usage (usage.py)
        if usage_remove is not None:
            tap, spoofed = True, (*spoofed, *usage_remove)
        if restore is None:
            return ResponsePlan(out, tap, spoofed)
        ex.restorer = restore
        # the restored answer differs in length from what the upstream announced
        return ResponsePlan(out, True, ("content-length", *spoofed))

    def _restorer(self, ex: Exchange, headers: Mapping[str, str]) -> Any:
        if ex.redaction is None or not ex.redaction.originals or not ex.config.pii.restore:
            return None
        from .pii.redact import JSONRestorer, SSERestorer

        if SSE in headers.get("content-type", ""):
            return SSERestorer(ex.redaction)
        return JSONRestorer(ex.redaction, ex.config.server.max_body_bytes)

    def on_response_body(self, ex: Exchange, chunk: bytes, end_of_stream: bool) -> bytes | None:
        """Returns the chunk to send on in place of `chunk`, or None to send it unchanged."""
        replaced = self.usage.on_body(ex, chunk, end_of_stream) if ex.usage_tap is not None else None   # live:
        if ex.restorer is not None:
            return ex.restorer.feed(chunk, end_of_stream)
        self._tap(ex, chunk, end_of_stream)
        return replaced

    def _tap(self, ex: Exchange, chunk: bytes, end_of_stream: bool) -> None:
        if not ex.store or ex.finished:
            return
        # SSE framing is several times the size of the completion it carries; the stored completion's own
        # size limit is checked once it is assembled.
        limit = ex.config.semantic_cache.max_response_bytes * 8
        ex.response_bytes += len(chunk)
        if ex.response_bytes > limit:
            ex.store = False
            ex.response_chunks.clear()
            self.metrics.cache_stores.labels("too_large").inc()
            self._finish(ex, "forwarded")
            return
        ex.response_chunks.append(chunk)
        if end_of_stream:
            self._store(ex, b"".join(ex.response_chunks))
            ex.response_chunks.clear()
            self._finish(ex, "forwarded")

    def on_stream_end(self, ex: Exchange) -> None:
        """The gRPC stream closed. A leader that never stored lets its followers go upstream."""
        if ex.span is not None:   # live: the request's span ends with its stream
            d = ex.decision
            self.tracer.end(ex.span, **{"router.model": d.model if d else None, "router.cache": ex.cache_state,
                                        "router.fallback": ex.fallback or None,
                                        "http.response.status_code": ex.response_status})
            ex.span = None
        self.live_hooks.stream_end(ex)   # live: no longer in flight; forwarded and never answered is an error
        if ex.leader and self.cache is not None:
            self.cache.release(ex.cache_key, None)
            ex.leader = False
        if ex.chat and not ex.finished and ex.decision is not None and ex.cache_state != "hit":
            self._finish(ex, "incomplete")

    def _store(self, ex: Exchange, raw: bytes) -> None:
        from .cache import assemble_sse, response_cacheable

        comp: dict[str, Any] | None
        if ex.request is not None and ex.request.stream:
            comp = assemble_sse(raw)   # None unless the stream finished with [DONE]
        else:
            try:
                # The upstream's JSON passes the same checks as a client's: what is stored can be hashed and served.
                comp = load_json_object(raw)
            except APIError:
                comp = None
        try:
            verdict = "incomplete" if comp is None else response_cacheable(
                ex.response_status or 0, comp, max_bytes=ex.config.semantic_cache.max_response_bytes)
        except (ValueError, TypeError, RecursionError) as exc:   # UnicodeEncodeError is a ValueError
            log.warning("upstream answer not storable", extra={"request_id": ex.request_id, "error": repr(exc)[:200]})
            verdict = "invalid"
        if verdict != "ok":
            comp = None
            self.metrics.cache_stores.labels(f"skipped_{verdict}").inc()
        else:
            with self.tracer.stage(ex.span, "store"):   # live:
                self.cache.store(ex.cache_key, ex.embedding, comp)
        if ex.leader:
            self.cache.release(ex.cache_key, comp)
            ex.leader = False

    # ── answers from the router ────────────────────────────────────────────────────────────────
    def decision_headers(self, ex: Exchange) -> dict[str, str]:
        d = ex.decision
        out = {H.CACHE: ex.cache_state}
        if d is None:
            return out
        out[H.MODEL] = d.model
        if d.category is not None:
            out[H.CATEGORY] = d.category
        if d.confidence is not None:
            out[H.CONFIDENCE] = f"{d.confidence:.3f}"
        if d.complexity is not None:
            out[H.COMPLEXITY] = d.complexity
        out[H.REASONING] = "on" if d.reasoning else "off"
        if d.pii_types:
            out[H.PII] = ",".join(sorted(d.pii_types))
        if ex.redaction is not None and ex.redaction.counts:
            out[H.PII_REDACTED] = ",".join(sorted(ex.redaction.counts))
        if d.blocked:
            out[H.BLOCKED] = d.blocked
        if d.injection:
            out[H.INJECTION] = d.injection
        if ex.fallback:
            out[H.FALLBACK] = ex.fallback   # live:
        return out

    def _blocked(self, ex: Exchange, d: Decision) -> Respond:
        assert d.blocked is not None
        cfg = ex.config
        hdrs = self.decision_headers(ex)
        self._log(ex, "blocked", blocked=d.blocked)
        self._finish(ex, f"blocked_{d.blocked}")
        message = ("The request was blocked: it looks like a jailbreak or prompt-injection attempt."
                   if d.blocked == "jailbreak" else
                   "The request was blocked: a tool result or document in it carries instructions that look like "
                   "a prompt-injection attempt." if d.blocked == "injection" else
                   f"The request was blocked: it contains personal data ({', '.join(sorted(d.pii_types))}) "
                   "that no eligible model may receive.")
        # A blocked legacy-completions or Responses request gets the error form: its API has no chat completion.
        if cfg.guards.block_response == "completion" and ex.path == CHAT_PATH:
            from .cache import render_sse

            comp = completion(d.model, message, finish_reason="content_filter")
            stream = ex.request is not None and ex.request.stream
            if stream:
                return Respond(200, render_sse(comp), {**hdrs, "content-type": SSE}, f"blocked {d.blocked}")
            return Respond(200, json.dumps(comp).encode(), {**hdrs, "content-type": JSON}, f"blocked {d.blocked}")
        body = error_body(message, type=d.blocked, code=f"{d.blocked}_detected")
        return Respond(403, body, {**hdrs, "content-type": JSON}, f"blocked {d.blocked}")

    def _error(self, ex: Exchange, err: APIError, headers: Mapping[str, str] | None = None) -> Respond:
        self.metrics.request_errors.labels(str(err.status), err.code or err.type).inc()
        log.info("rejected", extra={"request_id": ex.request_id, "status": err.status, "code": err.code,
                                    "error": err.message[:200]})
        ex.finished = True
        return Respond(err.status, err.body(), {"content-type": JSON, H.CACHE: "bypass", **(headers or {})},
                       f"error {err.code}")

    def internal_error(self, ex: Exchange, phase: str) -> Respond:
        """A fault of the router's own in a request phase: a defined OpenAI-shaped 500, never a broken stream
        (which Envoy turns into its own 500 or, with failure_mode_allow, into an unguarded forward)."""
        self.metrics.stream_errors.labels(phase).inc()
        log.exception("internal error", extra={"request_id": ex.request_id, "phase": phase})
        self.abandon_store(ex)
        return self._error(ex, APIError(500, "The router failed on this request", type="server_error",
                                        code="router_internal_error"))

    def abandon_store(self, ex: Exchange) -> None:
        """Stop tapping this exchange's answer (it still reaches the client); followers go upstream."""
        ex.store = False
        ex.response_chunks.clear()
        if ex.leader and self.cache is not None:
            ex.leader = False
            self.cache.release(ex.cache_key, None)

    def _finish(self, ex: Exchange, outcome: str) -> None:
        if ex.finished:
            return
        ex.finished = True
        d = ex.decision
        if d is None:
            return
        kind = "blocked" if d.blocked else ("auto" if d.auto else "explicit")
        self.metrics.requests.labels(kind, d.model, d.category or "none", outcome).inc()

    def _log(self, ex: Exchange, event: str, **extra: Any) -> None:
        d = ex.decision
        fields: dict[str, Any] = {"request_id": ex.request_id, "event": event, "cache": ex.cache_state,
                                  "elapsed_ms": round((time.perf_counter() - ex.started) * 1000, 2)}
        if d is not None:
            fields.update(model=d.model, auto=d.auto, category=d.category, confidence=d.confidence,
                          complexity=d.complexity, reasoning=d.reasoning, blocked=d.blocked,
                          pii=sorted(d.pii_types), injection=d.injection, reason=d.reason)
            if d.pii_types:
                fields["pii_counts"] = {t: ex.pii_counts.get(t, 0) for t in sorted(d.pii_types)}
        if ex.redaction is not None:
            fields["pii_redacted"] = dict(ex.redaction.counts)  # types and counts: never the values
        fields.update(extra)
        cfg = ex.config
        if cfg.logging.log_prompts and log.isEnabledFor(logging.DEBUG) and ex.request is not None:
            fields["prompt"] = ex.request.last_user_text()[:500]
        log.info(event, extra=fields)
        if event == "cache_hit":
            self._finish(ex, "cache_hit")


def _has_text(request: APIRequest) -> bool:
    return any(s.text.strip() for s in request.segments())


def _too_large(limit: int) -> APIError:
    return APIError(413, f"Request body exceeds the router's limit of {limit} bytes",
                    code="request_too_large")

