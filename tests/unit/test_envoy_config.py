"""Every Envoy config we ship or generate passes `envoy --mode validate`, and the shipped one is the
generator's output (models and clusters are written once, in the router config)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from router_extproc.config import load_config, parse_config
from router_extproc.envoy_config import render, render_yaml
from router_extproc.dev.stack import envoy_binary

ROOT = Path(__file__).resolve().parents[2]
ROUTER_CONFIGS = sorted((ROOT / "config").glob("*.yaml")) + sorted((ROOT / "config" / "examples").glob("*.yaml"))
SHIPPED_ENVOY = sorted((ROOT / "envoy").glob("*.yaml")) + sorted((ROOT / "deploy").rglob("envoy*.yaml"))


def validate(path: Path) -> None:
    proc = subprocess.run([envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "error",
                           "--use-dynamic-base-id"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("config", ROUTER_CONFIGS, ids=lambda p: p.name)
def test_generated_envoy_config_validates(config, tmp_path):
    out = tmp_path / "envoy.yaml"
    out.write_text(render_yaml(load_config(config)))
    validate(out)


@pytest.mark.parametrize("path", SHIPPED_ENVOY, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_envoy_config_validates(path):
    validate(path)


def test_shipped_envoy_yaml_is_the_generator_output(monkeypatch):
    monkeypatch.chdir(ROOT)
    expected = render_yaml(load_config(Path("config/config.yaml")))
    assert (ROOT / "envoy" / "envoy.yaml").read_text() == expected, "run `make envoy-config`"


def _hcm(cfg):
    return render(cfg)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_one_route_per_model_then_the_default_model_then_404():
    cfg = load_config(ROOT / "config" / "config.yaml")
    hcm = _hcm(cfg)
    # live: the (model, next candidate) fallback routes are specified in test_envoy_resilience.py
    routes = [r for r in hcm["route_config"]["virtual_hosts"][0]["routes"] if "-next-" not in r["name"]]
    n = len(cfg.models)
    assert [r["route"]["cluster"] for r in routes[:n]] == [m.cluster for m in cfg.models]
    assert all(r["match"]["headers"][1]["name"] == "x-selected-model" for r in routes[:n])
    assert [r["name"] for r in routes[n:]] == ["default", "models", "not-found"]
    assert routes[n]["route"]["cluster"] == routes[n + 1]["route"]["cluster"] == cfg.model(cfg.default_model).cluster
    assert routes[-1]["direct_response"]["status"] == 404
    ext_proc = hcm["http_filters"][0]["typed_config"]
    assert ext_proc["processing_mode"]["request_body_mode"] == "BUFFERED"
    assert ext_proc["allow_mode_override"] is True
    assert ext_proc["failure_mode_allow"] is cfg.envoy.failure_mode_allow


def test_only_the_api_calls_the_router_guards_are_routed():
    import re

    cfg = load_config(ROOT / "config" / "config.yaml")
    routes = _hcm(cfg)["route_config"]["virtual_hosts"][0]["routes"]
    guarded = [r for r in routes if r["name"].startswith("model-") or r["name"] == "default"]
    pattern = re.compile(guarded[0]["match"]["safe_regex"]["regex"])
    for r in guarded:
        assert r["match"]["safe_regex"]["regex"] == pattern.pattern
        assert r["match"]["headers"][0] == {"name": ":method", "string_match": {"exact": "POST"}}
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/responses"):
        assert pattern.fullmatch(path)
    for path in ("/v1/chat/completions/", "//v1/chat/completions", "/v1/embeddings", "/v1/chat/completionsX",
                 "/V1/chat/completions", "/", "/v1/models"):
        assert not pattern.fullmatch(path)
    [models] = [r for r in routes if r["name"] == "models"]
    assert models["match"] == {"path": "/v1/models", "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]}
    # everything else: a JSON 404 from Envoy, with the router switched off for it
    last = routes[-1]
    assert last["match"] == {"prefix": "/"} and "route" not in last
    assert last["typed_per_filter_config"]["envoy.filters.http.ext_proc"]["disabled"] is True
    assert json.loads(last["direct_response"]["body"]["inline_string"])["error"]["code"] == "unknown_url"


def test_paths_are_normalised_and_client_route_headers_removed_before_routing():
    hcm = _hcm(load_config(ROOT / "config" / "config.yaml"))
    assert hcm["normalize_path"] is True and hcm["merge_slashes"] is True
    assert hcm["path_with_escaped_slashes_action"] == "REJECT_REQUEST"
    [early] = hcm["early_header_mutation_extensions"]
    mutations = early["typed_config"]["mutations"]
    assert {"remove": "x-selected-model"} in mutations
    assert {"remove_on_match": {"key_matcher": {"prefix": "x-router-"}}} in mutations


def test_passthrough_paths_go_to_the_default_model_without_the_router(tmp_path):
    data = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    data["envoy"]["passthrough_paths"] = ["/v1/embeddings", "/v1/files/*"]
    cfg = parse_config(data, source=ROOT / "config" / "config.yaml")
    routes = {r["name"]: r for r in _hcm(cfg)["route_config"]["virtual_hosts"][0]["routes"]}
    exact, prefix = routes["passthrough-/v1/embeddings"], routes["passthrough-/v1/files/*"]
    assert exact["match"] == {"path": "/v1/embeddings"} and prefix["match"] == {"prefix": "/v1/files/"}
    for r in (exact, prefix):
        assert r["route"]["cluster"] == cfg.model(cfg.default_model).cluster
        assert r["typed_per_filter_config"]["envoy.filters.http.ext_proc"]["disabled"] is True
    out = tmp_path / "envoy.yaml"
    out.write_text(render_yaml(cfg))
    validate(out)


def test_envoy_limits_downstream_connections():
    bootstrap = render(load_config(ROOT / "config" / "config.yaml"))
    [monitor] = bootstrap["overload_manager"]["resource_monitors"]
    assert monitor["name"] == "envoy.resource_monitors.global_downstream_max_connections"
    assert monitor["typed_config"]["max_active_downstream_connections"] == 10_000
