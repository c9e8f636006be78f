"""Render the Envoy bootstrap from the router config, so models and clusters are written once.

Choices made here, and why:
- request body BUFFERED: the router must read the whole JSON body before it can pick a route.
- response headers SEND, response body NONE by default; the router switches the body to STREAMED per
  request (allow_mode_override) only when it will store the answer in the cache.
- failure_mode_allow defaults to false (fail closed): without the router, the jailbreak guard and
  the PII policy would be skipped silently and `model: auto` would reach a server that does not know
  it. Set `envoy.failure_mode_allow: true` to prefer availability: requests then go to the default
  model's cluster with their body unmodified (and the client's route headers removed, see below).
- only the API calls the router understands are routed (POST on openai.ROUTED_PATHS, GET /v1/models, which the
  router answers): one route per model, matched on the header the router sets (clear_route_cache makes Envoy
  re-pick the route after the body phase), then the default model. `envoy.passthrough_paths` (exact, or a prefix ending in "*") go to the default
  model with the router switched off for them. Every other path gets a 404 in OpenAI's error shape from Envoy
  itself, so no spelling of a path reaches a model unguarded.
- paths are normalised before routing and before the router sees them: RFC 3986 (`normalize_path`, which also
  decodes percent-encoded unreserved characters and resolves dot segments), `merge_slashes`, and an encoded slash
  (%2F, %5C) is refused with 400 (REJECT_REQUEST): no OpenAI client sends one, so it is only ever a probe. A
  trailing slash or any other variant does not match a routed path and gets the 404.
- the client's route header and every x-router-* header are removed by Envoy itself, before route matching
  (`early_header_mutation_extensions`), so routing never trusts the client, whether the router is up or down.
- a global downstream connection limit (`envoy.max_downstream_connections`) through the overload manager.
- the router cluster has one endpoint per worker process (server.workers; worker i on router_port + i):
  each HTTP request is one ext_proc stream and ROUND_ROBIN spreads streams, not connections, over them.
- live (envoy.resilience, config_live.py): each model route retries connect failures, resets and 502/503/504 on
  another replica (retry budget in the cluster's circuit breakers); each model cluster has outlier detection,
  active health checks (`/health`) and circuit breakers. Envoy retries only before the first response byte
  reached the client, so a streamed answer is never replayed half-way.
- live fallback (envoy.resilience.fallback): the router names the next candidate in `x-router-next`; a route per
  (model, next) pair sends the tries to a composite cluster whose last attempt goes to the next model's "hop"
  cluster, where an upstream ext_proc filter lets the router rewrite the body for that model.
- upstream connection failures and timeouts become OpenAI-shaped JSON errors (502/504), not Envoy's
  plain-text local replies.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import replace
from typing import Any

import yaml

from .config import ModelConfig, RouterConfig
from .config_live import ResilienceConfig, RetryConfig
from .headers import NEXT, ROUTER_PREFIX
from .openai import MODELS_PATH, ROUTED_PATHS

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_EXT_PROC = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
_EXT_PROC_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute"
_EARLY_MUTATION = ("type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3."
                   "HeaderMutation")
_CONNECTIONS = ("type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
                "DownstreamConnectionsConfig")
_PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
_COMPOSITE = "type.googleapis.com/envoy.extensions.clusters.composite.v3.ClusterConfig"
_INTERNAL_UPSTREAM = ("type.googleapis.com/envoy.extensions.transport_sockets.internal_upstream.v3."
                      "InternalUpstreamTransport")
_RAW_BUFFER = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
_INTERNAL_LISTENER = "type.googleapis.com/envoy.extensions.bootstrap.internal_listener.v3.InternalListener"
_NO_ROUTER = {"envoy.filters.http.ext_proc": {"@type": _EXT_PROC_PER_ROUTE, "disabled": True}}

ROUTER_CLUSTER = "router_extproc"


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _cluster(name: str, host: str, port: int, *, http2: bool = False, connect_timeout: str = "2s",
             count: int = 1, endpoints: tuple[tuple[str, int], ...] = ()) -> dict[str, Any]:
    hosts = list(endpoints) or [(host, port + i) for i in range(count)]
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC" if all(_is_ip(h) for h, _ in hosts) else "STRICT_DNS",
        "connect_timeout": connect_timeout,
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(h, p)}} for h, p in hosts]}],
        },
    }
    if http2:
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _HTTP_OPTS,
                "explicit_http_config": {"http2_protocol_options": {
                    "connection_keepalive": {"interval": "30s", "timeout": "5s"}}},
            }
        }
    return cluster


def _method(name: str) -> dict[str, Any]:
    return {"name": ":method", "string_match": {"exact": name}}


def _guarded(*headers: dict[str, Any]) -> dict[str, Any]:
    """The API calls the router reads the body of: POST on openai.ROUTED_PATHS (full match, query aside)."""
    return {"safe_regex": {"regex": "^(" + "|".join(re.escape(p) for p in ROUTED_PATHS) + ")$"},
            "headers": [_method("POST"), *headers]}


def _route(model: ModelConfig, header: str, timeout_s: float, retries: RetryConfig,
           fallback: bool = False) -> dict[str, Any]:
    # live: with fallback routes, a request naming a next candidate is theirs (whatever the order of the routes)
    no_next = [{"name": NEXT, "present_match": False}] if fallback else []
    return {
        "name": f"model-{model.name}",
        "match": _guarded({"name": header, "string_match": {"exact": model.name}}, *no_next),
        "route": {"cluster": model.cluster, "timeout": f"{timeout_s:g}s", **_retry_policy(retries)},
    }


def _retry_policy(r: RetryConfig) -> dict[str, Any]:
    """live: retries before the first response byte reached the client (Envoy never retries after), each on
    another replica of the model where it has one (previous_hosts); the budget lives in the cluster's breakers."""
    if r.attempts == 0:
        return {}
    policy: dict[str, Any] = {
        "retry_on": ",".join(r.retry_on),
        "num_retries": r.attempts,
        "retry_back_off": {"base_interval": f"{r.backoff_base_ms / 1000:g}s",
                           "max_interval": f"{r.backoff_max_ms / 1000:g}s"},
        "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
            "@type": _PREVIOUS_HOSTS}}],
        "host_selection_retry_max_attempts": 3,
    }
    if r.retriable_status_codes:
        policy["retriable_status_codes"] = list(r.retriable_status_codes)
    if r.per_try_timeout_s > 0:
        policy["per_try_timeout"] = f"{r.per_try_timeout_s:g}s"
    return {"retry_policy": policy}


def _breakers(res: ResilienceConfig) -> dict[str, Any]:
    """live: Envoy counts a route's retries on the route's cluster: every cluster a model route names gets these."""
    cb, rt = res.circuit_breakers, res.retries
    return {"thresholds": [{
        "priority": "DEFAULT", "max_connections": cb.max_connections,
        "max_pending_requests": cb.max_pending_requests, "max_requests": cb.max_requests,
        "retry_budget": {"budget_percent": {"value": rt.budget_percent},
                         "min_retry_concurrency": rt.min_retry_concurrency}}]}


def _model_cluster(m: ModelConfig, res: ResilienceConfig, buffer_limit: int) -> dict[str, Any]:
    """live: a model's replicas, with outlier detection, active health checks and circuit breakers (the retry
    budget among them) from envoy.resilience."""
    cluster = {**_cluster(m.cluster, m.host, m.port, endpoints=m.replicas),
               "per_connection_buffer_limit_bytes": buffer_limit}
    cluster["circuit_breakers"] = _breakers(res)
    cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": res.panic_threshold_percent}}
    od = res.outlier_detection
    if od.enabled:
        cluster["outlier_detection"] = {
            "consecutive_5xx": od.consecutive_5xx,
            "consecutive_gateway_failure": od.consecutive_gateway_failure,
            # Envoy enforces gateway-failure ejections at 0 % unless told: a dead replica would stay in rotation
            "enforcing_consecutive_gateway_failure": 100,
            "interval": f"{od.interval_s:g}s",
            "base_ejection_time": f"{od.base_ejection_s:g}s",
            "max_ejection_percent": od.max_ejection_percent,
        }
    hc = res.health_check
    if hc.enabled:
        cluster["health_checks"] = [{
            "timeout": f"{hc.timeout_s:g}s", "interval": f"{hc.interval_s:g}s",
            # a fallback model that gets no traffic is still checked at the interval (Envoy's default is 60 s)
            "no_traffic_interval": f"{hc.interval_s:g}s",
            "unhealthy_threshold": hc.unhealthy_threshold, "healthy_threshold": hc.healthy_threshold,
            "http_health_check": {"path": hc.path},
        }]
    return cluster


def _fallback_pairs(config: RouterConfig) -> list[tuple[ModelConfig, ModelConfig]]:
    """live: (chosen, next) model pairs that get a route whose last attempt goes to the next model."""
    if not config.envoy.resilience.fallback:
        return []
    # only the pairs live.candidates can name: a route's models (or the default model) after any of them, or after
    # the complexity rule's models, which may come first
    rt = config.routing
    lists = [[n for n, _ in c.model_scores] for c in rt.categories] + [[config.default_model]]
    extra = [m for m in (rt.complexity.simple_model, rt.complexity.complex_model) if m is not None]
    pairs = {(a, b) for names in lists for a in (*names, *extra) for b in names if a != b}
    return [(a, b) for a in config.models for b in config.models if (a.name, b.name) in pairs]


def _fallback_cluster_name(a: ModelConfig, b: ModelConfig) -> str:
    return f"{a.cluster}__then__{b.cluster}"


OTEL_CLUSTER = "otel_collector"
_OTEL_TRACER = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"


def _split(hostport: str) -> tuple[str, int]:
    host, _, port = hostport.rpartition(":")
    return host, int(port)


HOP = "fallback_hop"   # the internal listener (and its cluster) of Envoy's fallback attempt


def _fallback_route(a: ModelConfig, b: ModelConfig, header: str, timeout_s: float,
                    retries: RetryConfig) -> dict[str, Any]:
    """live: the router named `b` as the next candidate (x-router-next): the tries of `a` (the first and its retries)
    are followed by one try of `b` through the composite cluster, which picks the cluster by attempt number."""
    policy = _retry_policy(replace(retries, attempts=retries.attempts + 1))
    return {
        "name": f"model-{a.name}-next-{b.name}",
        "match": _guarded({"name": header, "string_match": {"exact": a.name}},
                          {"name": NEXT, "string_match": {"exact": b.name}}),
        "route": {"cluster": _fallback_cluster_name(a, b), "timeout": f"{timeout_s:g}s", **policy},
    }


def _fallback_clusters(config: RouterConfig) -> list[dict[str, Any]]:
    """live: per pair a composite cluster (`a` for every try Envoy has, then the hop), and the hop cluster: Envoy's
    internal listener HOP, where the router rewrites the body for the next model (the body Envoy retries was written
    for `a`). Upstream filters would not do: Envoy takes them from the composite cluster, for every attempt."""
    pairs = _fallback_pairs(config)
    if not pairs:
        return []
    tries = 1 + config.envoy.resilience.retries.attempts
    out: list[dict[str, Any]] = [{
        "name": _fallback_cluster_name(a, b), "connect_timeout": "2s", "lb_policy": "CLUSTER_PROVIDED",
        "cluster_type": {"name": "envoy.clusters.composite", "typed_config": {
            "@type": _COMPOSITE, "clusters": [*([{"name": a.cluster}] * tries), {"name": HOP}]}},
        # without them Envoy's default allows 3 retries in flight: measured, 75 of 1,160 requests failed (flags UO)
        # when a model died under c=4
        "circuit_breakers": _breakers(config.envoy.resilience),
    } for a, b in pairs]
    out.append({"name": HOP, "connect_timeout": "1s", "load_assignment": {"cluster_name": HOP, "endpoints": [{
        "lb_endpoints": [{"endpoint": {"address": {"envoy_internal_address": {"server_listener_name": HOP}}}}]}]},
        "transport_socket": {"name": "envoy.transport_sockets.internal_upstream", "typed_config": {
            "@type": _INTERNAL_UPSTREAM, "transport_socket": {"name": "envoy.transport_sockets.raw_buffer",
                                                              "typed_config": {"@type": _RAW_BUFFER}}}}})
    return out


def _hop_listener(config: RouterConfig, ext_proc: dict[str, Any], buffer_limit: int) -> dict[str, Any]:
    """live: Envoy's fallback attempt arrives here (never a client: an internal listener has no socket). The router
    rewrites the body for the model in x-router-next (its hop mode: stages/parse.py marks the exchange, pipeline.py
    rewrites, stages/tap.py marks the answer); the route is the one x-router-next names, without retries (this is
    already the last attempt)."""
    e = config.envoy
    hop_ext_proc = {**ext_proc, "typed_config": {**ext_proc["typed_config"], "processing_mode": {
        "request_header_mode": "SEND", "request_body_mode": "BUFFERED", "response_header_mode": "SEND",
        "response_body_mode": "NONE", "request_trailer_mode": "SKIP", "response_trailer_mode": "SKIP"}}}
    routes = [{"name": f"hop-{m.name}", "match": {"prefix": "/", "headers": [
        {"name": NEXT, "string_match": {"exact": m.name}}]},
        "route": {"cluster": m.cluster, "timeout": f"{e.upstream_timeout_s:g}s"}} for m in config.models]
    hcm = {"@type": _HCM, "stat_prefix": HOP, "codec_type": "HTTP1",
           "route_config": {"name": HOP, "virtual_hosts": [{"name": HOP, "domains": ["*"], "routes": routes}]},
           "http_filters": [hop_ext_proc, {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}]}
    return {"name": HOP, "internal_listener": {}, "per_connection_buffer_limit_bytes": buffer_limit,
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def _passthrough(path: str, cluster: str, timeout_s: float) -> dict[str, Any]:
    match = {"prefix": path[:-1]} if path.endswith("*") else {"path": path}
    return {"name": f"passthrough-{path}", "match": match, "typed_per_filter_config": _NO_ROUTER,
            "route": {"cluster": cluster, "timeout": f"{timeout_s:g}s"}}


def _not_found() -> dict[str, Any]:
    message = ("Unknown path or method. This endpoint serves POST " + ", ".join(ROUTED_PATHS)
               + f" and GET {MODELS_PATH}.")
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None,
                                 "code": "unknown_url"}})
    return {"name": "not-found", "match": {"prefix": "/"}, "typed_per_filter_config": _NO_ROUTER,
            "direct_response": {"status": 404, "body": {"inline_string": body}},
            "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"},
                                         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}


def _routes(config: RouterConfig, fallback: bool = True) -> list[dict[str, Any]]:
    e = config.envoy
    default = config.model(config.default_model)
    assert default is not None
    timeout = f"{e.upstream_timeout_s:g}s"
    pairs = _fallback_pairs(config) if fallback else []
    return [
        *[_route(m, config.route_header, e.upstream_timeout_s, e.resilience.retries, bool(pairs))
          for m in config.models],
        *[_fallback_route(a, b, config.route_header, e.upstream_timeout_s, e.resilience.retries)
          for a, b in pairs],   # live:
        {"name": "default", "match": _guarded(), "route": {"cluster": default.cluster, "timeout": timeout,
                                                           **_retry_policy(e.resilience.retries)}},
        # the router answers it; failing open, the default model's own list
        {"name": "models", "match": {"path": MODELS_PATH, "headers": [_method("GET")]},
         "route": {"cluster": default.cluster, "timeout": timeout}},
        *[_passthrough(p, default.cluster, e.upstream_timeout_s) for p in e.passthrough_paths],
        _not_found(),
    ]


def _strip_client_headers(route_header: str) -> list[dict[str, Any]]:
    """Runs before route matching, with or without the router: the client never picks the route."""
    return [{"name": "envoy.http.early_header_mutation.header_mutation", "typed_config": {
        "@type": _EARLY_MUTATION,
        "mutations": [{"remove": route_header},
                      {"remove_on_match": {"key_matcher": {"prefix": ROUTER_PREFIX}}}]}}]


def _overload_manager(max_connections: int) -> dict[str, Any]:
    return {"resource_monitors": [{"name": "envoy.resource_monitors.global_downstream_max_connections",
                                   "typed_config": {"@type": _CONNECTIONS,
                                                    "max_active_downstream_connections": max_connections}}]}


def _error_mapper(flags: list[str], status: int, message: str, kind: str) -> dict[str, Any]:
    return {
        "filter": {"response_flag_filter": {"flags": flags}},
        "status_code": status,
        "body_format_override": {
            "json_format": {"error": {"message": message, "type": kind, "code": "%RESPONSE_CODE_DETAILS%"}},
            "content_type": "application/json",
        },
    }


def _ext_proc_filter(e: Any) -> dict[str, Any]:
    """The router as Envoy's ext_proc filter (on the ingress listener and, live, on the fallback hop's)."""
    return {
        "name": "envoy.filters.http.ext_proc",
        "typed_config": {
            "@type": _EXT_PROC,
            "grpc_service": {"envoy_grpc": {"cluster_name": ROUTER_CLUSTER}, "timeout": "30s"},
            "failure_mode_allow": e.failure_mode_allow,
            "message_timeout": f"{e.message_timeout_ms / 1000:g}s",
            "allow_mode_override": True,
            "processing_mode": {
                "request_header_mode": "SEND",
                "response_header_mode": "SEND",
                "request_body_mode": "BUFFERED",
                "response_body_mode": "NONE",
                "request_trailer_mode": "SKIP",
                "response_trailer_mode": "SKIP",
            },
        },
    }


def render(config: RouterConfig, *, ext_proc: bool = True) -> dict[str, Any]:
    """The Envoy bootstrap. `ext_proc=False` renders the same proxy without the router (the benchmark
    baseline: Envoy alone)."""
    e = config.envoy
    routes = _routes(config, fallback=ext_proc)
    ext_proc_filter = _ext_proc_filter(e)
    hcm = {
        "@type": _HCM,
        "stat_prefix": "llm_ingress",
        "codec_type": "AUTO",
        "generate_request_id": True,
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "early_header_mutation_extensions": _strip_client_headers(config.route_header),
        "access_log": [{
            "name": "envoy.access_loggers.stdout",
            "typed_config": {"@type": _STDOUT_LOG, "log_format": {"json_format": {
                "ts": "%START_TIME%", "request_id": "%REQ(X-REQUEST-ID)%", "method": "%REQ(:METHOD)%",
                "path": "%REQ(:PATH)%", "status": "%RESPONSE_CODE%", "flags": "%RESPONSE_FLAGS%",
                "details": "%RESPONSE_CODE_DETAILS%", "model": "%RESP(X-ROUTER-MODEL)%",
                "cache": "%RESP(X-ROUTER-CACHE)%", "upstream": "%UPSTREAM_CLUSTER%",
                "duration_ms": "%DURATION%"}}},
        }],
        "route_config": {
            "name": "llm_models",
            "virtual_hosts": [{"name": "llm", "domains": ["*"], "routes": routes}],
        },
        "http_filters": [*([ext_proc_filter] if ext_proc else []),
                         {"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
        "local_reply_config": {"mappers": [
            _error_mapper(["UT"], 504, "The model upstream timed out", "upstream_timeout"),
            # UR/UPE (reliability fix): an upstream that resets or breaks the protocol before the response
            # headers reached the client (e.g. dies right after its first SSE chunk) also gets the JSON 502.
            _error_mapper(["UF", "UH", "URX", "UC", "UO", "NR", "UR", "UPE"], 502,
                          "The model upstream is unavailable", "upstream_error"),
        ]},
    }
    tr = config.tracing
    if tr.enabled and tr.envoy_collector:   # live: Envoy's spans, same trace as the router's (tracing.py)
        hcm["tracing"] = _tracing(tr)
    # Leave headroom above the router's own limit so oversize bodies reach the router, which
    # answers 413 in OpenAI's error shape instead of Envoy's plain-text one.
    buffer_limit = config.server.max_body_bytes + 1024 * 1024
    hop = ext_proc and bool(_fallback_pairs(config))   # live: the fallback attempt's internal listener
    boot: dict[str, Any] = {
        "admin": {"address": _address(e.admin_host, e.admin_port)},
        "overload_manager": _overload_manager(e.max_downstream_connections),
        "static_resources": {
            "listeners": [{
                "name": "llm_ingress",
                "address": _address(e.listen_host, e.listen_port),
                "per_connection_buffer_limit_bytes": buffer_limit,
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}],
            }, *([_hop_listener(config, ext_proc_filter, buffer_limit)] if hop else [])],
            "clusters": [
                # One endpoint per worker process (`serve --workers N`: worker i on router_port + i).
                # Each HTTP request is one ext_proc gRPC stream; ROUND_ROBIN picks an endpoint per stream.
                _cluster(ROUTER_CLUSTER, e.router_host, e.router_port, http2=True, connect_timeout="1s",
                         count=config.server.workers),
                *[_model_cluster(m, e.resilience, buffer_limit) for m in config.models],  # live:
                *(_fallback_clusters(config) if hop else []),
                *([_cluster(OTEL_CLUSTER, *_split(tr.envoy_collector), http2=True)]
                  if tr.enabled and tr.envoy_collector else []),
            ],
        },
    }
    if hop:
        boot["bootstrap_extensions"] = [{"name": "envoy.bootstrap.internal_listener",
                                         "typed_config": {"@type": _INTERNAL_LISTENER}}]
    return boot


def _tracing(tr: Any) -> dict[str, Any]:
    return {"random_sampling": {"value": tr.sample_ratio * 100}, "provider": {
        "name": "envoy.tracers.opentelemetry", "typed_config": {
            "@type": _OTEL_TRACER, "service_name": "envoy",
            "grpc_service": {"envoy_grpc": {"cluster_name": OTEL_CLUSTER}, "timeout": "1s"}}}}


def render_yaml(config: RouterConfig) -> str:
    header = (
        "# Generated by `router-extproc envoy-config` from "
        f"{config.source}. Do not edit: change the router config and regenerate.\n"
    )
    return header + yaml.safe_dump(render(config), sort_keys=False, width=120)
