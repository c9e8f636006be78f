"""What the router does with one HTTP exchange: the stages of router_extproc/stages/, called in order.

parse → signals → decide → cache lookup → act (respond or forward) → response tap → store.

`server.py` feeds each ext_proc message to the matching `on_*` method and turns the returned value into a
ProcessingResponse. Per-request state lives in an `Exchange`, created per gRPC stream. This module only orders
the stages and turns their refusals into replies; each rule lives in its stage (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .config import RouterConfig
from .decision import Decision
from .errors import Overloaded
from .language import LanguageDetector
from .live import LiveHooks, LiveState
from .metrics import Metrics
from .openai import CHAT_PATH, APIError
from .stages import act, decide, parse, reply, signals as signal_stage, tap
from .stages.cache import CacheStage
from .stages.contracts import Cache, SignalSource
from .stages.exchange import Continue, Exchange, Respond, ResponsePlan
from .stages.record import Recorder
from .routes import for_config
from .thresholds import Thresholds, resolve
from .tracing import Tracer
from .usage import UsageHooks

__all__ = ["Continue", "Exchange", "Respond", "ResponsePlan", "Router"]


class Router:
    """The request brain. Holds the current config and the shared engines (signals, cache, metrics)."""

    def __init__(self, config: RouterConfig, *, signals: SignalSource | None = None, cache: Cache | None = None,
                 metrics: Metrics | None = None, tracer: Tracer | None = None, routes: Any = ...) -> None:
        self._config = config
        # routes: the config's examples embedded (routes.for_config); `...`: embed them here, synchronously
        if routes is ...:
            routes = for_config(config, signals)
        self._thresholds: Thresholds = resolve(config, getattr(signals, "labels", None), routes)
        self.signals = signals
        self.cache = cache
        self.metrics = metrics or Metrics()
        self.record = Recorder(self.metrics)
        self.cache_stage = CacheStage(cache, signals, self.metrics)
        # live: per-model health, latency and errors (live.py, rendered into /metrics at scrape time), tokens and
        # budgets (usage.py), tracing (tracing.py)
        self.live = LiveState()
        self.metrics.live.bind(self.live, lambda: self._config)
        self.live_hooks = LiveHooks(self.live, self.metrics)
        self.usage = UsageHooks(self.metrics, self.live)
        self.tracer = tracer if tracer is not None else Tracer.from_config(config.tracing)
        # the language signal's model, loaded (in a thread) once a config's rules read it (language.py)
        self.language = LanguageDetector()
        if config.rules.reads_language:
            self.language.warm()

    @property
    def config(self) -> RouterConfig:
        return self._config

    @property
    def routes(self) -> Any:
        """The running config's embedded routes (a reload reuses their vectors)."""
        return self._thresholds.routes

    def swap_config(self, config: RouterConfig, routes: Any = ...) -> None:
        """`routes`: the new config's routes, embedded off the event loop (ConfigWatcher); `...`: embed them here."""
        if routes is ...:
            routes = for_config(config, self.signals, self.routes)
        # The cache section is read once, at start-up (the cache's backend, index and verifier are built from it):
        # a reload keeps the running section, so every reader sees the one copy the cache runs with.
        config = replace(config, semantic_cache=self._config.semantic_cache)
        # A single reference assignment: requests in flight keep the config their Exchange captured.
        # Both references change together (no await between): an exchange sees one config and its thresholds.
        self._thresholds = resolve(config, getattr(self.signals, "labels", None), routes)
        self._config = config
        self.cache_stage.config_changed()
        if config.rules.reads_language:
            self.language.warm()

    def new_exchange(self) -> Exchange:
        return Exchange(config=self._config, thresholds=self._thresholds)

    # ── request ────────────────────────────────────────────────────────────────────────────────
    def on_request_headers(self, ex: Exchange, headers: Mapping[str, str], end_of_stream: bool) -> Respond | Continue:
        try:
            return parse.request_headers(ex, headers, end_of_stream)
        except APIError as err:
            return act.reject(ex, err, self.record)

    async def on_request_body(self, ex: Exchange, body: bytes) -> Respond | Continue:
        if ex.hop:   # live: Envoy's fallback attempt: the body rewritten for the next model
            return Continue(body=self.live_hooks.hop_body(ex, body))
        # live: one trace per request: a child of Envoy's ext_proc span when Envoy traces, else of the client's
        ex.span = self.tracer.start(ex.trace_headers or ex.headers, ex.path)
        try:
            ex.request = request = await parse.request_body(ex, body)
            if ex.path == CHAT_PATH:
                repeat = self.cache_stage.literal_repeat(ex, request, self._config)
                if repeat is not None:
                    return act.answer_hit(ex, repeat, self.record)
            with self.tracer.stage(ex.span, "signals"):
                signals = await signal_stage.read(ex, request, self.signals, self.metrics)
            with self.tracer.stage(ex.span, "decision"):
                language = await decide.language(ex, request, self.language)
                repaired = await decide.route_reading(ex, request, signals, self.signals, language)
                decision = decide.run(ex, request, signals, language, repaired)
        except APIError as err:
            return act.reject(ex, err, self.record)
        except Overloaded:
            return act.reject(ex, reply.overloaded_error(), self.record, {"retry-after": "1"})
        self.record.decided(decision)
        if decision.blocked:
            return act.block(ex, decision, self.record)

        body = signal_stage.redact(ex, request.body, signals, self.metrics)
        if ex.redaction is None and ex.path == CHAT_PATH:
            with self.tracer.stage(ex.span, "cache_lookup"):
                hit = await self.cache_stage.lookup(ex, request, decision, signals, self._config)
            if hit is not None:
                return act.answer_hit(ex, hit, self.record)
        spent = self.usage.over_budget(ex)   # live: the tenant's token budget (usage.py)
        if spent is not None:
            err, retry = spent
            return act.reject(ex, err, self.record, retry)
        return self._forward(ex, body, decision)

    def _forward(self, ex: Exchange, body: dict[str, Any], decision: Decision) -> Continue:
        # live: another model when the chosen one is down, cooling or over its bounds; its answer is then not stored
        # (the cache key names the chosen one). The route headers name the next candidate for Envoy's last attempt,
        # and the upstream call joins the request's trace.
        steered, route = decide.steer(ex, decision, self.live_hooks)
        if steered is not decision:
            self.abandon_store(ex)
        return act.forward(ex, body, steered, self.record, {**route, **self.tracer.inject(ex.span)})

    # ── response ───────────────────────────────────────────────────────────────────────────────
    def on_response_headers(self, ex: Exchange, headers: Mapping[str, str]) -> ResponsePlan:
        return tap.response_headers(ex, headers, self.cache_stage, self.record, self.live_hooks, self.usage)

    def on_response_body(self, ex: Exchange, chunk: bytes, end_of_stream: bool) -> bytes | None:
        """Returns the chunk to send on in place of `chunk`, or None to send it unchanged."""
        return tap.response_body(ex, chunk, end_of_stream, self.cache_stage, self.record, self.usage, self.tracer)

    def on_stream_end(self, ex: Exchange) -> None:
        tap.stream_end(ex, self.cache_stage, self.record, self.live_hooks, self.tracer)

    # ── faults ─────────────────────────────────────────────────────────────────────────────────
    def internal_error(self, ex: Exchange, phase: str) -> Respond:
        """A fault of the router's own in a request phase: a defined OpenAI-shaped 500, never a broken stream
        (which Envoy turns into its own 500 or, with failure_mode_allow, into an unguarded forward)."""
        self.record.internal_error(ex, phase)
        self.abandon_store(ex)
        return act.reject(ex, reply.internal_error(), self.record)

    def abandon_store(self, ex: Exchange) -> None:
        """Stop tapping this exchange's answer (it still reaches the client); followers go upstream."""
        tap.abandon(ex, self.cache_stage)
