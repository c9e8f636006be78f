"""The semantic_cache block and the Milvus backend file load in the seed's shape and fail with file: key: reason."""

from pathlib import Path

import pytest
import yaml

from router_extproc.config_cache import DEFAULT_LITE_URI, load_milvus_config, load_semantic_cache
from router_extproc.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

SEED_BLOCK = {
    "enabled": True,
    "backend_type": "milvus",
    "backend_config_path": "config/cache/milvus.yaml",
    "similarity_threshold": 0.8,
    "max_entries": 1000,
    "ttl_seconds": 3600,
    "eviction_policy": "fifo",
}

SEED_MILVUS = """
connection:
  host: "localhost"
  port: 19530
  database: "semantic_router_cache"
  timeout: 30
  auth: {enabled: false, username: "", password: ""}
  tls: {enabled: false, cert_file: "", key_file: "", ca_file: ""}
collection:
  name: "semantic_cache"
  description: "Semantic cache for LLM request-response pairs"
  vector_field: {name: "embedding", dimension: 384, metric_type: "IP"}
  index:
    type: "HNSW"
    params: {M: 16, efConstruction: 64}
search:
  params: {ef: 64}
  topk: 10
  consistency_level: "Session"
performance:
  connection_pool: {max_connections: 10, max_idle_connections: 5, acquire_timeout: 5}
  batch: {insert_batch_size: 1000, timeout: 30}
data_management:
  ttl: {enabled: true, timestamp_field: "timestamp", cleanup_interval: 3600}
  compaction: {enabled: true, interval: 86400}
logging: {level: "info", enable_query_log: false, enable_metrics: true}
development: {drop_collection_on_startup: true, auto_create_collection: true}
"""


def test_the_seed_block_loads_with_the_shipped_milvus_file(tmp_path):
    cfg = load_semantic_cache(SEED_BLOCK, source=ROOT / "config/config.yaml", base_dir=ROOT)
    assert cfg.enabled and cfg.backend_type == "milvus"
    assert cfg.similarity_threshold == 0.8 and cfg.max_entries == 1000 and cfg.ttl_seconds == 3600
    assert cfg.milvus is not None and cfg.milvus.is_lite and cfg.milvus.uri == DEFAULT_LITE_URI
    assert cfg.milvus.consistency_level == "Bounded"  # never waits for the time tick under concurrent inserts
    assert cfg.milvus.index_params == {"M": 16, "efConstruction": 64}


def test_the_seed_milvus_file_loads_unchanged_and_selects_a_server(tmp_path):
    p = tmp_path / "milvus.yaml"
    p.write_text(SEED_MILVUS)
    m = load_milvus_config(p)
    assert m.uri == "http://localhost:19530" and not m.is_lite
    assert m.database == "semantic_router_cache" and m.timeout_s == 30
    assert m.top_k == 10 and m.search_params == {"ef": 64} and m.metric_type == "IP"
    assert m.drop_collection_on_startup is True and m.insert_batch_size == 1000


def test_a_uri_with_a_file_path_selects_milvus_lite_and_a_url_a_server(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("uri: /var/lib/cache/x.db\n")
    assert load_milvus_config(p).is_lite
    p.write_text("uri: http://milvus:19530\nconsistency_level: Bounded\n")
    m = load_milvus_config(p)
    assert not m.is_lite and m.consistency_level == "Bounded"


def test_without_uri_or_host_the_default_is_milvus_lite(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("collection: {name: c1}\n")
    assert load_milvus_config(p).uri == DEFAULT_LITE_URI


def test_tls_and_auth_are_read_from_the_seed_shape(tmp_path):
    raw = yaml.safe_load(SEED_MILVUS)
    raw["connection"]["tls"] = {"enabled": True, "cert_file": "c.pem", "key_file": "k.pem", "ca_file": "ca.pem"}
    raw["connection"]["auth"] = {"enabled": True, "username": "u", "password": "p"}
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(raw))
    m = load_milvus_config(p)
    assert m.uri.startswith("https://") and m.tls_ca == "ca.pem" and m.username == "u" and m.password == "p"


@pytest.mark.parametrize(
    "text, key",
    [
        ("consistency_level: Strong\n", "consistency_level"),
        ("search: {consistency_level: Strong}\n", "search.consistency_level"),
        ("collection: {vector_field: {metric_type: HAMMING}}\n", "collection.vector_field.metric_type"),
        ("connection: {port: 99999, host: h}\n", "connection.port"),
        ("colection: {}\n", "colection"),
        ("connection: {timeout: fast}\n", "connection.timeout"),
        ("invalidation_poll_s: 5\n", "invalidation_poll_s"),  # a clear must reach every replica within 2 s
        ("lite_warn_rows: 0\n", "lite_warn_rows"),
    ],
)
def test_invalid_milvus_files_name_the_file_and_key(tmp_path, text, key):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_milvus_config(p)
    assert str(e.value).startswith(f"{p}: {key}: ")


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"backend_type": "redis"}, "semantic_cache.backend_type"),
        ({"eviction_policy": "random"}, "semantic_cache.eviction_policy"),
        ({"similarity_threshold": 1.5}, "semantic_cache.similarity_threshold"),
        ({"max_entries": 0}, "semantic_cache.max_entries"),
        ({"enabled": "yes"}, "semantic_cache.enabled"),
        ({"backend_config_path": "nope/milvus.yaml"}, "semantic_cache.backend_config_path"),
        ({"bogus": 1}, "semantic_cache.bogus"),
        ({"eviction_policy": "lru"}, "semantic_cache.eviction_policy"),  # Milvus evicts oldest first only
    ],
)
def test_invalid_blocks_name_the_file_and_key(tmp_path, patch, key):
    src = tmp_path / "config.yaml"
    with pytest.raises(ConfigError) as e:
        load_semantic_cache({**SEED_BLOCK, **patch}, source=src, base_dir=tmp_path)
    assert str(e.value).startswith(f"{src}: {key}: ")


def test_backend_config_path_is_resolved_next_to_the_main_config_first(tmp_path):
    (tmp_path / "conf/cache").mkdir(parents=True)
    (tmp_path / "conf/cache/milvus.yaml").write_text("uri: here.db\n")
    cfg = load_semantic_cache({**SEED_BLOCK, "backend_config_path": "cache/milvus.yaml"},
                              source=tmp_path / "conf/config.yaml", base_dir=tmp_path)
    assert cfg.milvus.uri == "here.db"


def test_a_missing_block_means_a_disabled_memory_cache():
    cfg = load_semantic_cache(None, source=Path("c.yaml"))
    assert not cfg.enabled and cfg.backend_type == "memory"
    assert cfg.max_temperature == 1.0 and cfg.scope_headers == ("authorization", "x-api-key")
    assert not cfg.cache_anonymous and cfg.coalesce_timeout_s == 2.0


def _milvus(tmp_path, text):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return load_milvus_config(p)


def test_credentials_come_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MILVUS_PW", "from-env")
    (tmp_path / "token").write_text("from-file\n")
    m = _milvus(tmp_path, "uri: http://m:19530\nconnection:\n  auth: {enabled: true, username: u, "
                          f"password_env: MILVUS_PW, token_file: {tmp_path / 'token'}}}\n")
    assert (m.username, m.password, m.token) == ("u", "from-env", "from-file")


@pytest.mark.parametrize("auth, key", [
    ("{enabled: true, password_env: NOT_SET_ANYWHERE}", "connection.auth.password_env"),
    ("{enabled: true, token_file: /nonexistent/token}", "connection.auth.token_file"),
    ("{enabled: true, password: p, password_env: X}", "connection.auth.password_env"),
])
def test_a_missing_secret_names_the_key(tmp_path, auth, key):
    with pytest.raises(ConfigError) as e:
        _milvus(tmp_path, f"uri: http://m:19530\nconnection:\n  auth: {auth}\n")
    assert f": {key}: " in str(e.value)


def test_tls_applies_when_the_server_is_given_as_a_uri(tmp_path):
    from router_extproc.cache.milvus import client_args

    m = _milvus(tmp_path, "uri: http://milvus:19530\nconnection:\n  tls: {enabled: true, ca_file: ca.pem}\n")
    uri, kw = client_args(m)
    assert uri == "https://milvus:19530"
    assert kw["secure"] is True and kw["server_pem_path"] == "ca.pem"
    plain_uri, plain = client_args(_milvus(tmp_path, "uri: http://milvus:19530\n"))
    assert plain_uri == "http://milvus:19530" and "secure" not in plain


def test_the_request_path_search_has_its_own_short_timeout(tmp_path):
    assert load_milvus_config(ROOT / "config" / "cache" / "milvus.yaml").search_timeout_s == 1.0
    assert _milvus(tmp_path, "search: {timeout: 0.25}\n").search_timeout_s == 0.25


def test_lru_and_lfu_stay_available_to_the_memory_backend(tmp_path):
    sc = load_semantic_cache({"enabled": True, "backend_type": "memory", "eviction_policy": "lru"},
                             source=tmp_path / "config.yaml")
    assert sc.eviction_policy == "lru"


def test_the_replica_poll_and_lite_warning_are_read_from_the_milvus_file(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("uri: http://milvus:19530\ninvalidation_poll_s: 0.25\nlite_warn_rows: 10000\n")
    mc = load_milvus_config(p)
    assert (mc.invalidation_poll_s, mc.lite_warn_rows) == (0.25, 10000)


def test_every_setting_of_the_block_is_a_key_it_accepts(tmp_path):
    from dataclasses import fields

    from router_extproc.config_cache import SemanticCacheConfig

    defaults = SemanticCacheConfig()
    block = {f.name: getattr(defaults, f.name) for f in fields(SemanticCacheConfig)
             if f.name not in ("milvus", "source", "backend_config_path")}
    block = {k: list(v) if isinstance(v, tuple) else v for k, v in block.items()}
    assert load_semantic_cache(block, source=tmp_path / "config.yaml") == SemanticCacheConfig(
        source=str(tmp_path / "config.yaml"))


def test_a_numeric_password_is_read_as_text(tmp_path):
    m = _milvus(tmp_path, "uri: http://m:19530\nconnection:\n  auth: {enabled: true, username: u, password: 12345}\n")
    assert m.password == "12345"


def test_the_hot_tier_twin_graph_size_is_configurable_and_zero_means_one_graph(tmp_path):
    # cache/ann.py: from this many rows a bucket keeps a second graph so that lookups never wait for the writer
    from router_extproc.cache.ann import TWIN_MIN_ROWS
    from router_extproc.cache.service import SemanticCache

    memory = {**SEED_BLOCK, "backend_type": "memory"}
    memory.pop("backend_config_path")
    for patch, expected in (({}, TWIN_MIN_ROWS), ({"ann_twin_rows": 1_000}, 1_000), ({"ann_twin_rows": 0}, None)):
        cfg = load_semantic_cache({**memory, **patch}, source=tmp_path / "config.yaml", base_dir=tmp_path)
        cache = SemanticCache.from_config(cfg, dimension=8, verifier_path=None)
        assert cache.hot.ann_twin_rows == expected
    src = tmp_path / "config.yaml"
    with pytest.raises(ConfigError) as e:
        load_semantic_cache({**memory, "ann_twin_rows": -1}, source=src, base_dir=tmp_path)
    assert str(e.value).startswith(f"{src}: semantic_cache.ann_twin_rows: ")
