"""Live routing state: what the router learns per model from the answers it sees, and what it does with it.

Per model, over a sliding window (`live.window_s`): answers and errors (5xx, or a stream that ended without an
answer), time to first byte, and requests in flight. From Envoy's admin API (`/clusters`, polled every
`live.envoy_poll_s`): how many of the model's replicas are healthy (active health checks, outlier detection).

A model is *available* unless
- Envoy reports none of its replicas healthy (`down`), or
- it is cooling down: its error rate or its p95 time to first byte went over the bound (`cooling`, for
  `live.cooldown_s`); after that one request is let through as a probe (`probing`) and its answer decides: a good
  answer clears the window, a bad one starts another cool-down.

`reroute` is the one place the decision's model can change after `decide`: an auto request whose model is not
available goes to the next candidate of its category (the decision's list, in its order, PII allow-lists still
applied), or — with `live.selection` latency_aware / least_loaded — to the available candidate with the lowest p50
time to first byte / fewest requests in flight. Explicit model names, blocked requests and requests routed for an
injection never change model.

Everything here is O(window) at most, on the event loop, with no I/O but the Envoy poll (a worker thread).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .config import RouterConfig
from .config_live import LiveConfig
from .decision import Decision
from .headers import FALLBACK, NEXT, NEXT_REASONING

log = logging.getLogger("router_extproc.live")

# The states, in the order of the router_live_model_state gauge's values (docs/operations.md).
STATES = ("ok", "probing", "cooling", "down")
# Why a request went to another model: the bounded values of the x-router-fallback reason and the metric label.
REASONS = ("down", "cooling", "probing", "latency_aware", "least_loaded", "retry")
# Envoy host health flags that take a replica out of rotation.
# (pending_active_hc is not one: Envoy routes to a host awaiting its first check unless told otherwise)
_UNHEALTHY_FLAGS = ("failed_active_health_check", "failed_outlier_check", "excluded_via_immediate_hc_fail",
                    "active_hc_timeout", "pending_dynamic_removal")


# The window holds the last `window_s` seconds but at most this many answers per model, so every statistic is
# bounded work per request whatever the traffic (measured: an unbounded window cost 0.3 ms per request at 20k req).
MAX_EVENTS = 256
# Quantiles over more answers than this are recomputed at most every QUANTILE_TTL_S (a sort per request is not free).
QUANTILE_EXACT = 32
QUANTILE_TTL_S = 0.5


@dataclass(slots=True)
class ModelLive:
    """One model's window and state."""

    events: deque = field(default_factory=deque)   # (monotonic time, error: bool, ttfb seconds or None)
    errors: int = 0                                # errors among `events`
    in_flight: int = 0
    cooling_until: float = 0.0
    probe_out: bool = False
    replicas_healthy: int | None = None            # from Envoy; None: not known (poll off or not yet answered)
    replicas_total: int | None = None
    last_cause: str = ""
    generated: deque = field(default_factory=deque)   # (monotonic time, completion tokens, seconds): tokens/s
    _q: tuple[float, float | None, float | None] = (float("-inf"), None, None)   # (computed at, p50, p95)

    def add(self, now: float, window_s: float, error: bool, ttfb_s: float | None) -> None:
        self.trim(now, window_s)
        if len(self.events) >= MAX_EVENTS:
            self._drop()
        self.events.append((now, error, ttfb_s))
        self.errors += error

    def _drop(self) -> None:
        self.errors -= self.events.popleft()[1]

    def trim(self, now: float, window_s: float) -> None:
        cut = now - window_s
        ev = self.events
        while ev and ev[0][0] < cut:
            self._drop()

    def clear(self) -> None:
        self.events.clear()
        self.errors = 0
        self._q = (float("-inf"), None, None)

    def counts(self) -> tuple[int, int]:
        return len(self.events), self.errors

    def quantiles(self, now: float) -> tuple[float | None, float | None]:
        """p50 and p95 time to first byte of the answers in the window."""
        at, p50, p95 = self._q
        if len(self.events) > QUANTILE_EXACT and now - at < QUANTILE_TTL_S:
            return p50, p95
        values = sorted(e[2] for e in self.events if e[2] is not None)
        if values:
            p50 = values[min(len(values) - 1, int(0.5 * len(values)))]
            p95 = values[min(len(values) - 1, int(0.95 * len(values)))]
        else:
            p50 = p95 = None
        self._q = (now, p50, p95)
        return p50, p95


@dataclass(frozen=True, slots=True)
class Reroute:
    decision: Decision
    header: str          # the x-router-fallback value: "<from>><to>;<reason>"
    reason: str


class LiveState:
    """Per-model live statistics of one router process. Not shared across processes: each worker learns from the
    answers it sees (and all read the same Envoy health)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._models: dict[str, ModelLive] = {}

    def model(self, name: str) -> ModelLive:
        m = self._models.get(name)
        if m is None:
            m = self._models[name] = ModelLive()
        return m

    # ── what the router sees ───────────────────────────────────────────────────────────────────
    def started(self, name: str) -> None:
        self.model(name).in_flight += 1

    def ended(self, name: str) -> None:
        m = self.model(name)
        m.in_flight = max(0, m.in_flight - 1)

    def answered(self, cfg: LiveConfig, name: str, status: int | None, ttfb_s: float | None) -> None:
        """An answer's status (None or 0: no answer, the stream ended first) and its time to first byte."""
        now = self._clock()
        m = self.model(name)
        error = status is None or status == 0 or status >= 500
        m.add(now, cfg.window_s, error, None if error else ttfb_s)
        if m.probe_out:
            # the probe's answer decides: good → back in rotation with a clean window, bad → cool down again
            m.probe_out = False
            slow = cfg.latency_p95_s > 0 and ttfb_s is not None and ttfb_s > cfg.latency_p95_s
            if error or slow:
                self._cool(m, now, cfg, "probe failed" if error else "probe slow")
            else:
                m.clear()
                m.cooling_until = 0.0
            return
        if m.cooling_until:
            return
        n, errors = m.counts()
        if n < cfg.min_requests:
            return
        if errors / n > cfg.error_rate:
            self._cool(m, now, cfg, f"error rate {errors}/{n}")
        elif cfg.latency_p95_s > 0:
            p95 = m.quantiles(now)[1]
            if p95 is not None and p95 > cfg.latency_p95_s:
                self._cool(m, now, cfg, f"p95 ttfb {p95:.2f}s")

    @staticmethod
    def _cool(m: ModelLive, now: float, cfg: LiveConfig, cause: str) -> None:
        m.cooling_until = now + cfg.cooldown_s
        m.last_cause = cause
        log.warning("model cooling down", extra={"cause": cause, "cooldown_s": cfg.cooldown_s})

    def generation(self, cfg: LiveConfig, name: str, tokens: int, seconds: float) -> None:
        """An answer's completion tokens and the time it took (from usage.py, when usage is read)."""
        if tokens <= 0 or seconds <= 0:
            return
        now = self._clock()
        g = self.model(name).generated
        while g and (g[0][0] < now - cfg.window_s or len(g) >= MAX_EVENTS):
            g.popleft()
        g.append((now, tokens, seconds))

    def set_replicas(self, name: str, healthy: int, total: int) -> None:
        m = self.model(name)
        m.replicas_healthy, m.replicas_total = healthy, total

    # ── what the decision may use ──────────────────────────────────────────────────────────────
    def state(self, name: str, now: float | None = None) -> str:
        m = self._models.get(name)
        if m is None:
            return "ok"
        if m.replicas_healthy == 0:
            return "down"
        now = self._clock() if now is None else now
        if m.cooling_until:
            return "cooling" if now < m.cooling_until else "probing"
        return "ok"

    def _admit(self, name: str, now: float) -> str | None:
        """None when `name` may take this request (a probe is claimed here), else the reason it may not."""
        state = self.state(name, now)
        if state == "ok":
            return None
        if state == "probing":
            m = self.model(name)
            if not m.probe_out:
                m.probe_out = True
                return None
        return state

    def reroute(self, config: RouterConfig, decision: Decision) -> Reroute | None:
        """The decision to forward instead of `decision`, or None to keep it."""
        cfg = config.live
        if not cfg.enabled or not decision.auto or decision.blocked or decision.injection == "routed":
            return None
        now = self._clock()
        names = candidates(config, decision)
        if cfg.selection != "best" and len(names) > 1:
            chosen = self._pick(cfg.selection, [n for n in names if self.state(n, now) in ("ok",)])
            if chosen is not None and chosen != decision.model:
                return _moved(config, decision, chosen, cfg.selection)
        why = self._admit(decision.model, now)
        if why is None:
            return None
        for name in names[1:]:
            if self._admit(name, now) is None:
                return _moved(config, decision, name, why)
        return None   # nothing better: the chosen model gets it (Envoy may still find a replica)

    def _pick(self, selection: str, names: list[str]) -> str | None:
        if not names:
            return None
        if selection == "least_loaded":
            return min(names, key=lambda n: self.model(n).in_flight)      # min() keeps the first of equals
        # latency_aware: a model without a measurement yet counts as fastest, so it gets measured
        now = self._clock()
        return min(names, key=lambda n: self.model(n).quantiles(now)[0] or 0.0)

    # ── what operators see ─────────────────────────────────────────────────────────────────────
    def snapshot(self, cfg: LiveConfig, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        now = self._clock()
        out: dict[str, dict[str, Any]] = {}
        for name in names:
            m = self.model(name)
            m.trim(now, cfg.window_s)
            n, errors = m.counts()
            p50, p95 = m.quantiles(now)
            gen = [g for g in m.generated if g[0] >= now - cfg.window_s]
            secs = sum(g[2] for g in gen)
            out[name] = {
                "state": self.state(name, now), "answers": n, "errors": errors,
                "error_rate": round(errors / n, 4) if n else 0.0,
                "ttfb_p50_s": None if p50 is None else round(p50, 4),
                "ttfb_p95_s": None if p95 is None else round(p95, 4),
                "in_flight": m.in_flight,
                "tokens_per_s": round(sum(g[1] for g in gen) / secs, 2) if secs else None,
                "cooling_left_s": round(max(0.0, m.cooling_until - now), 2) if m.cooling_until else 0.0,
                "replicas_healthy": m.replicas_healthy, "replicas_total": m.replicas_total,
                "last_cause": m.last_cause,
            }
        return out


def candidates(config: RouterConfig, decision: Decision) -> list[str]:
    """The models this decision may go to, best first: its model, then its category's other models in score order;
    only those whose PII allow-list covers what the request carries (a redacted value never reaches a model)."""
    route = config.routing.category(decision.category) if decision.category else None
    ordered = [name for name, _ in route.model_scores] if route is not None else [config.default_model]
    if decision.rule is not None:   # an operator's decision (rules.py): only the models its rule lists
        ordered = list(decision.candidates)
    names = [decision.model, *[n for n in ordered if n != decision.model]]
    pii = decision.pii_types - decision.pii_redact
    if pii:
        names = [n for n in names if (m := config.model(n)) is not None and m.allows_pii(pii)]
    return names


def _moved(config: RouterConfig, decision: Decision, name: str, reason: str) -> Reroute:
    model = config.model(name)
    assert model is not None
    # the family decides whether reasoning can be switched (decision._route_auto's rule)
    reasoning = None if model.family == "none" else decision.reasoning
    new = replace(decision, model=name, reasoning=reasoning,
                  reasoning_effort=decision.reasoning_effort if reasoning else None,
                  reason=f"{decision.reason}, live: {decision.model} {reason} → {name}")
    return Reroute(new, f"{decision.model}>{name};{reason}", reason)


# ── Envoy's view of each model's replicas ──────────────────────────────────────────────────────────
def replica_health(doc: dict[str, Any], clusters: dict[str, str]) -> dict[str, tuple[int, int]]:
    """{model: (healthy, total)} from Envoy's `/clusters?format=json`; `clusters` maps cluster name → model."""
    out: dict[str, tuple[int, int]] = {}
    for c in doc.get("cluster_statuses", []):
        model = clusters.get(c.get("name", ""))
        if model is None:
            continue
        hosts = c.get("host_statuses", [])
        healthy = 0
        for h in hosts:
            hs = h.get("health_status", {})
            if hs.get("eds_health_status", "HEALTHY") in ("HEALTHY", "DEGRADED") and not any(
                    hs.get(f) for f in _UNHEALTHY_FLAGS):
                healthy += 1
        out[model] = (healthy, len(hosts))
    return out


async def poll_envoy(state: LiveState, get_config: Callable[[], RouterConfig], *, stop: asyncio.Event) -> None:
    """Every `live.envoy_poll_s`, read healthy replicas per model from Envoy's admin API (a worker thread does the
    HTTP). An unreachable admin leaves the last known counts alone... for one poll: then they are forgotten, so a
    stale 'down' never pins a model."""
    loop = asyncio.get_running_loop()
    misses = 0
    while not stop.is_set():
        cfg = get_config()
        period = cfg.live.envoy_poll_s
        if not cfg.live.enabled or period <= 0:
            await _sleep(stop, 5.0)
            continue
        url = f"http://{cfg.envoy.admin_host}:{cfg.envoy.admin_port}/clusters?format=json"
        try:
            doc = await loop.run_in_executor(None, _fetch_json, url)
            misses = 0
            for model, (healthy, total) in replica_health(doc, {m.cluster: m.name for m in cfg.models}).items():
                state.set_replicas(model, healthy, total)
        except (OSError, ValueError):
            misses += 1
            if misses == 2:
                for m in cfg.models:
                    state.model(m.name).replicas_healthy = state.model(m.name).replicas_total = None
        await _sleep(stop, period)


def _fetch_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.loads(r.read())


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


class LiveCollector:
    """Prometheus collector: the live state rendered at scrape time, so the request path sets no gauges. Label
    values are the configured model names and STATES (bounded)."""

    def __init__(self) -> None:
        self._state: LiveState | None = None
        self._get_config: Callable[[], RouterConfig] | None = None

    def bind(self, state: LiveState, get_config: Callable[[], RouterConfig]) -> None:
        """The Router's state (Metrics registers the collector before any Router exists)."""
        self._state, self._get_config = state, get_config

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        snap: dict[str, dict[str, Any]] = {}
        if self._state is not None and self._get_config is not None:
            cfg = self._get_config()
            snap = self._state.snapshot(cfg.live, [m.name for m in cfg.models])
        fams = {
            "state": GaugeMetricFamily("router_live_model_state", "Live state per model: 0 ok, 1 probing, 2 cooling, "
                                       "3 down (no healthy replica in Envoy).", labels=["model"]),
            "error_rate": GaugeMetricFamily("router_live_error_rate", "Share of 5xx or unanswered requests in the "
                                            "live window.", labels=["model"]),
            "ttfb_p95_s": GaugeMetricFamily("router_live_ttfb_p95_seconds", "p95 time to first byte in the live "
                                            "window.", labels=["model"]),
            "in_flight": GaugeMetricFamily("router_live_in_flight", "Requests forwarded and not yet ended.",
                                           labels=["model"]),
            "replicas_healthy": GaugeMetricFamily("router_live_replicas_healthy", "Replicas Envoy reports healthy "
                                                  "(absent while unknown).", labels=["model"]),
        }
        for name, s in snap.items():
            fams["state"].add_metric([name], STATES.index(s["state"]))
            fams["error_rate"].add_metric([name], s["error_rate"])
            if s["ttfb_p95_s"] is not None:
                fams["ttfb_p95_s"].add_metric([name], s["ttfb_p95_s"])
            fams["in_flight"].add_metric([name], s["in_flight"])
            if s["replicas_healthy"] is not None:
                fams["replicas_healthy"].add_metric([name], s["replicas_healthy"])
        return list(fams.values())

    def describe(self) -> Iterable[Any]:
        return []   # unchecked collector: its families are known only at scrape time


# ── the fallback attempt (envoy.resilience.fallback) ───────────────────────────────────────────────
def next_candidate(state: LiveState, config: RouterConfig, decision: Decision) -> str | None:
    """The model Envoy's last attempt goes to when every try of the decision's model failed before the first response
    byte: the next candidate that is in rotation. None: no fallback attempt (explicit model, blocked, injection
    routed, switched off, or no other candidate)."""
    if (not config.live.enabled or not config.envoy.resilience.fallback or not decision.auto or decision.blocked
            or decision.injection == "routed"):
        return None
    now = state._clock()
    return next((n for n in candidates(config, decision)[1:] if state.state(n, now) == "ok"), None)


def reasoning_header(config: RouterConfig, decision: Decision, name: str) -> str:
    """The x-router-next-reasoning value: the decision's reasoning switch as the next model's family takes it."""
    model = config.model(name)
    if model is None or model.family == "none" or decision.reasoning is None:
        return ""
    return f"on:{decision.reasoning_effort or 'medium'}" if decision.reasoning else "off"


def hop_decision(config: RouterConfig, headers: dict[str, str], next_name: str) -> Decision | None:
    """The decision the fallback hop rewrites the body with (None: an unknown model name)."""
    if config.model(next_name) is None:
        return None
    value = headers.get(NEXT_REASONING, "")
    on, _, effort = value.partition(":")
    reasoning = True if on == "on" else False if on == "off" else None
    return Decision(model=next_name, auto=True, reasoning=reasoning,
                    reasoning_effort=effort if reasoning and effort in ("low", "medium", "high") else None,
                    reason="live: fallback attempt")


# ── what the stages call (their `# live:` lines) ───────────────────────────────────────────────────
class LiveHooks:
    """The live-routing steps of the stages (decide.steer, tap), kept here so each hook there is a line or two. `ex`
    is the stages' Exchange (fields: config, decision, fallback, live_model, next_model, hop, forwarded_at,
    response_status)."""

    def __init__(self, state: LiveState, metrics: Any) -> None:
        self.state = state
        self.metrics = metrics

    # request path
    def forward(self, ex: Any, decision: Decision) -> tuple[Decision, dict[str, str]]:
        """Just before forwarding: the decision to forward (another model when the chosen one is down, cooling or over
        its bounds) and the route headers naming the next candidate for Envoy's last attempt."""
        cfg = ex.config
        moved = self.state.reroute(cfg, decision)
        if moved is not None:
            self.metrics.live_fallbacks.labels(decision.model, moved.decision.model, moved.reason).inc()
            decision, ex.fallback = moved.decision, moved.header
        ex.live_model = decision.model
        self.state.started(decision.model)
        headers: dict[str, str] = {}
        ex.next_model = next_candidate(self.state, cfg, decision)
        if ex.next_model is not None:
            headers[NEXT] = ex.next_model
            headers[NEXT_REASONING] = reasoning_header(cfg, decision, ex.next_model)
        return decision, headers

    # response path
    def answered(self, ex: Any, headers: dict[str, str] | Any) -> bool:
        """The response headers: records the answer (and a fallback attempt's, marked by the hop). True when the
        answer came from the next model (the caller stops storing it: the cache key names the chosen one)."""
        moved = False
        d = ex.decision
        if d is not None and ex.next_model is not None and headers.get(FALLBACK, "") == f"{ex.next_model};retry":
            # every try of the chosen model failed before the first byte: that is its error; the next one answered
            self.metrics.live_fallbacks.labels(d.model, ex.next_model, "retry").inc()
            if ex.live_model is not None:
                self.state.answered(ex.config.live, ex.live_model, None, None)
                self.state.ended(ex.live_model)
                self.state.started(ex.next_model)
            ex.fallback = f"{d.model}>{ex.next_model};retry"
            ex.decision = replace(d, model=ex.next_model, reason=f"{d.reason}, live: {d.model} failed → {ex.next_model}")
            ex.live_model, moved = ex.next_model, True
        if ex.live_model is not None and ex.forwarded_at is not None:
            self.state.answered(ex.config.live, ex.live_model, ex.response_status, time.perf_counter() - ex.forwarded_at)
        return moved

    def stream_end(self, ex: Any) -> None:
        """No longer in flight; forwarded and never answered counts as an error."""
        if ex.live_model is None:
            return
        if ex.response_status is None:
            self.state.answered(ex.config.live, ex.live_model, None, None)
        self.state.ended(ex.live_model)
        ex.live_model = None

    # Envoy's fallback attempt (the internal listener envoy_config.HOP)
    @staticmethod
    def hop_body(ex: Any, body: bytes) -> bytes | None:
        """The retried body (written for the chosen model) rewritten for the next one; None leaves it alone (the
        attempt then fails at the upstream, as it would without the router)."""
        from .decision import rewrite_body
        from .openai import RESPONSES_PATH, APIError, canonical_path, dump_body, load_json_object, responses_reasoning

        cfg = ex.config
        decision = hop_decision(cfg, ex.headers, ex.hop)
        try:
            parsed = load_json_object(body)
        except APIError:
            return None
        model = cfg.model(decision.model) if decision is not None else None
        if model is None:
            return None
        if decision.reasoning is not None:
            # the router switched reasoning for the chosen model's family: take that family's switch out, the next
            # model's own is set below (what the client sent there was already replaced on the way in)
            parsed.pop("reasoning_effort", None)
            parsed.pop("reasoning", None)
            kwargs = {k: v for k, v in (parsed.pop("chat_template_kwargs", None) or {}).items()
                      if k not in ("enable_thinking", "thinking")}
            if kwargs:
                parsed["chat_template_kwargs"] = kwargs
        new = rewrite_body(parsed, model, decision)
        if canonical_path(ex.headers.get(":path", "/")) == RESPONSES_PATH:   # as stages/act.forward does
            new = responses_reasoning(new)
        return dump_body(new)

    @staticmethod
    def hop_mark(ex: Any) -> dict[str, str]:
        """The fallback attempt's answer says where it came from (the client's own stream reads it)."""
        return {FALLBACK: f"{ex.hop};retry"}
