"""envoy.resilience, live and models[].endpoints: defaults, parsing, and errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from router_extproc.config import parse_config
from router_extproc.config_live import LiveConfig, ResilienceConfig
from router_extproc.errors import ConfigError

SRC = Path("live.yaml")


def _cfg(**extra):
    data = {"models": [{"name": "a", "endpoint": "127.0.0.1:9001"}, {"name": "b", "endpoint": "127.0.0.1:9002"}]}
    for k, v in extra.items():
        if k == "models":
            data["models"] = v
        else:
            data[k] = v
    return parse_config(data, source=SRC)


def test_defaults_when_the_sections_are_absent():
    cfg = _cfg()
    assert cfg.envoy.resilience == ResilienceConfig()
    assert cfg.live == LiveConfig()
    assert cfg.model("a").replicas == (("127.0.0.1", 9001),)
    r = cfg.envoy.resilience
    assert r.retries.attempts == 2 and "gateway-error" in r.retries.retry_on
    assert r.outlier_detection.enabled and r.health_check.path == "/health"


def test_every_key_is_read():
    cfg = _cfg(envoy={"resilience": {
        "retries": {"attempts": 1, "on": ["connect-failure", "reset"], "retriable_status_codes": [429],
                    "per_try_timeout_s": 30, "backoff_base_ms": 10, "backoff_max_ms": 100, "budget_percent": 50,
                    "min_retry_concurrency": 1},
        "outlier_detection": {"enabled": False, "consecutive_5xx": 2, "consecutive_gateway_failure": 1,
                              "interval_s": 1, "base_ejection_s": 3, "max_ejection_percent": 50},
        "health_check": {"path": "/v1/models", "interval_s": 1, "timeout_s": 0.5, "unhealthy_threshold": 1,
                         "healthy_threshold": 2},
        "circuit_breakers": {"max_connections": 10, "max_pending_requests": 20, "max_requests": 30},
        "panic_threshold_percent": 0}},
        live={"window_s": 10, "min_requests": 3, "error_rate": 0.2, "latency_p95_s": 2, "cooldown_s": 5,
              "selection": "least_loaded", "envoy_poll_s": 0})
    r = cfg.envoy.resilience
    # a status-code list switches its retry condition on
    assert r.retries.retry_on == ("connect-failure", "reset", "retriable-status-codes")
    assert r.retries.retriable_status_codes == (429,) and r.retries.per_try_timeout_s == 30
    assert not r.outlier_detection.enabled and r.outlier_detection.base_ejection_s == 3
    assert r.health_check.path == "/v1/models" and r.circuit_breakers.max_requests == 30
    assert r.panic_threshold_percent == 0
    assert cfg.live.selection == "least_loaded" and cfg.live.envoy_poll_s == 0 and cfg.live.cooldown_s == 5


def test_a_model_with_replicas():
    cfg = _cfg(models=[{"name": "a", "endpoints": ["127.0.0.1:9001", "127.0.0.1:9011"]},
                       {"name": "b", "endpoint": "127.0.0.1:9002"}])
    a = cfg.model("a")
    assert a.replicas == (("127.0.0.1", 9001), ("127.0.0.1", 9011))
    assert (a.host, a.port) == ("127.0.0.1", 9001)


@pytest.mark.parametrize("extra, key", [
    ({"envoy": {"resilience": {"retries": {"on": ["sometimes"]}}}}, "envoy.resilience.retries.on"),
    ({"envoy": {"resilience": {"retries": {"retriable_status_codes": [42]}}}},
     "envoy.resilience.retries.retriable_status_codes"),
    ({"envoy": {"resilience": {"retries": {"attempts": -1}}}}, "envoy.resilience.retries.attempts"),
    ({"envoy": {"resilience": {"retries": {"backoff_base_ms": 100, "backoff_max_ms": 10}}}},
     "envoy.resilience.retries.backoff_max_ms"),
    ({"envoy": {"resilience": {"health_check": {"path": "health"}}}}, "envoy.resilience.health_check.path"),
    ({"envoy": {"resilience": {"outlier_detection": {"max_ejection_percent": 101}}}},
     "envoy.resilience.outlier_detection.max_ejection_percent"),
    ({"envoy": {"resilience": {"retry": {}}}}, "envoy.resilience.retry"),
    ({"live": {"selection": "random"}}, "live.selection"),
    ({"live": {"error_rate": 2}}, "live.error_rate"),
    ({"live": {"cooldown": 1}}, "live.cooldown"),
    ({"models": [{"name": "a"}]}, "models[0].endpoint"),
    ({"models": [{"name": "a", "endpoint": "127.0.0.1:1", "endpoints": ["127.0.0.1:2"]}]}, "models[0].endpoints"),
    ({"models": [{"name": "a", "endpoints": []}]}, "models[0].endpoints"),
    ({"models": [{"name": "a", "endpoints": ["127.0.0.1:1", "127.0.0.1:1"]}]}, "models[0].endpoints"),
    ({"models": [{"name": "a", "endpoints": ["nohost"]}]}, "models[0].endpoints[0]"),
])
def test_errors_name_the_file_and_the_key(extra, key):
    with pytest.raises(ConfigError) as err:
        _cfg(**extra)
    assert str(err.value).startswith(f"live.yaml: {key}"), str(err.value)
