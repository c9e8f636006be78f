"""Typed configuration of live routing (issue #25): Envoy's resilience mechanics and the router's live state.

Two sections, parsed here so config.py only calls in (its `# live:` lines):

``envoy.resilience`` — what `envoy-config` renders into each model's route and cluster. Envoy does the mechanics:
retries across a model's endpoints (bounded by a retry budget), outlier detection, active health checks, circuit
breakers.

``live`` — what the router learns per model from the responses it sees (and from Envoy's admin API) and how the
decision may use it: a model over its error or latency bound cools down and the next candidate is taken.

``models[].endpoints`` — a model served by several replicas (a list of host:port) instead of one ``endpoint``.

Every error names the file and the dotted key (config_reader.Reader).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config_reader import Reader

# What Envoy retries on. gateway-error is 502/503/504 from the upstream; reset and connect-failure cover a replica
# that died or refused; retriable-status-codes adds `retriable_status_codes`.
RETRY_ON = ("connect-failure", "refused-stream", "reset", "gateway-error", "5xx", "retriable-status-codes",
            "retriable-4xx")
SELECTIONS = ("best", "latency_aware", "least_loaded")


@dataclass(frozen=True, slots=True)
class RetryConfig:
    attempts: int = 2                       # retries after the first try (0: none)
    retry_on: tuple[str, ...] = ("connect-failure", "refused-stream", "reset", "gateway-error")
    retriable_status_codes: tuple[int, ...] = ()
    per_try_timeout_s: float = 0.0          # 0: only the route timeout (an LLM answer may legitimately take minutes)
    backoff_base_ms: int = 25
    backoff_max_ms: int = 250
    # Envoy's retry budget (circuit_breakers.thresholds.retry_budget): retries in flight at most this share of
    # active requests, so retries cannot multiply the load on a fleet that is already failing. Measured: at 20 % a
    # replica killed under c=32 failed 3-5 requests (flags UO: the budget), its in-flight requests failing at once.
    budget_percent: float = 50.0
    min_retry_concurrency: int = 8


@dataclass(frozen=True, slots=True)
class OutlierConfig:
    enabled: bool = True
    consecutive_5xx: int = 5
    consecutive_gateway_failure: int = 3
    interval_s: float = 2.0
    base_ejection_s: float = 10.0
    max_ejection_percent: int = 100


@dataclass(frozen=True, slots=True)
class HealthCheckConfig:
    enabled: bool = True
    path: str = "/health"                   # vLLM, SGLang and TGI serve it; /v1/models works for most others
    interval_s: float = 2.0
    timeout_s: float = 1.0
    unhealthy_threshold: int = 2
    healthy_threshold: int = 1


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    max_connections: int = 1024
    max_pending_requests: int = 1024
    max_requests: int = 1024


@dataclass(frozen=True, slots=True)
class ResilienceConfig:
    retries: RetryConfig = RetryConfig()
    outlier_detection: OutlierConfig = OutlierConfig()
    health_check: HealthCheckConfig = HealthCheckConfig()
    circuit_breakers: CircuitBreakerConfig = CircuitBreakerConfig()
    panic_threshold_percent: float = 50.0   # Envoy's healthy_panic_threshold (its default); 0 never panics
    # When the retries on the chosen model are spent before the first response byte, one last attempt goes to the
    # next candidate the router named (x-router-next), its body rewritten by the router (envoy_config.py, live.py)
    fallback: bool = True


@dataclass(frozen=True, slots=True)
class LiveConfig:
    enabled: bool = True
    window_s: float = 30.0                  # the sliding window of each model's statistics
    min_requests: int = 5                   # fewer answers in the window than this: no error-rate verdict
    error_rate: float = 0.5                 # over this share of 5xx/resets in the window: the model cools down
    latency_p95_s: float = 0.0              # over this p95 time to first byte: cools down (0: no latency bound)
    cooldown_s: float = 10.0                # then one probe request is let through; its answer decides
    selection: str = "best"                 # best (the decision's order) | latency_aware | least_loaded
    envoy_poll_s: float = 1.0               # read healthy-host counts from Envoy's admin API (0: off)


def resilience(e: Reader) -> ResilienceConfig:
    """envoy.resilience (every key optional)."""
    r = e.section("resilience")
    rt, od, hc, cb = (r.section(n) for n in ("retries", "outlier_detection", "health_check", "circuit_breakers"))
    d = RetryConfig()
    retry_on = rt.str_list("on", d.retry_on)
    bad = [x for x in retry_on if x not in RETRY_ON]
    if bad:
        raise rt.error(rt.key("on"), f"unknown retry condition {bad[0]!r}; known: {', '.join(RETRY_ON)}")
    codes = rt.raw("retriable_status_codes", [])
    if not isinstance(codes, list) or not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c < 600
                                              for c in codes):
        raise rt.error(rt.key("retriable_status_codes"), f"must be a list of HTTP status codes, got {codes!r}")
    if codes and "retriable-status-codes" not in retry_on:
        retry_on = (*retry_on, "retriable-status-codes")
    retries = RetryConfig(
        attempts=rt.int("attempts", d.attempts, minimum=0),
        retry_on=retry_on,
        retriable_status_codes=tuple(codes),
        per_try_timeout_s=rt.float("per_try_timeout_s", d.per_try_timeout_s, lo=0),
        backoff_base_ms=rt.int("backoff_base_ms", d.backoff_base_ms, minimum=1),
        backoff_max_ms=rt.int("backoff_max_ms", d.backoff_max_ms, minimum=1),
        budget_percent=rt.float("budget_percent", d.budget_percent, lo=0, hi=100),
        min_retry_concurrency=rt.int("min_retry_concurrency", d.min_retry_concurrency, minimum=0),
    )
    if retries.backoff_max_ms < retries.backoff_base_ms:
        raise rt.error(rt.key("backoff_max_ms"), f"must be >= backoff_base_ms ({retries.backoff_base_ms})")
    o = OutlierConfig()
    outlier = OutlierConfig(
        enabled=od.bool("enabled", o.enabled),
        consecutive_5xx=od.int("consecutive_5xx", o.consecutive_5xx, minimum=1),
        consecutive_gateway_failure=od.int("consecutive_gateway_failure", o.consecutive_gateway_failure, minimum=1),
        interval_s=od.float("interval_s", o.interval_s, lo=0.1),
        base_ejection_s=od.float("base_ejection_s", o.base_ejection_s, lo=0.1),
        max_ejection_percent=od.int("max_ejection_percent", o.max_ejection_percent, minimum=1),
    )
    if outlier.max_ejection_percent > 100:
        raise od.error(od.key("max_ejection_percent"), "must be <= 100")
    h = HealthCheckConfig()
    path = hc.str("path", h.path)
    if not path.startswith("/"):
        raise hc.error(hc.key("path"), f"must start with /, got {path!r}")
    health = HealthCheckConfig(
        enabled=hc.bool("enabled", h.enabled),
        path=path,
        interval_s=hc.float("interval_s", h.interval_s, lo=0.1),
        timeout_s=hc.float("timeout_s", h.timeout_s, lo=0.05),
        unhealthy_threshold=hc.int("unhealthy_threshold", h.unhealthy_threshold, minimum=1),
        healthy_threshold=hc.int("healthy_threshold", h.healthy_threshold, minimum=1),
    )
    c = CircuitBreakerConfig()
    breakers = CircuitBreakerConfig(
        max_connections=cb.int("max_connections", c.max_connections, minimum=1),
        max_pending_requests=cb.int("max_pending_requests", c.max_pending_requests, minimum=1),
        max_requests=cb.int("max_requests", c.max_requests, minimum=1),
    )
    out = ResilienceConfig(retries=retries, outlier_detection=outlier, health_check=health,
                           circuit_breakers=breakers,
                           panic_threshold_percent=r.float("panic_threshold_percent", 50.0, lo=0, hi=100),
                           fallback=r.bool("fallback", True))
    for x in (rt, od, hc, cb, r):
        x.check_unknown()
    return out


def live(root: Reader) -> LiveConfig:
    """The top-level `live` section (every key optional)."""
    r = root.section("live")
    d = LiveConfig()
    out = LiveConfig(
        enabled=r.bool("enabled", d.enabled),
        window_s=r.float("window_s", d.window_s, lo=1),
        min_requests=r.int("min_requests", d.min_requests, minimum=1),
        error_rate=r.float("error_rate", d.error_rate, lo=0.01, hi=1),
        latency_p95_s=r.float("latency_p95_s", d.latency_p95_s, lo=0),
        cooldown_s=r.float("cooldown_s", d.cooldown_s, lo=0.1),
        selection=r.str("selection", d.selection, choices=SELECTIONS),
        envoy_poll_s=r.float("envoy_poll_s", d.envoy_poll_s, lo=0),
    )
    r.check_unknown()
    return out


def endpoints(m: Reader, hostport) -> tuple[tuple[str, int], ...]:
    """A model's replicas: `endpoints: [host:port, ...]`, or the single `endpoint` (exactly one of the two)."""
    many = m.raw("endpoints", None)
    one = m.raw("endpoint", None)
    if many is None:
        if one is None:
            raise m.error(m.key("endpoint"), "is required (or `endpoints`, a list of host:port)")
        return (hostport(m, "endpoint"),)
    if one is not None:
        raise m.error(m.key("endpoints"), "give either `endpoint` or `endpoints`, not both")
    if not isinstance(many, list) or not many:
        raise m.error(m.key("endpoints"), f"must be a non-empty list of host:port, got {many!r}")
    out = []
    for i, value in enumerate(many):
        out.append(hostport(Reader({"endpoint": value}, m.source, f"{m.key('endpoints')}[{i}]"), "endpoint"))
    if len(set(out)) != len(out):
        raise m.error(m.key("endpoints"), "lists the same host:port twice")
    return tuple(out)
