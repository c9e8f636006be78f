"""Every Envoy config we ship or generate passes `envoy --mode validate`, and the shipped one is the
generator's output (models and clusters are written once, in the router config)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from router_extproc.config import load_config
from router_extproc.envoy_config import render, render_yaml
from router_extproc.testing import envoy_binary

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


def test_one_route_per_model_then_the_default_model():
    cfg = load_config(ROOT / "config" / "config.yaml")
    hcm = render(cfg)["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert [r["route"]["cluster"] for r in routes[:-1]] == [m.cluster for m in cfg.models]
    assert all(r["match"]["headers"][0]["name"] == "x-selected-model" for r in routes[:-1])
    assert routes[-1]["route"]["cluster"] == cfg.model(cfg.default_model).cluster
    ext_proc = hcm["http_filters"][0]["typed_config"]
    assert ext_proc["processing_mode"]["request_body_mode"] == "BUFFERED"
    assert ext_proc["allow_mode_override"] is True
    assert ext_proc["failure_mode_allow"] is cfg.envoy.failure_mode_allow
