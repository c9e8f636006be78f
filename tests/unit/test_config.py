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
    assert cfg.signals.spin and not cfg.signals.spin_after_run


@pytest.mark.parametrize(
    "data, key, reason",
    [
        (minimal(default_model="nope"), "default_model", "unknown model 'nope'"),
        (minimal(server={"grpc_listen": "localhost"}), "server.grpc_listen", "host:port"),
        (minimal(server={"max_body_bytes": "big"}), "server.max_body_bytes", "integer"),
        (minimal(envoy={"failure_mode_allow": "yes"}), "envoy.failure_mode_allow", "true or false"),
        (minimal(signals={"device": "tpu"}), "signals.device", "one of"),
        (minimal(signals={"spin_after_run": "no"}), "signals.spin_after_run", "true or false"),
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


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("section, key", [("guards", "jailbreak_threshold"), ("routing", "confidence_threshold"),
                                          ("envoy", "upstream_timeout_s"), ("server", "grace_period_s")])
def test_nan_and_infinity_are_rejected_so_no_guard_can_be_switched_off_by_them(section, key, value):
    # `jailbreak_threshold: .nan` used to load: every score compared false with NaN and nothing was blocked.
    with pytest.raises(ConfigError, match=f"conf/router.yaml: {section}.{key}: must be a finite number"):
        parse_config(minimal(**{section: {key: value}}), source=Path("conf/router.yaml"))


def test_nan_in_the_cache_block_is_rejected_too():
    with pytest.raises(ConfigError, match="semantic_cache.similarity_threshold: must be a finite number"):
        parse_config(minimal(semantic_cache={"similarity_threshold": float("nan")}), source=Path("c.yaml"))


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"default_model: caf\xe9\n")
    with pytest.raises(ConfigError, match="latin1.yaml: not UTF-8"):
        load_config(bad)


def test_a_milvus_file_that_is_a_directory_is_a_config_error(tmp_path):
    (tmp_path / "milvus.yaml").mkdir()
    with pytest.raises(ConfigError, match="backend_config_path: cannot read"):
        parse_config(minimal(semantic_cache={"enabled": True, "backend_type": "milvus",
                                             "backend_config_path": str(tmp_path / "milvus.yaml")}),
                     source=tmp_path / "c.yaml")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/*", "/*", "/v1/models"])
def test_a_passthrough_path_may_not_cover_a_guarded_path(path):
    with pytest.raises(ConfigError, match="envoy.passthrough_paths: .* which the router guards"):
        parse_config(minimal(envoy={"passthrough_paths": [path]}), source=Path("c.yaml"))


def test_passthrough_paths_are_exact_or_a_prefix():
    cfg = parse_config(minimal(envoy={"passthrough_paths": ["/v1/embeddings", "/v1/files/*"]}), source=Path("c"))
    assert cfg.envoy.passthrough_paths == ("/v1/embeddings", "/v1/files/*")
    with pytest.raises(ConfigError, match="must be a path starting with /"):
        parse_config(minimal(envoy={"passthrough_paths": ["v1/embeddings"]}), source=Path("c"))


@pytest.mark.parametrize("cache, envoy, reason", [
    # the old defaults: a follower waited 30 s for its leader inside a 5 s ext_proc message timeout
    ({"coalesce_timeout_s": 30}, {}, "30 s (coalesce wait)"),
    ({"coalesce_timeout_s": 2}, {"message_timeout_ms": 3000}, "below envoy.message_timeout_ms (3000 ms)"),
])
def test_cache_waits_must_end_before_envoys_message_timeout(cache, envoy, reason):
    data = minimal(envoy=envoy, semantic_cache={"enabled": True, **cache})
    with pytest.raises(ConfigError) as info:
        parse_config(data, source=Path("conf/router.yaml"))
    assert str(info.value).startswith("conf/router.yaml: semantic_cache.coalesce_timeout_s:")
    assert reason in str(info.value)


def test_a_milvus_search_timeout_counts_against_the_message_timeout(tmp_path):
    (tmp_path / "m.yaml").write_text("uri: data/m.db\nsearch: {timeout: 3.5}\n")
    data = minimal(semantic_cache={"enabled": True, "backend_type": "milvus",
                                   "backend_config_path": str(tmp_path / "m.yaml")})
    with pytest.raises(ConfigError, match=r"3.5 s \(Milvus search.timeout\)"):
        parse_config(data, source=tmp_path / "c.yaml")
    data["envoy"] = {"message_timeout_ms": 8000}
    assert parse_config(data, source=tmp_path / "c.yaml").semantic_cache.milvus.search_timeout_s == 3.5
