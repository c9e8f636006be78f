"""Config errors name the file, the key and the reason; the shipped configs load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from router_extproc.config import load_config, parse_config
from router_extproc.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "config").glob("*.yaml")) + sorted((ROOT / "config" / "examples").glob("*.yaml"))


def minimal(**extra):
    data = {"models": [{"name": "small", "endpoint": "127.0.0.1:9001"},
                       {"name": "large", "endpoint": "127.0.0.1:9002"}], "default_model": "large"}
    data.update(extra)
    return data


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.model(cfg.default_model) is not None


def test_defaults_fill_everything_not_given():
    cfg = parse_config(minimal(), source=Path("c.yaml"))
    assert cfg.auto_model_names == ("auto", "MoM")
    assert cfg.envoy.listen_port == 8801 and cfg.server.grpc_port == 50051
    assert cfg.is_auto("MoM") and not cfg.is_auto("large")


@pytest.mark.parametrize(
    "data, key, reason",
    [
        (minimal(default_model="nope"), "default_model", "unknown model 'nope'"),
        (minimal(server={"grpc_listen": "localhost"}), "server.grpc_listen", "host:port"),
        (minimal(server={"max_body_bytes": "big"}), "server.max_body_bytes", "integer"),
        (minimal(envoy={"failure_mode_allow": "yes"}), "envoy.failure_mode_allow", "true or false"),
        (minimal(signals={"device": "tpu"}), "signals.device", "one of"),
        (minimal(routing={"categories": {"math": {"model_scores": {"ghost": 1}}}}),
         "routing.categories.math.model_scores.ghost", "unknown model"),
        (minimal(routing={"categories": {"cooking": {"model_scores": {"small": 1}}}}),
         "routing.categories.cooking", "unknown category"),
        (minimal(routing={"complexity": {"threshold": 2}}), "routing.complexity.threshold", "within"),
        (minimal(guards={"block_response": "teapot"}), "guards.block_response", "one of"),
        (minimal(sever={}), "sever", "unknown key"),
        (minimal(auto_model_names=["small"]), "auto_model_names", "also a configured model"),
        ({"models": [{"name": "a", "endpoint": "h:1", "pii_allow": ["SECRETS"]}]}, "models[0].pii_allow",
         "unknown PII type"),
        ({"models": [{"name": "a", "endpoint": "h:1"}, {"name": "a", "endpoint": "h:2"}]}, "models",
         "duplicate"),
    ],
)
def test_invalid_config_names_file_key_and_reason(data, key, reason):
    with pytest.raises(ConfigError) as info:
        parse_config(data, source=Path("conf/router.yaml"))
    message = str(info.value)
    assert message.startswith(f"conf/router.yaml: {key}:"), message
    assert reason in message


def test_unreadable_and_unparsable_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_config(bad)


def test_category_scores_are_ordered_best_first(tmp_path):
    cfg = parse_config(minimal(routing={"categories": {"math": {"model_scores": {"small": 0.1, "large": 0.9}}}}),
                       source=tmp_path / "c.yaml")
    assert cfg.routing.category("math").model_scores[0] == ("large", 0.9)


def test_validate_config_cli_exits_non_zero_with_the_reason(tmp_path, capsys):
    from router_extproc.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(minimal(default_model="nope")))
    assert main(["validate-config", str(path)]) == 2
    assert f"{path}: default_model: unknown model" in capsys.readouterr().err
    path.write_text(yaml.safe_dump(minimal()))
    assert main(["validate-config", str(path)]) == 0
