"""envoy.resilience rendered by `envoy-config`: retries on each model route, outlier detection, health checks and
circuit breakers (with the retry budget) on each model cluster, one endpoint per replica; Envoy accepts it."""

from __future__ import annotations

from pathlib import Path

import yaml

from router_extproc.config import parse_config
from router_extproc.envoy_config import render, render_yaml

from .test_envoy_config import validate


def _config(resilience=None):
    data = {"models": [{"name": "a", "endpoints": ["127.0.0.1:9001", "127.0.0.1:9011"]},
                       {"name": "b", "endpoint": "localhost:9002"}],
            "routing": {"categories": {"other": {"model_scores": {"a": 1.0, "b": 0.5}}}},
            "envoy": {"resilience": resilience or {}}}
    return parse_config(data, source=Path("r.yaml"))


def _routes(boot):
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return {r["name"]: r for r in hcm["route_config"]["virtual_hosts"][0]["routes"]}


def _clusters(boot):
    return {c["name"]: c for c in boot["static_resources"]["clusters"]}


def test_model_routes_retry_on_another_replica():
    routes = _routes(render(_config()))
    for name in ("model-a", "model-b", "default"):
        policy = routes[name]["route"]["retry_policy"]
        assert policy["num_retries"] == 2
        assert set(policy["retry_on"].split(",")) == {"connect-failure", "refused-stream", "reset", "gateway-error"}
        assert policy["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"
        assert "per_try_timeout" not in policy   # an LLM answer may take minutes: only the route timeout
    # the 404 route and the router's own /v1/models answer are not retried
    assert "retry_policy" not in routes["models"]["route"]


def test_no_retries_when_attempts_is_zero():
    routes = _routes(render(_config({"retries": {"attempts": 0}})))
    assert "retry_policy" not in routes["model-a"]["route"]


def test_retriable_codes_and_per_try_timeout():
    routes = _routes(render(_config({"retries": {"retriable_status_codes": [429], "per_try_timeout_s": 20}})))
    policy = routes["model-a"]["route"]["retry_policy"]
    assert policy["retriable_status_codes"] == [429] and policy["per_try_timeout"] == "20s"
    assert "retriable-status-codes" in policy["retry_on"]


def test_model_clusters_have_replicas_breakers_outlier_detection_and_health_checks():
    clusters = _clusters(render(_config()))
    a, b = clusters["model_a"], clusters["model_b"]
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"]
             for e in a["load_assignment"]["endpoints"][0]["lb_endpoints"]]
    assert ports == [9001, 9011] and a["type"] == "STATIC" and b["type"] == "STRICT_DNS"
    t = a["circuit_breakers"]["thresholds"][0]
    assert t["retry_budget"] == {"budget_percent": {"value": 50.0}, "min_retry_concurrency": 8}
    assert t["max_requests"] == 1024
    od = a["outlier_detection"]
    assert od["consecutive_gateway_failure"] == 3 and od["enforcing_consecutive_gateway_failure"] == 100
    hc = a["health_checks"][0]
    assert hc["http_health_check"]["path"] == "/health"
    assert hc["no_traffic_interval"] == hc["interval"] == "2s"
    # the router's own cluster is untouched: it has its own health (gRPC) and no replicas to retry on
    assert "outlier_detection" not in clusters["router_extproc"]


def test_switched_off():
    clusters = _clusters(render(_config({"outlier_detection": {"enabled": False},
                                         "health_check": {"enabled": False}})))
    assert "outlier_detection" not in clusters["model_a"] and "health_checks" not in clusters["model_a"]


def test_envoy_accepts_the_rendering(tmp_path):
    cfg = _config({"retries": {"retriable_status_codes": [429], "per_try_timeout_s": 20},
                   "panic_threshold_percent": 0})
    out = tmp_path / "envoy.yaml"
    out.write_text(render_yaml(cfg))
    assert yaml.safe_load(out.read_text())
    validate(out)


def test_fallback_routes_send_the_last_attempt_to_the_next_candidate():
    boot = render(_config())
    routes = _routes(boot)
    # a plain model route only matches without a next candidate
    assert {"name": "x-router-next", "present_match": False} in routes["model-a"]["match"]["headers"]
    r = routes["model-a-next-b"]
    assert {"name": "x-router-next", "string_match": {"exact": "b"}} in r["match"]["headers"]
    assert r["route"]["retry_policy"]["num_retries"] == 3   # the 2 retries of a, then b
    clusters = _clusters(boot)
    composite = clusters[r["route"]["cluster"]]["cluster_type"]["typed_config"]["clusters"]
    assert [c["name"] for c in composite] == ["model_a", "model_a", "model_a", "fallback_hop"]
    assert clusters[r["route"]["cluster"]]["circuit_breakers"] == clusters["model_a"]["circuit_breakers"]
    # the hop: an internal listener where the router rewrites the body, routed on x-router-next, no retries
    hop = next(x for x in boot["static_resources"]["listeners"] if x["name"] == "fallback_hop")
    hcm = hop["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["http_filters"][0]["typed_config"]["processing_mode"]["request_body_mode"] == "BUFFERED"
    hop_routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert [(x["match"]["headers"][0]["string_match"]["exact"], x["route"]["cluster"]) for x in hop_routes] == [
        ("a", "model_a"), ("b", "model_b")]
    assert all("retry_policy" not in x["route"] for x in hop_routes)
    assert boot["bootstrap_extensions"][0]["name"] == "envoy.bootstrap.internal_listener"


def test_no_fallback_routes_when_switched_off_or_without_the_router():
    routes = _routes(render(_config({"fallback": False})))
    assert not [n for n in routes if "-next-" in n]
    assert "headers" in routes["model-a"]["match"] and len(routes["model-a"]["match"]["headers"]) == 2
    baseline = render(_config(), ext_proc=False)   # Envoy alone: no router to name a next candidate
    assert "fallback_hop" not in _clusters(baseline) and len(baseline["static_resources"]["listeners"]) == 1
    assert not [n for n in _routes(baseline) if "-next-" in n]


def test_a_fallback_route_for_every_pair_live_routing_can_name_and_no_other():
    from router_extproc.decision import Decision
    from router_extproc.live import candidates

    cfg = parse_config({
        "models": [{"name": n, "endpoint": f"127.0.0.1:{9000 + i}"} for i, n in enumerate("abcde")],
        "default_model": "e",
        "routing": {"categories": {"math": {"model_scores": {"a": 1.0, "b": 0.5}},
                                   "law": {"model_scores": {"c": 1.0, "a": 0.2}}},
                    "complexity": {"simple_model": "d"}}}, source=Path("r.yaml"))
    routes = {n for n in _routes(render(cfg)) if "-next-" in n}
    nameable = set()
    for category in ("math", "law", None):
        route = cfg.routing.category(category) if category else None
        firsts = [n for n, _ in route.model_scores] if route else [cfg.default_model]
        for first in (*firsts, "d"):
            names = candidates(cfg, Decision(model=first, auto=True, category=category))
            nameable |= {f"model-{first}-next-{b}" for b in names[1:]}
    assert routes == nameable
    assert len(routes) < 5 * 4   # not every ordered pair
