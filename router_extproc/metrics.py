"""Prometheus instruments, and nothing else. One `Metrics` per process, on its own registry (no
global mutable state: tests build as many as they like)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# The one list of router_cache_lookups_total's `result` values (the cache service and the pipeline emit them); the
# dashboard's hit ratio and docs/operations.md are checked against it (tests/unit/test_metric_labels.py).
CACHE_LOOKUP_RESULTS = ("exact_hit", "hit", "miss", "refused", "unavailable", "error", "skipped")
CACHE_HIT_RESULTS = ("exact_hit", "hit")   # an answer served from the cache (exact, semantic)
# router_cache_stores_total's `result`: the cache service's, then the pipeline's skipped_<verdict of
# cache.keys.response_cacheable> (and too_large for an answer over the tap's limit)
CACHE_STORE_RESULTS = ("queued", "stored", "duplicate", "not_cacheable", "too_large", "dropped", "skipped_status",
                       "skipped_not-a-completion", "skipped_no-choices", "skipped_incomplete", "skipped_too-large",
                       "skipped_invalid")

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_UPSTREAM = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "router_requests_total", "Chat requests by decision, model, category and outcome.",
            ["decision", "model", "category", "outcome"], registry=r)
        self.request_errors = Counter(
            "router_request_errors_total", "Requests answered with an error by the router, by HTTP status and code.",
            ["status", "code"], registry=r)
        self.decision_seconds = Histogram(
            "router_decision_duration_seconds", "Time from the request body to the router's answer to Envoy.",
            registry=r, buckets=_LATENCY)
        self.signal_seconds = Histogram(
            "router_signal_duration_seconds", "Signal extraction time per stage.", ["stage"],
            registry=r, buckets=_LATENCY)
        self.injections = Counter(
            "router_injections_total", "Requests whose tool results or documents read as a prompt injection, by "
            "action taken (flagged, blocked, routed).", ["action"], registry=r)
        self.cache_lookups = Counter(
            "router_cache_lookups_total", f"Cache lookups by result ({', '.join(CACHE_LOOKUP_RESULTS)}).",
            ["result"], registry=r)
        self.cache_lookup_seconds = Histogram(
            "router_cache_lookup_duration_seconds", "Cache lookup latency.", ["kind"],
            registry=r, buckets=_LATENCY)
        self.cache_stores = Counter(
            "router_cache_stores_total", f"Cache stores by result ({', '.join(CACHE_STORE_RESULTS)}).",
            ["result"], registry=r)
        self.cache_errors = Counter(
            "router_cache_errors_total", "Cache backend errors by operation.", ["op"], registry=r)
        # The cache reports coalesced followers (CacheMetrics.coalesced); without this
        # instrument and the adapter method below, every coalesced follower's stream failed (HTTP 500).
        self.cache_coalesced = Counter(
            "router_cache_coalesced_total", "Requests that waited for an identical in-flight request, by result "
            "(served, leader_failed).", ["result"], registry=r)
        self.cache_available = Gauge(
            "router_cache_backend_up", "1 when the cache backend answers, 0 while it is down.", registry=r)
        # Size of the shared cache store, and 1 while Milvus Lite is past the size where its lookups leave the
        # latency target (milvus.yaml lite_warn_rows; docs/cache.md "Scale"): time to point uri at a server.
        self.cache_backend_rows = Gauge(
            "router_cache_backend_rows", "Rows in the cache backend at its last size check.", registry=r)
        self.cache_backend_over_target = Gauge(
            "router_cache_backend_over_target", "1 while Milvus Lite holds more rows than lite_warn_rows.", registry=r)
        self.stream_errors = Counter(
            "router_extproc_stream_errors_total", "ext_proc streams that ended in an error, by phase.",
            ["phase"], registry=r)
        self.streams_active = Gauge(
            "router_extproc_streams_active", "ext_proc streams in progress.", registry=r)
        self.upstream_responses = Counter(
            "router_upstream_responses_total", "Upstream responses seen by the router, by model and status class.",
            ["model", "status_class"], registry=r)
        self.upstream_ttfb_seconds = Histogram(
            "router_upstream_time_to_first_byte_seconds",
            "From forwarding the request to the upstream's response headers.", ["model"],
            registry=r, buckets=_UPSTREAM)
        self.pii_redacted = Counter(
            "router_pii_redacted_total", "Distinct PII values replaced by placeholders, by type.", ["type"],
            registry=r)
        self.config_reloads = Counter(
            "router_config_reloads_total", "Config reloads by result (success, failure).", ["result"], registry=r)
        self.config_last_reload_success = Gauge(
            "router_config_last_reload_successful", "1 if the last config reload succeeded.", registry=r)
        self.config_last_reload_success.set(1)
        self._live(r)

    def _live(self, r: CollectorRegistry) -> None:
        # live: requests moved to another model by live routing (reason: live.REASONS; models: configured names)
        # live: tokens and cost from the answers' usage (usage.py); tenant: a hash, at most usage.max_tenants values
        self.tokens = Counter(
            "router_tokens_total", "Tokens the upstream reported, by model, decision (auto, explicit), tenant (hashed) "
            "and kind (prompt, completion).", ["model", "decision", "tenant", "kind"], registry=r)
        self.cost = Counter(
            "router_cost_total", "Cost of the reported tokens at usage.prices (per 1M tokens), by model, decision and "
            "tenant.", ["model", "decision", "tenant"], registry=r)
        self.ttft_seconds = Histogram(
            "router_time_to_first_token_seconds", "Streams: request forwarded → first content chunk.", ["model"],
            registry=r, buckets=_UPSTREAM)
        self.tpot_seconds = Histogram(
            "router_time_per_output_token_seconds", "Streams: time per completion token after the first.", ["model"],
            registry=r, buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64))
        self.budget_rejections = Counter(
            "router_token_budget_rejections_total", "Requests refused with 429: the tenant's token budget is spent.",
            ["tenant"], registry=r)
        from .live import LiveCollector   # live: per-model state, rendered at scrape time (bound by the Router)

        self.live = LiveCollector()
        r.register(self.live)
        self.live_fallbacks = Counter(
            "router_live_fallbacks_total", "Requests live routing moved to another model, by from, to and reason "
            "(down, cooling, probing, latency_aware, least_loaded).", ["from_model", "to_model", "reason"],
            registry=r)


class CacheMetricsAdapter:
    """Implements the cache package's metrics protocol on top of `Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def lookup(self, result: str, seconds: float) -> None:
        self._m.cache_lookups.labels(result).inc()
        self._m.cache_lookup_seconds.labels("exact" if "exact" in result else "semantic").observe(seconds)

    def store(self, result: str) -> None:
        self._m.cache_stores.labels(result).inc()

    def error(self, op: str) -> None:
        self._m.cache_errors.labels(op).inc()

    def set_available(self, up: bool) -> None:
        self._m.cache_available.set(1 if up else 0)

    def coalesced(self, result: str) -> None:
        self._m.cache_coalesced.labels(result).inc()

    def backend_rows(self, rows: int, over_target: bool) -> None:
        self._m.cache_backend_rows.set(rows)
        self._m.cache_backend_over_target.set(1 if over_target else 0)
