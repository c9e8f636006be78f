"""Typed configuration of the semantic cache: the ``semantic_cache`` block and the Milvus backend file.

Both files load in the seed deployment's shape unchanged (vLLM Semantic Router's ``semantic_cache`` block and
``config/cache/milvus.yaml``). Additions are optional keys with defaults. Every validation error is a
:class:`~router_extproc.errors.ConfigError` whose message is ``"{file}: {key}: {reason}"``.

Credentials (``connection.auth.password`` / ``token``) can come from an environment variable (``password_env:
MILVUS_PASSWORD``) or a file (``token_file: /var/run/secrets/milvus/token``) instead of the file itself.

Path resolution of ``backend_config_path``: an absolute path is used as is; a relative path is tried against the
directory of the main config file, then against ``base_dir`` when a caller passes one (config.py does not; tests
pass a project root), then against the current working directory; the first that exists wins.

Milvus backend selection (``milvus.yaml``):

* ``uri`` set to a file path (``data/cache/milvus.db``) → embedded Milvus Lite in that file (directories created);
  a relative path is relative to the process' working directory.
* ``uri`` set to ``http(s)://host:port`` → a Milvus server or cluster (``connection.tls.enabled`` makes it ``https``
  and applies the certificates; ``connection.auth`` applies too).
* no ``uri`` but ``connection.host`` → server at ``http(s)://host:port`` (``https`` when ``tls.enabled``).
* neither → Milvus Lite at ``data/cache/milvus.db`` (the default).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from router_extproc.errors import ConfigError

__all__ = [
    "SemanticCacheConfig",
    "MilvusConfig",
    "load_semantic_cache",
    "load_milvus_config",
    "DEFAULT_LITE_URI",
]

DEFAULT_LITE_URI = "data/cache/milvus.db"
_EVICTION = ("fifo", "lru", "lfu")
_BACKENDS = ("memory", "milvus")
_METRICS = ("IP", "COSINE", "L2")
_CONSISTENCY = ("Session", "Bounded", "Eventually")


@dataclass(frozen=True, slots=True)
class MilvusConfig:
    """The Milvus backend file (``config/cache/milvus.yaml``)."""

    uri: str = DEFAULT_LITE_URI
    database: str = "default"
    timeout_s: float = 5.0  # background calls (insert, flush, delete, count)
    search_timeout_s: float = 1.0  # a lookup on the request path; slower, and the request goes on uncached
    username: str = ""
    password: str = ""
    token: str = ""
    tls_enabled: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    collection: str = "semantic_cache"
    description: str = "router-extproc semantic cache"
    vector_field: str = "embedding"
    dimension: int | None = None  # informative only: the dimension is taken from the embedding model
    metric_type: str = "IP"
    index_type: str = "HNSW"
    index_params: Mapping[str, Any] = field(default_factory=lambda: {"M": 16, "efConstruction": 64})
    search_params: Mapping[str, Any] = field(default_factory=lambda: {"ef": 128})  # measured: docs/cache.md Scale
    top_k: int = 4
    # Bounded: a search never waits. Session made every search wait for the time tick (~200 ms) while this router's
    # own inserts were arriving; a router's own writes are in its hot tier anyway (docs/cache.md, "Scale").
    consistency_level: str = "Bounded"
    insert_batch_size: int = 64
    flush_interval_ms: int = 50
    cleanup_interval_s: float = 60.0
    drop_collection_on_startup: bool = False
    auto_create_collection: bool = True
    reconnect_interval_s: float = 2.0
    # Every replica polls the control collection this often for clears made elsewhere (docs/cache.md, "Replicas").
    invalidation_poll_s: float = 0.5
    # Milvus Lite scans its rows in Python + faiss: past this many the lookup leaves its target (docs/cache.md).
    lite_warn_rows: int = 4000
    source: str = "<defaults>"

    @property
    def is_lite(self) -> bool:
        return not self.uri.startswith(("http://", "https://", "tcp://", "unix:"))


@dataclass(frozen=True, slots=True)
class SemanticCacheConfig:
    """The ``semantic_cache`` block of the main config."""

    enabled: bool = False
    backend_type: str = "memory"
    backend_config_path: Path | None = None
    similarity_threshold: float = 0.8  # cosine floor for candidates; the verifier then decides
    max_entries: int = 1000
    ttl_seconds: float = 3600.0
    eviction_policy: str = "fifo"
    # additions
    scope_headers: tuple[str, ...] = ("authorization", "x-api-key")  # the tenant: hash of those present
    cache_anonymous: bool = False  # requests without any scope header share one scope: not cached unless true
    max_temperature: float = 1.0  # inclusive; a missing temperature counts as 1.0 (OpenAI default)
    verifier: bool = True
    verifier_threshold: float | None = None  # None: the calibrated threshold shipped in verifier.json
    audit_share: float = 0.0  # of semantic hits also asked upstream off the client's path (cache/audit.py); 0: off
    audit_agree: float = 0.80  # answer agreement under which an audited hit counts as a false hit
    exact_match: bool = True
    coalesce: bool = True
    coalesce_timeout_s: float = 2.0  # a follower waits this long for its leader, then goes upstream itself
    max_response_bytes: int = 60_000
    context_turns: int = 6  # most recent non-system messages in the semantic text
    max_tokens_tiers: tuple[int, ...] = (256, 1024, 4096)
    hot_entries: int = 10_000  # in-process index in front of Milvus (0: no warm-up, Milvus searched on every miss)
    milvus: MilvusConfig | None = None
    source: str = "<defaults>"


# ---------------------------------------------------------------- helpers


def _err(file: Any, key: str, reason: str) -> ConfigError:
    return ConfigError(f"{file}: {key}: {reason}")


def _bool(v: Any, file: Any, key: str) -> bool:
    if isinstance(v, bool):
        return v
    raise _err(file, key, f"must be true or false, got {v!r}")


def _num(v: Any, file: Any, key: str, *, lo: float | None = None, hi: float | None = None, integer=False):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _err(file, key, f"must be a number, got {v!r}")
    if not math.isfinite(v):  # NaN passes every comparison below
        raise _err(file, key, f"must be a finite number, got {v!r}")
    if integer and (not isinstance(v, int) and not float(v).is_integer()):
        raise _err(file, key, f"must be an integer, got {v!r}")
    if lo is not None and v < lo:
        raise _err(file, key, f"must be >= {lo}, got {v!r}")
    if hi is not None and v > hi:
        raise _err(file, key, f"must be <= {hi}, got {v!r}")
    return int(v) if integer else float(v)


def _str(v: Any, file: Any, key: str) -> str:
    if v is None:
        return ""
    if not isinstance(v, (str, int, float)) or isinstance(v, bool):
        raise _err(file, key, f"must be a string, got {v!r}")
    return str(v)


def _map(v: Any, file: Any, key: str) -> Mapping[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise _err(file, key, f"must be a mapping, got {type(v).__name__}")
    return v


def _check_keys(m: Mapping, allowed: set[str], file: Any, prefix: str) -> None:
    for k in m:
        if k not in allowed:
            raise _err(file, f"{prefix}{k}", f"unknown key (allowed: {', '.join(sorted(allowed))})")


# ---------------------------------------------------------------- milvus.yaml

_SECRETS = ("password", "token")


def _secret(auth: Mapping, name: str, file: Any) -> str:
    """A credential given inline, from an environment variable (``<name>_env``) or from a file (``<name>_file``,
    e.g. a mounted Kubernetes Secret); at most one of the three."""
    key = f"connection.auth.{name}"
    given = [k for k in (name, f"{name}_env", f"{name}_file") if auth.get(k)]
    if len(given) > 1:
        raise _err(file, f"connection.auth.{given[1]}", f"give only one of {name}, {name}_env, {name}_file")
    if not given:
        return ""
    source = _str(auth[given[0]], file, f"connection.auth.{given[0]}")
    if given[0] == name:
        return source
    if given[0].endswith("_env"):
        value = os.environ.get(source)
        if value is None:
            raise _err(file, f"{key}_env", f"environment variable {source} is not set")
        return value
    try:
        return Path(source).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise _err(file, f"{key}_file", f"cannot read {source}: {e}") from None


# Sections of the seed file that we accept and ignore (they describe knobs of the Go implementation).
_MILVUS_IGNORED_SECTIONS = {"logging", "performance", "data_management", "development"}


def load_milvus_config(path: Path) -> MilvusConfig:
    """Load and validate a Milvus backend file (seed shape or ``uri`` form)."""
    file = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise _err(file, "backend_config_path", "file not found") from None
    except OSError as e:
        raise _err(file, "backend_config_path", f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise _err(file, "<file>", f"not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise _err(file, "<yaml>", f"invalid YAML: {e}") from None
    return parse_milvus_config(raw, source=file)


def parse_milvus_config(raw: Any, *, source: str = "<milvus>") -> MilvusConfig:
    file = source
    raw = _map(raw, file, "<root>")
    _check_keys(
        raw,
        {"uri", "consistency_level", "connection", "collection", "index", "search", "data_dir",
         "invalidation_poll_s", "lite_warn_rows"}
        | _MILVUS_IGNORED_SECTIONS,
        file,
        "",
    )
    kw: dict[str, Any] = {"source": file}
    conn = _map(raw.get("connection"), file, "connection")
    tls_enabled = _milvus_connection(conn, file, kw)
    _milvus_uri(raw, conn, tls_enabled, file, kw)
    coll = _map(raw.get("collection"), file, "collection")
    _milvus_collection(coll, file, kw)
    _milvus_search(raw, coll, file, kw)
    _milvus_seed_sections(raw, file, kw)
    return MilvusConfig(**kw)


def _milvus_connection(conn: Mapping[str, Any], file: Any, kw: dict[str, Any]) -> bool:
    """connection.*: auth, TLS, database, timeout. Returns whether TLS is on (it applies to the uri too)."""
    _check_keys(conn, {"host", "port", "database", "timeout", "auth", "tls", "uri"}, file, "connection.")
    auth = _map(conn.get("auth"), file, "connection.auth")
    _check_keys(auth, {"enabled", "username", *(f"{n}{sfx}" for n in _SECRETS for sfx in ("", "_env", "_file"))},
                file, "connection.auth.")
    tls = _map(conn.get("tls"), file, "connection.tls")
    _check_keys(tls, {"enabled", "cert_file", "key_file", "ca_file", "cert", "key", "ca"}, file, "connection.tls.")

    tls_enabled = _bool(tls.get("enabled", False), file, "connection.tls.enabled")
    kw["tls_enabled"] = tls_enabled
    kw["tls_cert"] = _str(tls.get("cert_file", tls.get("cert")), file, "connection.tls.cert_file")
    kw["tls_key"] = _str(tls.get("key_file", tls.get("key")), file, "connection.tls.key_file")
    kw["tls_ca"] = _str(tls.get("ca_file", tls.get("ca")), file, "connection.tls.ca_file")
    auth_enabled = _bool(auth.get("enabled", bool(auth.get("username") or auth.get("token"))), file,
                         "connection.auth.enabled")
    if auth_enabled:
        kw["username"] = _str(auth.get("username"), file, "connection.auth.username")
        for name in _SECRETS:
            kw[name] = _secret(auth, name, file)
    if "database" in conn:
        kw["database"] = _str(conn["database"], file, "connection.database") or "default"
    if "timeout" in conn:
        kw["timeout_s"] = _num(conn["timeout"], file, "connection.timeout", lo=0.1)
    return tls_enabled


def _milvus_uri(raw: Mapping[str, Any], conn: Mapping[str, Any], tls_enabled: bool, file: Any,
                kw: dict[str, Any]) -> None:
    """uri (or connection.host/port, or data_dir for Milvus Lite), and the coherence knobs."""
    uri = raw.get("uri", conn.get("uri"))
    if uri is not None:
        uri = _str(uri, file, "uri").strip()
        if not uri:
            raise _err(file, "uri", "must not be empty")
        if tls_enabled and uri.startswith("http://"):
            uri = "https://" + uri[len("http://"):]  # connection.tls applies to a uri too
    elif conn.get("host"):
        host = _str(conn["host"], file, "connection.host")
        port = _num(conn.get("port", 19530), file, "connection.port", lo=1, hi=65535, integer=True)
        uri = f"{'https' if tls_enabled else 'http'}://{host}:{port}"
    else:
        data_dir = _str(raw.get("data_dir"), file, "data_dir")
        uri = str(Path(data_dir) / "milvus.db") if data_dir else DEFAULT_LITE_URI
    kw["uri"] = uri
    if "invalidation_poll_s" in raw:
        kw["invalidation_poll_s"] = _num(raw["invalidation_poll_s"], file, "invalidation_poll_s", lo=0.05, hi=1.5)
    if "lite_warn_rows" in raw:
        kw["lite_warn_rows"] = _num(raw["lite_warn_rows"], file, "lite_warn_rows", lo=1, integer=True)


def _milvus_collection(coll: Mapping[str, Any], file: Any, kw: dict[str, Any]) -> None:
    _check_keys(coll, {"name", "description", "vector_field", "index"}, file, "collection.")
    if "name" in coll:
        name = _str(coll["name"], file, "collection.name")
        if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise _err(file, "collection.name", f"must be letters, digits and underscores, got {name!r}")
        kw["collection"] = name
    if "description" in coll:
        kw["description"] = _str(coll["description"], file, "collection.description")
    vf = _map(coll.get("vector_field"), file, "collection.vector_field")
    _check_keys(vf, {"name", "dimension", "metric_type"}, file, "collection.vector_field.")
    if "name" in vf:
        kw["vector_field"] = _str(vf["name"], file, "collection.vector_field.name")
    if vf.get("dimension") is not None:
        kw["dimension"] = _num(vf["dimension"], file, "collection.vector_field.dimension", lo=1, integer=True)
    if "metric_type" in vf:
        mt = _str(vf["metric_type"], file, "collection.vector_field.metric_type").upper()
        if mt not in _METRICS:
            raise _err(file, "collection.vector_field.metric_type", f"must be one of {_METRICS}, got {mt!r}")
        kw["metric_type"] = mt


def _milvus_search(raw: Mapping[str, Any], coll: Mapping[str, Any], file: Any, kw: dict[str, Any]) -> None:
    # index: under collection (seed) or top level
    index = _map(coll.get("index", raw.get("index")), file, "collection.index")
    _check_keys(index, {"type", "params", "search_params"}, file, "collection.index.")
    if "type" in index:
        kw["index_type"] = _str(index["type"], file, "collection.index.type").upper()
    if "params" in index:
        kw["index_params"] = dict(_map(index["params"], file, "collection.index.params"))
    search = _map(raw.get("search"), file, "search")
    _check_keys(search, {"params", "topk", "top_k", "consistency_level", "timeout"}, file, "search.")
    if "timeout" in search:
        kw["search_timeout_s"] = _num(search["timeout"], file, "search.timeout", lo=0.01)
    sp = search.get("params", index.get("search_params"))
    if sp is not None:
        kw["search_params"] = dict(_map(sp, file, "search.params"))
    topk = search.get("topk", search.get("top_k"))
    if topk is not None:
        kw["top_k"] = _num(topk, file, "search.topk", lo=1, hi=100, integer=True)

    cl = raw.get("consistency_level", search.get("consistency_level"))
    if cl is not None:
        key = "consistency_level" if "consistency_level" in raw else "search.consistency_level"
        cl = _str(cl, file, key).capitalize()
        if cl == "Strong":
            raise _err(file, key, "Strong waits for the time tick (~200 ms per search); use Session or Bounded")
        if cl not in _CONSISTENCY:
            raise _err(file, key, f"must be one of {_CONSISTENCY}, got {cl!r}")
        kw["consistency_level"] = cl


def _milvus_seed_sections(raw: Mapping[str, Any], file: Any, kw: dict[str, Any]) -> None:
    """The seed file's performance/data_management/development sections: the few knobs the router reads."""
    perf = _map(raw.get("performance"), file, "performance")
    batch = _map(perf.get("batch"), file, "performance.batch")
    if "insert_batch_size" in batch:
        kw["insert_batch_size"] = _num(batch["insert_batch_size"], file, "performance.batch.insert_batch_size",
                                       lo=1, integer=True)
    dm = _map(raw.get("data_management"), file, "data_management")
    ttl = _map(dm.get("ttl"), file, "data_management.ttl")
    if "cleanup_interval" in ttl:
        kw["cleanup_interval_s"] = _num(ttl["cleanup_interval"], file, "data_management.ttl.cleanup_interval",
                                        lo=1)
    dev = _map(raw.get("development"), file, "development")
    if "drop_collection_on_startup" in dev:
        kw["drop_collection_on_startup"] = _bool(dev["drop_collection_on_startup"], file,
                                                 "development.drop_collection_on_startup")
    if "auto_create_collection" in dev:
        kw["auto_create_collection"] = _bool(dev["auto_create_collection"], file,
                                             "development.auto_create_collection")


# ---------------------------------------------------------------- timeouts

# What the body phase spends besides the cache: the signal pass (tens of ms, more on a loaded CPU) and Envoy's
# and gRPC's own hops.
SIGNAL_MARGIN_S = 1.0


def check_timeouts(sc: SemanticCacheConfig, message_timeout_s: float, *, file: Any) -> None:
    """The body phase must answer before Envoy's ``message_timeout``, else the client gets a 500 (or, failing open,
    an unguarded forward). Its worst case is the signal pass + one Milvus search + a follower's wait for its leader;
    each of those gives up in time and the request goes upstream uncached."""
    if not sc.enabled:
        return
    search = sc.milvus.search_timeout_s if sc.backend_type == "milvus" and sc.milvus is not None else 0.0
    wait = sc.coalesce_timeout_s if sc.coalesce else 0.0
    need = SIGNAL_MARGIN_S + search + wait
    if need >= message_timeout_s:
        raise _err(file, "semantic_cache.coalesce_timeout_s",
                   f"{wait:g} s (coalesce wait) + {search:g} s (Milvus search.timeout) + {SIGNAL_MARGIN_S:g} s "
                   f"(signal pass) must stay below envoy.message_timeout_ms ({message_timeout_s * 1000:g} ms): "
                   "lower them or raise envoy.message_timeout_ms")


# ---------------------------------------------------------------- semantic_cache block

_BLOCK_KEYS = {f for f in SemanticCacheConfig.__dataclass_fields__ if f not in ("milvus", "source")}


def _resolve(path_str: str, source: Path, base_dir: Path | None) -> Path:
    p = Path(path_str)
    if p.is_absolute():
        return p
    candidates = [Path(source).parent / p]
    if base_dir is not None:
        candidates.append(Path(base_dir) / p)
    candidates.append(Path.cwd() / p)
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def load_semantic_cache(block: Mapping | None, *, source: Path, base_dir: Path | None = None) -> SemanticCacheConfig:
    """Validate the ``semantic_cache`` block of ``source``; load the Milvus file when the backend is milvus."""
    file = str(source)
    if block is None:
        return SemanticCacheConfig(source=file)
    if not isinstance(block, Mapping):
        raise _err(file, "semantic_cache", f"must be a mapping, got {type(block).__name__}")
    p = "semantic_cache."
    _check_keys(block, _BLOCK_KEYS, file, p)
    kw: dict[str, Any] = {"source": file}
    if "enabled" in block:
        kw["enabled"] = _bool(block["enabled"], file, p + "enabled")
    bt = block.get("backend_type", "memory")
    if bt not in _BACKENDS:
        raise _err(file, p + "backend_type", f"must be one of {_BACKENDS}, got {bt!r}")
    kw["backend_type"] = bt
    if "similarity_threshold" in block:
        kw["similarity_threshold"] = _num(block["similarity_threshold"], file, p + "similarity_threshold",
                                          lo=-1.0, hi=1.0)
    if "max_entries" in block:
        kw["max_entries"] = _num(block["max_entries"], file, p + "max_entries", lo=1, integer=True)
    if "ttl_seconds" in block:
        kw["ttl_seconds"] = _num(block["ttl_seconds"], file, p + "ttl_seconds", lo=0)
    if "eviction_policy" in block:
        ev = block["eviction_policy"]
        if ev not in _EVICTION:
            raise _err(file, p + "eviction_policy", f"must be one of {_EVICTION}, got {ev!r}")
        kw["eviction_policy"] = ev
    if "scope_headers" in block:
        sh = block["scope_headers"]
        if isinstance(sh, str):
            sh = [sh]
        if not isinstance(sh, (list, tuple)) or not all(isinstance(h, str) and h for h in sh):
            raise _err(file, p + "scope_headers", "must be a list of header names")
        kw["scope_headers"] = tuple(h.lower() for h in sh)
    if "max_temperature" in block:
        kw["max_temperature"] = _num(block["max_temperature"], file, p + "max_temperature", lo=0, hi=2)
    for b in ("verifier", "exact_match", "coalesce", "cache_anonymous"):
        if b in block:
            kw[b] = _bool(block[b], file, p + b)
    for k in ("audit_share", "audit_agree"):
        if k in block:
            kw[k] = _num(block[k], file, p + k, lo=0, hi=1)
    if block.get("verifier_threshold") is not None:
        kw["verifier_threshold"] = _num(block["verifier_threshold"], file, p + "verifier_threshold", lo=0, hi=1)
    if "coalesce_timeout_s" in block:
        kw["coalesce_timeout_s"] = _num(block["coalesce_timeout_s"], file, p + "coalesce_timeout_s", lo=0)
    if "max_response_bytes" in block:
        kw["max_response_bytes"] = _num(block["max_response_bytes"], file, p + "max_response_bytes", lo=1,
                                        hi=65_000, integer=True)
    if "context_turns" in block:
        kw["context_turns"] = _num(block["context_turns"], file, p + "context_turns", lo=1, integer=True)
    if "hot_entries" in block:
        kw["hot_entries"] = _num(block["hot_entries"], file, p + "hot_entries", lo=0, integer=True)
    if "max_tokens_tiers" in block:
        t = block["max_tokens_tiers"]
        if not isinstance(t, (list, tuple)) or not all(isinstance(x, int) and x > 0 for x in t):
            raise _err(file, p + "max_tokens_tiers", "must be a list of positive integers")
        kw["max_tokens_tiers"] = tuple(sorted(t))
    bcp = block.get("backend_config_path")
    if bcp is not None:
        if not isinstance(bcp, str) or not bcp:
            raise _err(file, p + "backend_config_path", "must be a path string")
        kw["backend_config_path"] = _resolve(bcp, Path(source), base_dir)
    if bt == "milvus" and kw.get("eviction_policy", "fifo") != "fifo":
        # Milvus keeps the order in a scalar field (created_at) and evicts the oldest rows in batches; LRU/LFU
        # would need a row rewrite on every hit. The in-process hot tier in front of it is LRU regardless.
        raise _err(file, p + "eviction_policy", f"{kw['eviction_policy']!r} is not supported by the milvus backend "
                   "(it evicts the oldest rows by created_at): use fifo")
    if bt == "milvus":
        if kw.get("backend_config_path") is None:
            kw["milvus"] = MilvusConfig(source=file)  # Milvus Lite defaults
        else:
            path = kw["backend_config_path"]
            if not path.exists():
                raise _err(file, p + "backend_config_path", f"{path} not found")
            kw["milvus"] = load_milvus_config(path)
    return SemanticCacheConfig(**kw)
