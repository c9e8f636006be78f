"""The Milvus backend (pymilvus ``MilvusClient``): embedded Milvus Lite (a file path) or a Milvus server (URL).

Every Milvus call runs on one dedicated worker thread, never on the event loop, and is bounded by the
configured timeout. A failure marks the backend unavailable; while unavailable every call fails fast (the
facade serves requests uncached) and a background task reconnects every ``reconnect_interval_s``.

Schema (created with its HNSW index if missing; ``scope`` is the partition key on a server):
``id`` INT64 primary, ``scope`` / ``filter_key`` / ``fingerprint`` VARCHAR(64), ``text`` VARCHAR(8192),
``embedding`` FLOAT_VECTOR(dim), ``response`` VARCHAR(65535) (completion JSON), ``created_at`` / ``expires_at``
DOUBLE (unix seconds); on a server also ``embedding_b64`` VARCHAR, the vector's float32 bytes in base64, which
searches read instead of the vector field (see ``COPY_SUFFIX``). Searches filter on scope, filter_key and
``expires_at > now`` and use the configured consistency level (Bounded by default; Strong is refused by the config
loader).

Milvus Lite scans unflushed rows, so Lite inserts are flushed once ``insert_batch_size`` rows are pending or
two seconds after the last insert. A server seals segments by its own policy (size and idle time) and builds
their HNSW index in the background; :meth:`MilvusBackend.seal` flushes and waits for that index after a bulk
load, and :meth:`MilvusBackend.bulk_insert` loads many rows at once (optionally building the index once, after the
load) and returns when they are searchable. Inserts run on their own worker thread, so a batch being written never
delays a search.

Size: :meth:`MilvusBackend.enforce_size` keeps the collection at ``max_entries`` by deleting the oldest rows
(``created_at``) with one filtered delete per pass, the cut-off found by bisecting ``count(*)`` queries.

Invalidation across replicas: a clear also writes ``(scope or "*", cleared_at)`` into the small control
collection ``<collection>_control``; every router polls it (:meth:`MilvusBackend.read_clears`) and drops what
its in-process tiers hold for that scope (see ``coherence.py``).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import logging
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from router_extproc.cache.base import Candidate, Entry
from router_extproc.cache.coherence import ALL_SCOPES
from router_extproc.config_cache import MilvusConfig
from router_extproc.errors import ConfigError

__all__ = ["MilvusBackend", "DimensionMismatch"]

log = logging.getLogger("router_extproc.cache.milvus")
_HEX = re.compile(r"^[0-9a-zA-Z_-]{1,64}$")
TEXT_MAX = 8192
RESPONSE_MAX = 65535
CONTROL_SUFFIX = "_control"
_FIELDS = ["id", "scope", "filter_key", "fingerprint", "text", "response", "created_at", "expires_at"]
# A server's collection also keeps each vector as base64 of its float32 bytes in a VARCHAR field, read back in
# place of the vector field: the verifier reads every candidate's vector, and Milvus 2.3 fetches a FLOAT_VECTOR
# output field from the HNSW index (a second, slower pass) while a VARCHAR comes from the scalar columns. Measured
# on 20,000 real rows, top-4, interleaved, shared cores: 3.22 ms p50 fetching the vector field, 2.41 ms fetching
# the copy (decoding included), 2.02 ms fetching neither. The copy is exact (the same float32 bytes), so the
# verifier's inputs do not change; it costs the server ~2 KB a row of memory.
COPY_SUFFIX = "_b64"
# rows a bulk request carries: ~36 MB with the copy, under the 64 MB a Milvus 2.3 server accepts in one gRPC message
# (a 40,000-row request, 146 MB, was refused: RESOURCE_EXHAUSTED), so larger batches are not an option
BULK_BATCH_ROWS = 10_000


def encode_vectors(m: np.ndarray) -> list[str]:
    """base64 of each row's little-endian float32 bytes. Rows whose byte length is a multiple of 3 (dimension
    a multiple of 3, as 384 is) are encoded in one call and cut, since base64 maps each 3 bytes to 4 characters."""
    m = np.ascontiguousarray(m, "<f4")
    row = m.shape[1] * 4
    if row % 3 == 0:
        s = base64.b64encode(m.tobytes()).decode("ascii")
        w = row // 3 * 4
        return [s[i * w:(i + 1) * w] for i in range(m.shape[0])]
    return [base64.b64encode(r.tobytes()).decode("ascii") for r in m]


def decode_vector(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), "<f4").astype(np.float32)


class DimensionMismatch(ConfigError):
    pass


class BackendUnavailable(RuntimeError):
    pass


def _clip_utf8(s: str, n: int) -> str:
    b = s.encode()
    return s if len(b) <= n else b[:n].decode("utf-8", errors="ignore")


def _q(s: str) -> str:
    if not _HEX.match(s):
        raise ValueError(f"unsafe key {s!r}")
    return f'"{s}"'


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def insert_request(collection: str, vector_field: str, dimension: int, entries: list[Entry],
                   copy_field: str | None = None) -> Any:
    """One column-based ``InsertRequest`` for a batch of entries (a server's bulk write path).

    Why by hand: pymilvus' row path walks every dict and turns each vector into a Python list of floats (0.16 s
    per 5 000 rows of 384-d, measured, more than the server spends on them). A ``FloatArray`` is a packed repeated
    float, whose wire form is the vector matrix's little-endian bytes: the vectors go in as one bytes parse
    (0.012 s per 5 000 rows) and the scalar columns as one list each."""
    from pymilvus import DataType
    from pymilvus.grpc_gen import milvus_pb2

    req = milvus_pb2.InsertRequest(collection_name=collection, num_rows=len(entries))

    def column(name: str, dtype: Any):
        fd = req.fields_data.add()
        fd.field_name, fd.type = name, dtype
        return fd

    column("id", DataType.INT64).scalars.long_data.data.extend([e.id for e in entries])
    column("scope", DataType.VARCHAR).scalars.string_data.data.extend([e.scope for e in entries])
    column("filter_key", DataType.VARCHAR).scalars.string_data.data.extend([e.filter_key for e in entries])
    column("fingerprint", DataType.VARCHAR).scalars.string_data.data.extend([e.fingerprint for e in entries])
    column("text", DataType.VARCHAR).scalars.string_data.data.extend([_clip_utf8(e.text, TEXT_MAX) for e in entries])
    vf = column(vector_field, DataType.FLOAT_VECTOR)
    vf.vectors.dim = dimension
    m = np.stack([np.asarray(e.embedding, np.float32).reshape(-1) for e in entries])
    if m.shape[1] != dimension:
        raise ValueError(f"embedding has dimension {m.shape[1]}, collection has {dimension}")
    raw = m.astype("<f4", copy=False).tobytes()
    vf.vectors.float_vector.MergeFromString(b"\x0a" + _varint(len(raw)) + raw)  # field 1 (data), length-delimited
    if copy_field:
        column(copy_field, DataType.VARCHAR).scalars.string_data.data.extend(encode_vectors(m))
    column("response", DataType.VARCHAR).scalars.string_data.data.extend([e.response for e in entries])
    column("created_at", DataType.DOUBLE).scalars.double_data.data.extend([float(e.created_at) for e in entries])
    column("expires_at", DataType.DOUBLE).scalars.double_data.data.extend([float(e.expires_at) for e in entries])
    return req


def client_args(cfg: MilvusConfig) -> tuple[str, dict[str, Any]]:
    """``MilvusClient(uri, **kw)`` for this config: credentials and TLS apply to a server, whatever selected it."""
    if cfg.is_lite:
        return str(Path(cfg.uri).expanduser()), {"timeout": cfg.timeout_s}
    kw: dict[str, Any] = {"timeout": cfg.timeout_s}
    if cfg.username:
        kw["user"], kw["password"] = cfg.username, cfg.password
    if cfg.token:
        kw["token"] = cfg.token
    if cfg.database and cfg.database != "default":
        kw["db_name"] = cfg.database
    if cfg.tls_enabled:
        kw["secure"] = True
        if cfg.tls_ca:
            kw["server_pem_path"] = kw["ca_pem_path"] = cfg.tls_ca
        if cfg.tls_cert:
            kw["client_pem_path"] = cfg.tls_cert
        if cfg.tls_key:
            kw["client_key_path"] = cfg.tls_key
    return cfg.uri, kw


class MilvusBackend:
    name = "milvus"

    def __init__(self, cfg: MilvusConfig, dimension: int, *, on_available: Callable[[bool], None] | None = None,
                 load_rows: int = 0) -> None:
        self.cfg = cfg
        self.dimension = int(dimension)
        self._on_available = on_available
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="milvus")
        # a server takes writes on a second connection thread: a search never queues behind a batch insert
        # (Milvus Lite runs in this process and keeps one thread for everything)
        self._write_executor = (self._executor if cfg.is_lite else
                                concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="milvus-write"))
        self._client: Any = None
        self._available = False
        self._closed = False
        self._reconnect_task: asyncio.Task | None = None
        self._connect_task: asyncio.Task | None = None
        self._pending_flush = 0
        self._last_insert = 0.0
        self.last_error: str | None = None
        self.fatal: Exception | None = None
        self.load_rows = load_rows
        self.loaded: list[Entry] = []  # rows read at connect, for warming the in-process hot index
        self.partition_key = not cfg.is_lite
        self.control = cfg.collection + CONTROL_SUFFIX
        # control polls run on their own thread: a Strong read waits ~200 ms for the time tick, never in front
        # of a search on the main worker
        self._ctl_executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="milvus-ctl")
        self._columnar: bool | None = None  # False once the column-based insert proved unavailable
        self._evict_floor = 0.0  # every row created before this was evicted already: the bisection starts here
        # the vector copy's field when the collection has one (created here on a server; older collections lack it)
        self.copy_field: str | None = None

    # ------------------------------------------------------------ plumbing
    @property
    def available(self) -> bool:
        return self._available and not self._closed

    def _set_available(self, ok: bool, why: str | None = None) -> None:
        if ok != self._available:
            if ok:
                log.info("milvus cache backend available (%s)", self.cfg.uri)
            else:
                log.warning("milvus cache backend unavailable (%s): %s; serving uncached, reconnecting",
                            self.cfg.uri, why)
        self._available = ok
        if why:
            self.last_error = why
        if self._on_available is not None:
            try:
                self._on_available(ok)
            except Exception:  # pragma: no cover - metrics must never break the cache
                pass

    async def _call(self, fn: Callable, *args, timeout: float | None = None, executor=None):
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(executor or self._executor, fn, *args)
        return await asyncio.wait_for(fut, timeout=timeout or self.cfg.timeout_s)

    def _fail(self, e: BaseException) -> None:
        self._set_available(False, f"{type(e).__name__}: {e}"[:300])
        self._ensure_reconnect()

    def _ensure_reconnect(self) -> None:
        if self._closed or self.fatal is not None:
            return
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        while not self._closed and not self._available:
            await asyncio.sleep(self.cfg.reconnect_interval_s)
            if self._closed:
                return
            try:
                await self._call(self._connect_sync, timeout=max(30.0, self.cfg.timeout_s * 3))
                self._set_available(True)
            except ConfigError as e:
                self.fatal = e
                log.error("%s", e)
                return
            except Exception as e:
                self.last_error = f"{type(e).__name__}: {e}"[:300]
                log.debug("milvus reconnect failed: %s", self.last_error)

    # ------------------------------------------------------------ sync side (worker thread)
    def _connect_sync(self) -> None:
        from pymilvus import MilvusClient

        cfg = self.cfg
        if self._client is not None:
            try:
                self._client.close()
            except Exception:
                pass
            self._client = None
        uri, kw = client_args(cfg)
        if cfg.is_lite:
            Path(uri).resolve().parent.mkdir(parents=True, exist_ok=True)
        client = MilvusClient(uri=uri, **kw)
        try:
            name = cfg.collection
            t = max(30.0, cfg.timeout_s)  # creating and loading a collection is slower than a search
            if cfg.drop_collection_on_startup and client.has_collection(name, timeout=t) and not getattr(
                    self, "_dropped", False):
                client.drop_collection(name, timeout=t)
                self._dropped = True
            if not client.has_collection(name, timeout=t):
                if not cfg.auto_create_collection:
                    raise ConfigError(f"{cfg.source}: collection.name: collection {name!r} does not exist and "
                                      "development.auto_create_collection is false")
                self._create_sync(client)
            self._check_dim_sync(client)
            client.load_collection(name, timeout=t)
            self._ensure_control_sync(client, t)
            if self.load_rows:
                self.loaded = self._load_rows_sync(client)
        except Exception:
            try:
                client.close()
            except Exception:
                pass
            raise
        self._client = client

    def _create_sync(self, client) -> None:
        from pymilvus import DataType

        cfg = self.cfg
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description=cfg.description)
        schema.add_field("id", DataType.INT64, is_primary=True)
        if self.partition_key:
            schema.add_field("scope", DataType.VARCHAR, max_length=64, is_partition_key=True)
        else:
            schema.add_field("scope", DataType.VARCHAR, max_length=64)
        schema.add_field("filter_key", DataType.VARCHAR, max_length=64)
        schema.add_field("fingerprint", DataType.VARCHAR, max_length=64)
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX)
        schema.add_field(cfg.vector_field, DataType.FLOAT_VECTOR, dim=self.dimension)
        if not cfg.is_lite:  # Lite reads vectors in this process: no second pass to save
            schema.add_field(cfg.vector_field + COPY_SUFFIX, DataType.VARCHAR,
                             max_length=-(-self.dimension * 4 // 3) * 4)
        schema.add_field("response", DataType.VARCHAR, max_length=RESPONSE_MAX)
        schema.add_field("created_at", DataType.DOUBLE)
        schema.add_field("expires_at", DataType.DOUBLE)
        idx = client.prepare_index_params()
        idx.add_index(field_name=cfg.vector_field, index_type=cfg.index_type, metric_type=cfg.metric_type,
                      params=dict(cfg.index_params))
        kw = {"num_partitions": 16} if self.partition_key else {}
        client.create_collection(cfg.collection, schema=schema, index_params=idx, timeout=max(30.0, cfg.timeout_s),
                                 consistency_level=cfg.consistency_level, **kw)
        log.info("created milvus collection %s (dim %d, %s %s)", cfg.collection, self.dimension, cfg.index_type,
                 cfg.metric_type)

    def _ensure_control_sync(self, client, t: float) -> None:
        """The control collection: one row per cleared scope (``*`` for all) with the time of its last clear.
        Milvus wants a vector field in every collection, so it carries a 2-d placeholder."""
        from pymilvus import DataType

        if not client.has_collection(self.control, timeout=t):
            schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                          description="router-extproc cache clears (invalidation stamps)")
            schema.add_field("scope", DataType.VARCHAR, max_length=64, is_primary=True)
            schema.add_field("cleared_at", DataType.DOUBLE)
            schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
            idx = client.prepare_index_params()
            idx.add_index(field_name="v", index_type="FLAT", metric_type="L2", params={})
            client.create_collection(self.control, schema=schema, index_params=idx, timeout=t,
                                     consistency_level="Strong")
        client.load_collection(self.control, timeout=t)

    def _check_dim_sync(self, client) -> None:
        desc = client.describe_collection(self.cfg.collection, timeout=self.cfg.timeout_s)
        names = {f.get("name") for f in desc.get("fields", [])}
        copy = self.cfg.vector_field + COPY_SUFFIX
        self.copy_field = copy if copy in names else None
        for f in desc.get("fields", []):
            if f.get("name") == self.cfg.vector_field:
                dim = int((f.get("params") or {}).get("dim", 0))
                if dim and dim != self.dimension:
                    raise DimensionMismatch(
                        f"{self.cfg.source}: collection.vector_field.dimension: existing collection "
                        f"{self.cfg.collection!r} has dimension {dim} but the embedding model gives "
                        f"{self.dimension}; drop the collection or configure another collection.name")
                return
        raise DimensionMismatch(f"{self.cfg.source}: collection.vector_field.name: existing collection "
                                f"{self.cfg.collection!r} has no vector field {self.cfg.vector_field!r}")

    def _output_fields(self) -> list[str]:
        return _FIELDS + [self.copy_field or self.cfg.vector_field]

    def _row_to_entry(self, r: dict) -> Entry:
        copy = r.get(self.copy_field) if self.copy_field else None
        vec = decode_vector(copy) if copy else np.asarray(r[self.cfg.vector_field], np.float32)
        return Entry(id=int(r["id"]), scope=r["scope"], filter_key=r["filter_key"], fingerprint=r["fingerprint"],
                     text=r.get("text", ""), embedding=vec,
                     response=r["response"], created_at=float(r["created_at"]), expires_at=float(r["expires_at"]))

    def _load_rows_sync(self, client) -> list[Entry]:
        rows = client.query(self.cfg.collection, filter=f"expires_at > {time.time():.3f}",
                            output_fields=self._output_fields(), limit=min(self.load_rows, 16384),
                            timeout=self.cfg.timeout_s * 3, consistency_level=self.cfg.consistency_level)
        return [self._row_to_entry(r) for r in rows]

    def _similarity(self, distance: float) -> float:
        if self.cfg.metric_type == "L2":
            return 1.0 - float(distance) / 2.0  # squared L2 of unit vectors
        return float(distance)

    def _search_sync(self, scope, filter_key, vector, top_k, now) -> list[Candidate]:
        c = self._client
        if c is None:
            raise BackendUnavailable("not connected")
        cfg = self.cfg
        expr = f"scope == {_q(scope)} and filter_key == {_q(filter_key)} and expires_at > {now:.3f}"
        res = c.search(cfg.collection, data=[np.asarray(vector, np.float32).reshape(-1).tolist()],
                       anns_field=cfg.vector_field, filter=expr, limit=top_k,
                       output_fields=self._output_fields(),
                       search_params={"metric_type": cfg.metric_type, "params": dict(cfg.search_params)},
                       timeout=cfg.search_timeout_s, consistency_level=cfg.consistency_level)
        out = []
        for hit in (res[0] if res else []):
            ent = dict(hit.get("entity") or {})
            ent.setdefault("id", hit.get("id"))
            out.append(Candidate(self._row_to_entry(ent), self._similarity(hit.get("distance", 0.0))))
        return out

    def _insert_sync(self, entries: list[Entry]) -> None:
        c = self._client
        if c is None:
            raise BackendUnavailable("not connected")
        if not self.cfg.is_lite and self._columnar is not False:
            try:
                self._insert_columns_sync(c, entries)
            except (AttributeError, ImportError, TypeError) as e:  # a pymilvus without these internals
                log.info("column-based insert unavailable (%s); inserting rows", e)
                self._columnar = False
            else:
                self._last_insert = time.monotonic()
                return
        def vec(v):  # a server takes numpy vectors as they are (27k vs 18.5k rows/s with lists, 20k-row load)
            a = np.asarray(v, np.float32).reshape(-1)
            return a.tolist() if self.cfg.is_lite else a

        rows = [{"id": e.id, "scope": e.scope, "filter_key": e.filter_key, "fingerprint": e.fingerprint,
                 "text": _clip_utf8(e.text, TEXT_MAX), self.cfg.vector_field: vec(e.embedding),
                 "response": e.response, "created_at": float(e.created_at), "expires_at": float(e.expires_at)}
                for e in entries]
        if self.copy_field:
            copies = encode_vectors(np.stack([np.asarray(e.embedding, np.float32).reshape(-1) for e in entries]))
            for r, c64 in zip(rows, copies):
                r[self.copy_field] = c64
        c.insert(self.cfg.collection, data=rows, timeout=self.cfg.timeout_s)
        self._pending_flush += len(rows)
        self._last_insert = time.monotonic()
        if self.cfg.is_lite and self._pending_flush >= self.cfg.insert_batch_size:
            self._flush_sync()

    def _insert_columns_sync(self, client, entries: list[Entry]) -> None:
        """A server's insert: one prepared column-based request (:func:`insert_request`), sent through the
        client's own connection (``batch_insert`` with ``insert_param``: its retries and the Session timestamp
        bookkeeping stay pymilvus'). Measured at 50k rows, 5 000 a batch, on the shared 2 cores: 14.3k rows/s
        with row dicts, 18.6-18.9k with columns; the client's share fell from 0.16 to 0.012 s a batch, the rest
        is the server's ingestion."""
        req = insert_request(self.cfg.collection, self.cfg.vector_field, self.dimension, entries, self.copy_field)
        # ``schema`` only spares batch_insert a describe_collection call: a prepared request carries its fields
        client._get_connection().batch_insert(self.cfg.collection, [], insert_param=req, schema={"fields": []},
                                              timeout=self.cfg.timeout_s)

    def _flush_sync(self) -> None:
        if self.cfg.is_lite and self._client is not None and self._pending_flush:
            self._client.flush(self.cfg.collection, timeout=self.cfg.timeout_s)
            self._pending_flush = 0

    def _delete_sync(self, expr: str) -> int:
        c = self._client
        if c is None:
            raise BackendUnavailable("not connected")
        before = self._count_sync()
        res = c.delete(self.cfg.collection, filter=expr, timeout=self.cfg.timeout_s)
        n = None
        if isinstance(res, dict):
            n = res.get("delete_count")
        if self.cfg.is_lite:
            self._pending_flush += 1
            self._flush_sync()
        if not n:
            n = max(0, before - self._count_sync())
        return int(n)

    def _count_sync(self) -> int:
        c = self._client
        if c is None:
            raise BackendUnavailable("not connected")
        res = c.query(self.cfg.collection, filter="", output_fields=["count(*)"], timeout=self.cfg.timeout_s,
                      consistency_level=self.cfg.consistency_level)
        return int(res[0]["count(*)"]) if res else 0

    def _count_where_sync(self, expr: str) -> int:
        res = self._client.query(self.cfg.collection, filter=expr, output_fields=["count(*)"],
                                 timeout=self.cfg.timeout_s, consistency_level=self.cfg.consistency_level)
        return int(res[0]["count(*)"]) if res else 0

    def _enforce_size_sync(self, max_entries: int, low_water: int, now: float) -> tuple[int, int]:
        """(rows before, rows deleted). Deletes the oldest rows down to about ``low_water`` in one filtered
        delete: the cut-off time is bisected with ``count(created_at < t)`` queries (no per-row ids travel)."""
        if self._client is None:
            raise BackendUnavailable("not connected")
        total = self._count_sync()
        if total <= max_entries:
            return total, 0
        excess = total - low_water
        slack = max(1, (max_entries - low_water) // 2)  # any cut-off deleting excess .. excess + slack rows will do
        lo, hi = self._evict_floor, now + 1.0
        cut = hi
        for _ in range(48):  # 2^-48 of the range: far below a millisecond
            mid = (lo + hi) / 2
            n = self._count_where_sync(f"created_at < {mid:.6f}")
            if n < excess:
                lo = mid
            else:
                hi = cut = mid
                if n <= excess + slack:
                    break
            if hi - lo < 1e-6:
                break
        res = self._client.delete(self.cfg.collection, filter=f"created_at < {cut:.6f}", timeout=self.cfg.timeout_s)
        if self.cfg.is_lite:
            self._pending_flush += 1
            self._flush_sync()
        self._evict_floor = max(self._evict_floor, lo)
        n = res.get("delete_count") if isinstance(res, dict) else None
        return total, int(n) if n else max(0, total - self._count_sync())

    def _mark_cleared_sync(self, scope: str, cleared_at: float) -> None:
        if self._client is None:
            raise BackendUnavailable("not connected")
        self._client.upsert(self.control, data=[{"scope": scope, "cleared_at": float(cleared_at), "v": [0.0, 0.0]}],
                            timeout=self.cfg.timeout_s)
        if self.cfg.is_lite:
            self._client.flush(self.control, timeout=self.cfg.timeout_s)

    def _read_clears_sync(self) -> dict[str, float]:
        c = self._client
        if c is None:
            raise BackendUnavailable("not connected")
        # Strong: a clear made through another router must be seen by the next poll, not a staleness bound later
        rows = c.query(self.control, filter="cleared_at > 0", output_fields=["scope", "cleared_at"], limit=16384,
                       timeout=self.cfg.timeout_s, consistency_level="Strong")
        return {r["scope"]: float(r["cleared_at"]) for r in rows}

    def _close_sync(self) -> None:
        try:
            self._flush_sync()
        finally:
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None

    # ------------------------------------------------------------ async API
    async def start(self, startup_wait_s: float = 10.0) -> None:
        """Connect. Waits up to ``startup_wait_s``; a slower connect finishes in the background. A dimension
        mismatch raises; any other failure leaves the backend unavailable and reconnecting."""
        self._connect_task = asyncio.get_running_loop().create_task(self._connect_once())
        await asyncio.wait({self._connect_task}, timeout=startup_wait_s)
        if self._connect_task.done() and self._connect_task.exception() is not None:
            raise self._connect_task.exception()
        if not self._connect_task.done():
            self.last_error = "still connecting"
            log.warning("milvus cache backend %s still connecting after %.0fs; serving uncached meanwhile",
                        self.cfg.uri, startup_wait_s)

    async def _connect_once(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._connect_sync)
            if not self._closed:
                self._set_available(True)
        except ConfigError as e:
            self.fatal = e
            self._set_available(False, str(e))
            log.error("%s", e)
            raise
        except Exception as e:
            if not self._closed:
                self._fail(e)

    async def close(self) -> None:
        self._closed = True
        for task in (self._reconnect_task, self._connect_task):
            if task is not None and not task.done():
                task.cancel()
        try:
            if self._client is not None:
                await self._call(self._close_sync, timeout=self.cfg.timeout_s * 2)
        except Exception as e:  # pragma: no cover
            log.warning("milvus close: %s", e)
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._ctl_executor.shutdown(wait=False, cancel_futures=True)
        if self._write_executor is not self._executor:
            self._write_executor.shutdown(wait=False, cancel_futures=True)

    async def _guard(self, fn, *args, timeout=None, executor=None):
        if not self.available:
            raise BackendUnavailable(self.last_error or "unavailable")
        try:
            return await self._call(fn, *args, timeout=timeout, executor=executor)
        except (ValueError, TypeError):
            raise
        except Exception as e:
            self._fail(e)
            raise

    async def search(self, scope, filter_key, vector, *, top_k, min_similarity, now) -> list[Candidate]:
        # On the request path: a slow Milvus is given up on in time (and marked unavailable until it reconnects),
        # so the request goes upstream uncached well within Envoy's message_timeout.
        cands = await self._guard(self._search_sync, scope, filter_key, vector, top_k, now,
                                  timeout=self.cfg.search_timeout_s)
        return [c for c in cands if c.similarity >= min_similarity]

    async def insert(self, entries: list[Entry]) -> None:
        if entries:
            await self._guard(self._insert_sync, entries, executor=self._write_executor)

    async def flush_if_idle(self, idle_s: float = 2.0) -> None:
        if self.cfg.is_lite and self._pending_flush and time.monotonic() - self._last_insert >= idle_s:
            await self._guard(self._flush_sync)

    async def delete_expired(self, now: float) -> int:
        return await self._guard(self._delete_sync, f"expires_at <= {now:.3f}")

    async def clear(self, scope: str | None = None, *, cleared_at: float | None = None) -> int:
        """Delete the rows of ``scope`` (or all) and stamp the clear in the control collection, so every other
        router drops its in-process copies at its next poll. The stamp goes first: from then on no router serves a
        row created before it, even from a search that still sees the rows being deleted."""
        expr = f"scope == {_q(scope)}" if scope is not None else "id >= 0"
        await self._guard(self._mark_cleared_sync, scope or ALL_SCOPES, time.time() if cleared_at is None
                          else cleared_at)
        return await self._guard(self._delete_sync, expr)

    async def seal(self, timeout_s: float = 600.0) -> dict:
        """After a bulk load: flush (seal the growing segments) and wait until the HNSW index covers every row, so
        searches read indexed segments only. Returns the index description."""
        return await self._guard(self._seal_sync, timeout_s, timeout=timeout_s + 10, executor=self._write_executor)

    def _seal_sync(self, timeout_s: float) -> dict:
        c = self._client
        if c is None:
            raise BackendUnavailable("not connected")
        deadline = time.monotonic() + timeout_s  # the flush counts: seal() gives up on the whole at timeout_s + 10
        c.flush(self.cfg.collection, timeout=timeout_s)
        if self.cfg.is_lite:
            return {}
        return self._wait_index_sync(deadline)

    def _wait_index_sync(self, deadline: float) -> dict:
        c = self._client
        while True:
            names = c.list_indexes(self.cfg.collection, timeout=self.cfg.timeout_s)
            desc = c.describe_index(self.cfg.collection, names[0], timeout=self.cfg.timeout_s) if names else {}
            if not desc or int(desc.get("pending_index_rows", 0)) == 0 or time.monotonic() > deadline:
                return dict(desc)
            time.sleep(0.5)

    async def bulk_insert(self, entries: Sequence[Entry], *, batch_rows: int = BULK_BATCH_ROWS,
                          index_after: bool = False, timeout_s: float = 3600.0) -> dict[str, float]:
        """Load many entries at once (an import, a benchmark's fill) and return when they are searchable: flushed,
        and on a server indexed. Returns the seconds spent inserting, flushing and indexing.

        On a server, batches of ``batch_rows`` go out as prepared column requests, the next one built while the
        previous is in flight. ``index_after``: the collection is released and its vector index dropped for the
        load, then the index is built once over the sealed segments and the collection loaded again. Measured on
        100,000 rows, shared cores: 10.2k rows/s inserted instead of 5.9k, since the server no longer indexes each
        segment it seals while it ingests the next ones (docs/cache.md, Scale). While it runs the collection is not
        searchable, by this router or any other: for a collection no router serves yet, never on a live one."""
        if not entries:
            return {"rows": 0, "insert_s": 0.0, "flush_s": 0.0, "index_s": 0.0}
        return await self._guard(self._bulk_sync, list(entries), int(batch_rows), bool(index_after), timeout_s,
                                 timeout=timeout_s + 10, executor=self._write_executor)

    def _bulk_sync(self, entries: list[Entry], batch_rows: int, index_after: bool, timeout_s: float) -> dict:
        c = self._client
        if c is None:
            raise BackendUnavailable("not connected")
        cfg, name = self.cfg, self.cfg.collection
        deadline = time.monotonic() + timeout_s
        t0 = time.perf_counter()
        batches = [entries[s:s + batch_rows] for s in range(0, len(entries), max(1, batch_rows))]
        if cfg.is_lite or self._columnar is False:
            for b in batches:
                self._insert_sync(b)
            t1 = time.perf_counter()
            self._seal_sync(max(1.0, deadline - time.monotonic()))
            return {"rows": len(entries), "insert_s": t1 - t0, "flush_s": time.perf_counter() - t1, "index_s": 0.0}
        dropped = False
        if index_after:
            c.release_collection(name, timeout=timeout_s)
            for idx in c.list_indexes(name, field_name=cfg.vector_field, timeout=cfg.timeout_s):
                c.drop_index(name, idx, timeout=timeout_s)
            dropped = True
        try:
            prep = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="milvus-bulk")
            try:
                def build(b: list[Entry]) -> Any:
                    return insert_request(name, cfg.vector_field, self.dimension, b, self.copy_field)

                nxt = prep.submit(build, batches[0])
                for k in range(len(batches)):
                    req = nxt.result()
                    if k + 1 < len(batches):
                        nxt = prep.submit(build, batches[k + 1])
                    c._get_connection().batch_insert(name, [], insert_param=req, schema={"fields": []},
                                                     timeout=cfg.timeout_s)
            finally:
                prep.shutdown(wait=False, cancel_futures=True)
            self._last_insert = time.monotonic()
            t1 = time.perf_counter()
            c.flush(name, timeout=max(1.0, deadline - time.monotonic()))
            t2 = time.perf_counter()
        finally:
            if dropped:
                idx = c.prepare_index_params()
                idx.add_index(field_name=cfg.vector_field, index_type=cfg.index_type, metric_type=cfg.metric_type,
                              params=dict(cfg.index_params))
                c.create_index(name, idx, timeout=max(1.0, deadline - time.monotonic()))
                c.load_collection(name, timeout=max(1.0, deadline - time.monotonic()))
        self._wait_index_sync(deadline)
        return {"rows": len(entries), "insert_s": t1 - t0, "flush_s": t2 - t1, "index_s": time.perf_counter() - t2}

    async def read_clears(self) -> dict[str, float]:
        """Every clear stamped so far: scope (``*`` for all) -> time of its latest clear."""
        if not self.available:
            raise BackendUnavailable(self.last_error or "unavailable")
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._ctl_executor, self._read_clears_sync)
        return await asyncio.wait_for(fut, timeout=self.cfg.timeout_s)

    async def enforce_size(self, max_entries: int, low_water: int | None = None) -> tuple[int, int]:
        """Keep at most ``max_entries`` rows: when over, delete the oldest down to ``low_water`` (default 95 %)
        in one batch. Returns (rows before, rows deleted)."""
        low = int(max_entries * 0.95) if low_water is None else int(low_water)
        return await self._guard(self._enforce_size_sync, int(max_entries), min(low, int(max_entries)), time.time(),
                                 timeout=max(30.0, self.cfg.timeout_s * 6))

    async def count(self) -> int:
        return await self._guard(self._count_sync)
