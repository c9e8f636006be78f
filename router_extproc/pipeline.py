"""What the router does with one HTTP exchange, phase by phase, with no protobuf in sight.

`server.py` feeds each ext_proc message to the matching `on_*` method and turns the returned value
into a ProcessingResponse. Per-request state lives in an `Exchange`, created per gRPC stream.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import headers as H
from .config import RouterConfig
from .decision import Decision, decide, rewrite_body
from .metrics import Metrics
from .openai import (CHAT_PATH, MODELS_PATH, APIError, ChatRequest, completion, dump_body, error_body,
                     models_list, new_completion_id, parse_chat_request)
from .signals.inputs import plan

log = logging.getLogger("router_extproc.decision")

JSON = "application/json"
SSE = "text/event-stream"
ROUTE_MEMO_MAX = 10_000  # literal requests whose decision is remembered (see cache/routes.py)


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
    tap_body: bool                     # stream the response body through us (to store it)


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
    request: ChatRequest | None = None
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


class Router:
    """The request brain. Holds the current config and the shared engines (signals, cache, metrics)."""

    def __init__(self, config: RouterConfig, *, signals: Any = None, cache: Any = None,
                 metrics: Metrics | None = None) -> None:
        self._config = config
        self.signals = signals
        self.cache = cache
        self.metrics = metrics or Metrics()
        from .cache.routes import RouteMemo

        # A remembered route only answers while its entry is in the cache's in-process tier, where exact lookups
        # look: a memo larger than that tier would only hold the routes of evicted entries.
        hot = getattr(cache, "hot", None)
        self._routes: RouteMemo[Decision] = RouteMemo(min(ROUTE_MEMO_MAX, getattr(hot, "capacity", ROUTE_MEMO_MAX)))

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
        ex.method = headers.get(":method", "GET").upper()
        ex.path = headers.get(":path", "/").split("?", 1)[0]
        ex.request_id = headers.get(H.REQUEST_ID, "")
        cfg = ex.config
        strip = tuple(H.spoofed(headers.keys(), cfg.route_header))
        if ex.path == MODELS_PATH and ex.method == "GET":
            owners = [(m.name, "router-extproc") for m in cfg.models]
            owners += [(a, "router-extproc") for a in cfg.auto_model_names]
            return Respond(200, models_list(owners), {"content-type": JSON}, "models list")
        if ex.path != CHAT_PATH or ex.method != "POST":
            return Continue(remove_headers=strip, skip_body=True)
        ex.chat = True
        if end_of_stream:
            return self._error(ex, APIError(400, "Request body is required", code="missing_body"))
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > cfg.server.max_body_bytes:
            return self._error(ex, _too_large(cfg.server.max_body_bytes))
        return Continue(remove_headers=strip)

    # ── request body ───────────────────────────────────────────────────────────────────────────
    async def on_request_body(self, ex: Exchange, body: bytes) -> Respond | Continue:
        cfg = ex.config
        if len(body) > cfg.server.max_body_bytes:
            return self._error(ex, _too_large(cfg.server.max_body_bytes))
        try:
            ex.request = request = parse_chat_request(body)
            repeat = self._literal_repeat(ex, request)
            if repeat is not None:
                return repeat
            signals = await self._signals(ex, request)
            ex.decision = decision = decide(cfg, request, signals, jailbreak_threshold=self._jb_threshold())
        except APIError as err:
            return self._error(ex, err)
        if decision.injection:
            self.metrics.injections.labels(decision.injection).inc()

        if decision.blocked:
            return self._blocked(ex, decision)

        model = cfg.model(decision.model)
        assert model is not None
        hit = await self._cache_lookup(ex, request, decision, signals)
        if hit is not None:
            return hit

        new_body = dump_body(rewrite_body(request.body, model, decision))
        ex.forwarded_at = time.perf_counter()
        self.metrics.decision_seconds.observe(ex.forwarded_at - ex.started)
        self._log(ex, "forward")
        return Continue(
            set_headers={cfg.route_header: model.name},
            body=new_body,
            clear_route_cache=True,
        )

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

    async def _signals(self, ex: Exchange, request: ChatRequest) -> Any:
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
        return result

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
        if hit is None and ex.store:
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
        ex.response_status = int(status) if status.isdigit() else 0
        out: dict[str, str] = {}
        if ex.chat and ex.decision is not None:
            out = self.decision_headers(ex)
            if ex.forwarded_at is not None:
                self.metrics.upstream_ttfb_seconds.labels(ex.decision.model).observe(
                    time.perf_counter() - ex.forwarded_at)
            self.metrics.upstream_responses.labels(ex.decision.model, f"{ex.response_status // 100}xx").inc()
        ok = 200 <= ex.response_status < 300
        tap = bool(ex.store and ok and self.cache is not None)
        if not tap:
            self._finish(ex, "forwarded" if ok else f"upstream_{ex.response_status}")
        return ResponsePlan(out, tap)

    def on_response_body(self, ex: Exchange, chunk: bytes, end_of_stream: bool) -> None:
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
                comp = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                comp = None
        verdict = "incomplete" if comp is None else response_cacheable(
            ex.response_status or 0, comp, max_bytes=ex.config.semantic_cache.max_response_bytes)
        if verdict != "ok":
            comp = None
            self.metrics.cache_stores.labels(f"skipped_{verdict}").inc()
        else:
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
        if d.blocked:
            out[H.BLOCKED] = d.blocked
        if d.injection:
            out[H.INJECTION] = d.injection
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
        if cfg.guards.block_response == "completion":
            from .cache import render_sse

            comp = completion(d.model, message, finish_reason="content_filter")
            stream = ex.request is not None and ex.request.stream
            if stream:
                return Respond(200, render_sse(comp), {**hdrs, "content-type": SSE}, f"blocked {d.blocked}")
            return Respond(200, json.dumps(comp).encode(), {**hdrs, "content-type": JSON}, f"blocked {d.blocked}")
        body = error_body(message, type=d.blocked, code=f"{d.blocked}_detected")
        return Respond(403, body, {**hdrs, "content-type": JSON}, f"blocked {d.blocked}")

    def _error(self, ex: Exchange, err: APIError) -> Respond:
        self.metrics.request_errors.labels(str(err.status), err.code or err.type).inc()
        log.info("rejected", extra={"request_id": ex.request_id, "status": err.status, "code": err.code,
                                    "error": err.message[:200]})
        ex.finished = True
        return Respond(err.status, err.body(), {"content-type": JSON, H.CACHE: "bypass"}, f"error {err.code}")

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
        fields.update(extra)
        cfg = ex.config
        if cfg.logging.log_prompts and log.isEnabledFor(logging.DEBUG) and ex.request is not None:
            fields["prompt"] = ex.request.last_user_text()[:500]
        log.info(event, extra=fields)
        if event == "cache_hit":
            self._finish(ex, "cache_hit")


def _too_large(limit: int) -> APIError:
    return APIError(413, f"Request body exceeds the router's limit of {limit} bytes",
                    code="request_too_large")

