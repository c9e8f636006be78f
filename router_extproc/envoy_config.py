"""Render the Envoy bootstrap from the router config, so models and clusters are written once.

Choices made here, and why:
- request body BUFFERED: the router must read the whole JSON body before it can pick a route.
- response headers SEND, response body NONE by default; the router switches the body to STREAMED per
  request (allow_mode_override) only when it will store the answer in the cache.
- failure_mode_allow defaults to false (fail closed): without the router, the jailbreak guard and
  the PII policy would be skipped silently and `model: auto` would reach a server that does not know
  it. Set `envoy.failure_mode_allow: true` to prefer availability: requests then go to the default
  model's cluster unmodified.
- one route per model, matched on the header the router sets; clear_route_cache makes Envoy re-pick
  the route after the body phase. Requests without the header (non-chat paths) go to the default model.
- the router cluster has one endpoint per worker process (server.workers; worker i on router_port + i):
  each HTTP request is one ext_proc stream and ROUND_ROBIN spreads streams, not connections, over them.
- upstream connection failures and timeouts become OpenAI-shaped JSON errors (502/504), not Envoy's
  plain-text local replies.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from .config import ModelConfig, RouterConfig

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_EXT_PROC = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"

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
             count: int = 1) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "connect_timeout": connect_timeout,
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _address(host, port + i)}}
                                            for i in range(count)]}],
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


def _route(model: ModelConfig, header: str, timeout_s: float) -> dict[str, Any]:
    return {
        "name": f"model-{model.name}",
        "match": {"prefix": "/", "headers": [{"name": header, "string_match": {"exact": model.name}}]},
        "route": {"cluster": model.cluster, "timeout": f"{timeout_s:g}s"},
    }


def _error_mapper(flags: list[str], status: int, message: str, kind: str) -> dict[str, Any]:
    return {
        "filter": {"response_flag_filter": {"flags": flags}},
        "status_code": status,
        "body_format_override": {
            "json_format": {"error": {"message": message, "type": kind, "code": "%RESPONSE_CODE_DETAILS%"}},
            "content_type": "application/json",
        },
    }


def render(config: RouterConfig, *, ext_proc: bool = True) -> dict[str, Any]:
    """The Envoy bootstrap. `ext_proc=False` renders the same proxy without the router (the benchmark
    baseline: Envoy alone)."""
    e = config.envoy
    default = config.model(config.default_model)
    assert default is not None
    routes = [_route(m, config.route_header, e.upstream_timeout_s) for m in config.models]
    routes.append({
        "name": "default",
        "match": {"prefix": "/"},
        "route": {"cluster": default.cluster, "timeout": f"{e.upstream_timeout_s:g}s"},
    })
    ext_proc_filter = {
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
    hcm = {
        "@type": _HCM,
        "stat_prefix": "llm_ingress",
        "codec_type": "AUTO",
        "generate_request_id": True,
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
    # Leave headroom above the router's own limit so oversize bodies reach the router, which
    # answers 413 in OpenAI's error shape instead of Envoy's plain-text one.
    buffer_limit = config.server.max_body_bytes + 1024 * 1024
    return {
        "admin": {"address": _address(e.admin_host, e.admin_port)},
        "static_resources": {
            "listeners": [{
                "name": "llm_ingress",
                "address": _address(e.listen_host, e.listen_port),
                "per_connection_buffer_limit_bytes": buffer_limit,
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}],
            }],
            "clusters": [
                # One endpoint per worker process (`serve --workers N`: worker i on router_port + i).
                # Each HTTP request is one ext_proc gRPC stream; ROUND_ROBIN picks an endpoint per stream.
                _cluster(ROUTER_CLUSTER, e.router_host, e.router_port, http2=True, connect_timeout="1s",
                         count=config.server.workers),
                *[{**_cluster(m.cluster, m.host, m.port), "per_connection_buffer_limit_bytes": buffer_limit}
                  for m in config.models],
            ],
        },
    }


def render_yaml(config: RouterConfig) -> str:
    header = (
        "# Generated by `router-extproc envoy-config` from "
        f"{config.source}. Do not edit: change the router config and regenerate.\n"
    )
    return header + yaml.safe_dump(render(config), sort_keys=False, width=120)
