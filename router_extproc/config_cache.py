"""Typed configuration of the semantic cache: the ``semantic_cache`` block and the Milvus backend file.

Both files load in the seed deployment's shape unchanged (vLLM Semantic Router's ``semantic_cache`` block and
``config/cache/milvus.yaml``). Additions are optional keys with defaults. Both are read through
:class:`~router_extproc.config_reader.Reader`, like every other section: every validation error is a
:class:`~router_extproc.errors.ConfigError` whose message is ``"{file}: {key}: {reason}"``, and unknown keys are
refused (but the seed Milvus file's sections that describe knobs of the Go implementation).

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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from router_extproc.config_reader import Reader, config_error

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
    # a category whose audited false-hit estimate exceeds this (after audit_min_samples audits) is served only
    # scores audit_raise_by above the verifier's threshold; None: never raised
    audit_max_false_hits: float | None = None
    audit_min_samples: int = 20
    audit_raise_by: float = 0.05
    exact_match: bool = True
    coalesce: bool = True
    coalesce_timeout_s: float = 2.0  # a follower waits this long for its leader, then goes upstream itself
    max_response_bytes: int = 60_000
    context_turns: int = 6  # most recent non-system messages in the semantic text
    max_tokens_tiers: tuple[int, ...] = (256, 1024, 4096)
    hot_entries: int = 10_000  # in-process index in front of Milvus (0: no warm-up, Milvus searched on every miss)
    # rows from which an in-process bucket keeps a second graph, so that lookups never wait for the writer's adds:
    # ~680 bytes a row more, for a lookup p99 that writes do not move (None: the measured default, cache/ann.py
    # TWIN_MIN_ROWS; 0: never)
    ann_twin_rows: int | None = None
    milvus: MilvusConfig | None = None
    source: str = "<defaults>"


# ---------------------------------------------------------------- milvus.yaml

_SECRETS = ("password", "token")


def _pick(*places: tuple[Reader, str]) -> tuple[Reader, str]:
    """Where a setting is given: the first of its places (reader, key) that is set, else the first place. The seed
    file spells some keys differently from this router (``cert_file``/``cert``, ``topk``/``top_k``) or puts them in
    another section; the places not picked are accepted unread, as the seed's loader does."""
    for r, k in places:
        r.ignore(k)
    return next(((r, k) for r, k in places if r.data.get(k) is not None), places[0])


def _secret(auth: Reader, name: str) -> str:
    """A credential given inline, from an environment variable (``<name>_env``) or from a file (``<name>_file``,
    e.g. a mounted Kubernetes Secret); at most one of the three."""
    given = [k for k in (name, f"{name}_env", f"{name}_file") if auth.raw(k, None)]
    if len(given) > 1:
        raise auth.error(auth.key(given[1]), f"give only one of {name}, {name}_env, {name}_file")
    if not given:
        return ""
    source = auth.text(given[0])
    if given[0] == name:
        return source
    if given[0].endswith("_env"):
        value = os.environ.get(source)
        if value is None:
            raise auth.error(auth.key(given[0]), f"environment variable {source} is not set")
        return value
    try:
        return Path(source).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise auth.error(auth.key(given[0]), f"cannot read {source}: {e}") from None


# Sections of the seed file that we accept and ignore (they describe knobs of the Go implementation).
_MILVUS_IGNORED_SECTIONS = {"logging", "performance", "data_management", "development"}


def load_milvus_config(path: Path) -> MilvusConfig:
    """Load and validate a Milvus backend file (seed shape or ``uri`` form)."""
    file = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise config_error(file, "backend_config_path", "file not found") from None
    except OSError as e:
        raise config_error(file, "backend_config_path", f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise config_error(file, "<file>", f"not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise config_error(file, "<yaml>", f"invalid YAML: {e}") from None
    return parse_milvus_config(raw, source=file)


def parse_milvus_config(raw: Any, *, source: str = "<milvus>") -> MilvusConfig:
    r = Reader(raw, source, "")
    r.ignore(*_MILVUS_IGNORED_SECTIONS)
    d = MilvusConfig()
    kw: dict[str, Any] = {"source": source}
    conn = r.section("connection")
    tls_enabled = _milvus_connection(conn, kw)
    kw["uri"] = _milvus_uri(r, conn, tls_enabled, d)
    kw["invalidation_poll_s"] = r.float("invalidation_poll_s", d.invalidation_poll_s, lo=0.05, hi=1.5)
    kw["lite_warn_rows"] = r.int("lite_warn_rows", d.lite_warn_rows, minimum=1)
    coll = r.section("collection")
    _milvus_collection(coll, d, kw)
    _milvus_search(r, coll, d, kw)
    _milvus_seed_sections(r, d, kw)
    coll.check_unknown()
    r.check_unknown()
    return MilvusConfig(**kw)


def _milvus_connection(conn: Reader, kw: dict[str, Any]) -> bool:
    """connection.*: auth, TLS, database, timeout. Returns whether TLS is on (it applies to the uri too)."""
    conn.ignore("host", "port", "uri")  # the server's address: _milvus_uri
    d = MilvusConfig()
    auth, tls = conn.section("auth"), conn.section("tls")
    tls_enabled = tls.bool("enabled", False)
    kw["tls_enabled"] = tls_enabled
    for field_name, seed, short in (("tls_cert", "cert_file", "cert"), ("tls_key", "key_file", "key"),
                                    ("tls_ca", "ca_file", "ca")):
        where, k = _pick((tls, seed), (tls, short))
        kw[field_name] = where.text(k, "")
    auth.ignore(*(f"{n}{sfx}" for n in _SECRETS for sfx in ("", "_env", "_file")))  # read when auth is enabled
    if auth.bool("enabled", bool(auth.raw("username", None) or auth.raw("token", None))):
        kw["username"] = auth.text("username", "")
        for name in _SECRETS:
            kw[name] = _secret(auth, name)
    kw["database"] = conn.text("database", d.database) or d.database
    kw["timeout_s"] = conn.float("timeout", d.timeout_s, lo=0.1)
    for x in (auth, tls, conn):
        x.check_unknown()
    return tls_enabled


def _milvus_uri(r: Reader, conn: Reader, tls_enabled: bool, d: MilvusConfig) -> str:
    """uri (or connection.host/port, or data_dir for Milvus Lite)."""
    r.ignore("data_dir")  # read only without a uri or a host
    where, k = _pick((r, "uri"), (conn, "uri"))
    uri = where.text(k, None)
    if uri is not None:
        uri = uri.strip()
        if not uri:
            raise where.error(where.key(k), "must not be empty")
        if tls_enabled and uri.startswith("http://"):
            uri = "https://" + uri[len("http://"):]  # connection.tls applies to a uri too
        return uri
    if conn.raw("host", None):
        host = conn.text("host")
        port = conn.int("port", 19530, minimum=1, maximum=65535)
        return f"{'https' if tls_enabled else 'http'}://{host}:{port}"
    data_dir = r.text("data_dir", "")
    return str(Path(data_dir) / "milvus.db") if data_dir else d.uri


def _milvus_collection(coll: Reader, d: MilvusConfig, kw: dict[str, Any]) -> None:
    name = coll.text("name", d.collection)
    if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
        raise coll.error(coll.key("name"), f"must be letters, digits and underscores, got {name!r}")
    kw["collection"] = name
    kw["description"] = coll.text("description", d.description)
    vf = coll.section("vector_field")
    kw["vector_field"] = vf.text("name", d.vector_field)
    kw["dimension"] = vf.int("dimension", d.dimension, minimum=1)
    mt = vf.text("metric_type", d.metric_type).upper()
    if mt not in _METRICS:
        raise vf.error(vf.key("metric_type"), f"must be one of {_METRICS}, got {mt!r}")
    kw["metric_type"] = mt
    vf.check_unknown()


def _milvus_search(r: Reader, coll: Reader, d: MilvusConfig, kw: dict[str, Any]) -> None:
    where, k = _pick((coll, "index"), (r, "index"))  # under collection (seed) or top level
    index, search = where.section(k), r.section("search")
    kw["index_type"] = index.text("type", d.index_type).upper()
    kw["index_params"] = index.mapping("params", d.index_params)
    kw["search_timeout_s"] = search.float("timeout", d.search_timeout_s, lo=0.01)
    where, k = _pick((search, "params"), (index, "search_params"))
    kw["search_params"] = where.mapping(k, d.search_params)
    where, k = _pick((search, "topk"), (search, "top_k"))
    kw["top_k"] = where.int(k, d.top_k, minimum=1, maximum=100)

    where, k = _pick((r, "consistency_level"), (search, "consistency_level"))
    cl = where.text(k, d.consistency_level).capitalize()
    if cl == "Strong":
        raise where.error(where.key(k), "Strong waits for the time tick (~200 ms per search); use Session or Bounded")
    if cl not in _CONSISTENCY:
        raise where.error(where.key(k), f"must be one of {_CONSISTENCY}, got {cl!r}")
    kw["consistency_level"] = cl
    index.check_unknown()
    search.check_unknown()


def _milvus_seed_sections(r: Reader, d: MilvusConfig, kw: dict[str, Any]) -> None:
    """The seed file's performance/data_management/development sections: the few knobs the router reads. Their
    other keys configure the Go implementation and are accepted unread (no check_unknown here)."""
    batch = r.section("performance").section("batch")
    kw["insert_batch_size"] = batch.int("insert_batch_size", d.insert_batch_size, minimum=1)
    ttl = r.section("data_management").section("ttl")
    kw["cleanup_interval_s"] = ttl.float("cleanup_interval", d.cleanup_interval_s, lo=1)
    dev = r.section("development")
    kw["drop_collection_on_startup"] = dev.bool("drop_collection_on_startup", d.drop_collection_on_startup)
    kw["auto_create_collection"] = dev.bool("auto_create_collection", d.auto_create_collection)


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
        raise config_error(file, "semantic_cache.coalesce_timeout_s",
                           f"{wait:g} s (coalesce wait) + {search:g} s (Milvus search.timeout) + {SIGNAL_MARGIN_S:g} "
                           f"s (signal pass) must stay below envoy.message_timeout_ms ({message_timeout_s * 1000:g} "
                           "ms): lower them or raise envoy.message_timeout_ms")


# ---------------------------------------------------------------- semantic_cache block


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
    r = Reader(block, file, "semantic_cache")
    kw = _block_settings(r, SemanticCacheConfig())
    bcp = r.raw("backend_config_path", None)
    if bcp is not None:
        if not isinstance(bcp, str) or not bcp:
            raise r.error(r.key("backend_config_path"), "must be a path string")
        kw["backend_config_path"] = _resolve(bcp, Path(source), base_dir)
    r.check_unknown()
    if kw["backend_type"] == "milvus":
        if kw["eviction_policy"] != "fifo":
            # Milvus keeps the order in a scalar field (created_at) and evicts the oldest rows in batches; LRU/LFU
            # would need a row rewrite on every hit. The in-process hot tier in front of it is LRU regardless.
            raise r.error(r.key("eviction_policy"), f"{kw['eviction_policy']!r} is not supported by the milvus "
                          "backend (it evicts the oldest rows by created_at): use fifo")
        path = kw.get("backend_config_path")
        if path is None:
            kw["milvus"] = MilvusConfig(source=file)  # Milvus Lite defaults
        elif not path.exists():
            raise r.error(r.key("backend_config_path"), f"{path} not found")
        else:
            kw["milvus"] = load_milvus_config(path)
    return SemanticCacheConfig(source=file, **kw)


def _block_settings(r: Reader, d: SemanticCacheConfig) -> dict[str, Any]:
    """Every key of the block but backend_config_path, each with the dataclass' default."""
    kw: dict[str, Any] = {
        "enabled": r.bool("enabled", d.enabled),
        "backend_type": r.str("backend_type", d.backend_type, choices=_BACKENDS),
        "similarity_threshold": r.float("similarity_threshold", d.similarity_threshold, lo=-1.0, hi=1.0),
        "max_entries": r.int("max_entries", d.max_entries, minimum=1),
        "ttl_seconds": r.float("ttl_seconds", d.ttl_seconds, lo=0),
        "eviction_policy": r.str("eviction_policy", d.eviction_policy, choices=_EVICTION),
        "scope_headers": _scope_headers(r, d.scope_headers),
        "max_temperature": r.float("max_temperature", d.max_temperature, lo=0, hi=2),
    }
    for b in ("verifier", "exact_match", "coalesce", "cache_anonymous"):
        kw[b] = r.bool(b, getattr(d, b))
    for k in ("audit_share", "audit_agree", "audit_max_false_hits", "audit_raise_by"):
        kw[k] = r.float(k, getattr(d, k), lo=0, hi=1)
    kw["audit_min_samples"] = r.int("audit_min_samples", d.audit_min_samples, minimum=1)
    kw["verifier_threshold"] = r.float("verifier_threshold", d.verifier_threshold, lo=0, hi=1)
    kw["coalesce_timeout_s"] = r.float("coalesce_timeout_s", d.coalesce_timeout_s, lo=0)
    kw["max_response_bytes"] = r.int("max_response_bytes", d.max_response_bytes, minimum=1, maximum=65_000)
    kw["context_turns"] = r.int("context_turns", d.context_turns, minimum=1)
    kw["hot_entries"] = r.int("hot_entries", d.hot_entries, minimum=0)
    kw["ann_twin_rows"] = r.int("ann_twin_rows", d.ann_twin_rows, minimum=0)
    tiers = r.raw("max_tokens_tiers", d.max_tokens_tiers)
    if not isinstance(tiers, (list, tuple)) or not all(isinstance(x, int) and x > 0 for x in tiers):
        raise r.error(r.key("max_tokens_tiers"), "must be a list of positive integers")
    kw["max_tokens_tiers"] = tuple(sorted(tiers))
    return kw


def _scope_headers(r: Reader, default: tuple[str, ...]) -> tuple[str, ...]:
    """The tenant's headers: one name or a list, matched lower-case."""
    sh = r.raw("scope_headers", default)
    if isinstance(sh, str):
        sh = [sh]
    if not isinstance(sh, (list, tuple)) or not all(isinstance(h, str) and h for h in sh):
        raise r.error(r.key("scope_headers"), "must be a list of header names")
    return tuple(h.lower() for h in sh)
