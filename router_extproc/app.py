"""Process lifecycle: build the engines from config, serve gRPC + HTTP health/metrics, reload, drain."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from http import HTTPStatus
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import logs
from .config import RouterConfig, load_config
from .errors import ConfigError
from .metrics import CacheMetricsAdapter, Metrics
from .pipeline import Router
from .server import build_server, install_signal_handlers, set_serving

log = logging.getLogger("router_extproc.app")


def build_signals(config: RouterConfig) -> Any:
    if not config.signals.any_enabled:
        return None
    model_dir = config.signals.model_dir
    if not model_dir.is_absolute():
        model_dir = Path.cwd() / model_dir
    if not (model_dir / "encoder.onnx").exists():
        raise ConfigError(
            f"{config.source}: signals.model_dir: no encoder.onnx in {model_dir}; run `make models` "
            "or switch all signals off"
        )
    from .signals import SignalEngine

    s = config.signals
    return SignalEngine(model_dir, device=s.device, max_batch_size=s.max_batch_size, max_wait_ms=s.max_wait_ms,
                        max_tokens=s.max_tokens, threads=s.threads, spin=s.spin, spin_after_run=s.spin_after_run,
                        max_queue=s.max_queue)


def build_cache(config: RouterConfig, signals: Any, metrics: Metrics) -> Any:
    sc = config.semantic_cache
    if sc is None or not sc.enabled:
        return None
    from .cache import SemanticCache

    verifier = None
    dimension = 384
    pair_encoder, pair_dim = None, None
    if signals is not None:
        dimension = signals.dimension
        candidate = Path(signals.model_dir) / "verifier.json" if hasattr(signals, "model_dir") else None
        verifier = candidate if candidate is not None and candidate.exists() else None
        if getattr(signals, "has_pair_features", False):
            pair_encoder, pair_dim = signals.pair_features, signals.pair_dim
    return SemanticCache.from_config(sc, dimension=dimension, verifier_path=verifier,
                                     metrics=CacheMetricsAdapter(metrics), pair_encoder=pair_encoder,
                                     pair_dim=pair_dim)


@dataclass
class Health:
    models_loaded: bool = False
    cache_ready: bool = False
    # the gRPC server accepts streams: until then Envoy's calls are refused (custom routes embed their examples
    # after the models load, which once left /readyz green while every request got a 500)
    serving: bool = False
    draining: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.models_loaded and self.cache_ready and self.serving and not self.draining


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str]]:
    line = await asyncio.wait_for(reader.readline(), 5)
    headers: dict[str, str] = {}
    while (h := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
        name, _, value = h.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
        if len(headers) > 100:
            break
    parts = line.decode("latin-1").split()
    return (parts[0] if parts else "GET"), (parts[1] if len(parts) > 1 else "/"), headers


@dataclass
class Admin:
    """What the admin endpoints act on; the cache is set once it is built (the ops server starts first)."""

    token: str | None = None
    cache: Any = None
    router: Any = None   # live: the Router, once built, for /live


async def _http_server(host: str, port: int, metrics: Metrics, health: Health,
                       admin: Admin | None = None) -> asyncio.AbstractServer:
    """/metrics, /healthz (process alive), /readyz (models loaded, cache answered or optional) and the cache's
    admin endpoints (cache/admin.py: loopback peers, or the admin token)."""
    from .cache.admin import PREFIX, handle_admin

    admin = admin or Admin()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, target, headers = await _read_request(reader)
            path = target.split("?", 1)[0]
            if path.startswith(PREFIX):
                peer = (writer.get_extra_info("peername") or ("",))[0]
                status, doc = await handle_admin(admin.cache, method, target, peer, headers, admin.token)
                ctype, body = "application/json", json.dumps(doc, default=str).encode()
            elif path == "/metrics":
                status, ctype, body = 200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)
            elif path == "/live":   # live: per-model state (live.py); `router-extproc status` reads it
                status, ctype = 200, "application/json"
                body = json.dumps(_live_doc(admin.router), indent=1).encode()
            elif path == "/healthz":
                status, ctype, body = 200, "text/plain", b"ok\n"
            elif path == "/readyz":
                ok = health.ready
                status, ctype = (200 if ok else 503), "text/plain"
                body = (b"ready\n" if ok else
                        f"not ready: models_loaded={health.models_loaded} cache_ready={health.cache_ready} "
                        f"serving={health.serving} draining={health.draining}\n".encode())
            else:
                status, ctype, body = 404, "text/plain", b"not found\n"
            reason = HTTPStatus(status).phrase
            writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {len(body)}\r\n"
                         "connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError, ValueError):  # ValueError: a line over the reader's limit
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def _live_doc(router: Any) -> dict[str, Any]:
    if router is None:
        return {"models": {}, "starting": True}
    cfg = router.config
    return {"selection": cfg.live.selection, "enabled": cfg.live.enabled,
            "models": router.live.snapshot(cfg.live, [m.name for m in cfg.models])}


class ConfigWatcher:
    """Reloads on SIGHUP or when the file changes. A bad new config is rejected and logged; the old one
    keeps serving. The swap is one reference assignment, so each request sees one config."""

    def __init__(self, path: Path, router: Router, metrics: Metrics, interval_s: float = 1.0) -> None:
        self.path = path
        self.router = router
        self.metrics = metrics
        self.interval_s = interval_s
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            st = os.stat(self.path)
            return (st.st_mtime, st.st_size)
        except OSError:
            return None

    def _load(self) -> tuple[RouterConfig, Any]:
        """The new config and its routes embedded (CPU-heavy with many examples: `areload` runs it in a thread)."""
        from .routes import for_config

        new = load_config(self.path)
        return new, for_config(new, self.router.signals, self.router.routes)

    async def areload(self) -> bool:
        return self.reload(await asyncio.get_running_loop().run_in_executor(None, self._try_load))

    def _try_load(self) -> Any:
        try:
            return self._load()
        except Exception as exc:  # noqa: BLE001 - reported by reload, on the loop
            return exc

    def reload(self, loaded: Any = None) -> bool:
        try:
            if loaded is None:
                loaded = self._load()
            if isinstance(loaded, BaseException):
                raise loaded
            new, routes = loaded
        except Exception as exc:  # noqa: BLE001 - whatever a bad file raises, the watcher and the old config live on
            self.metrics.config_reloads.labels("failure").inc()
            self.metrics.config_last_reload_success.set(0)
            error = str(exc) if isinstance(exc, ConfigError) else f"{self.path}: {type(exc).__name__}: {exc}"
            log.error("config reload rejected; keeping the running config", extra={"error": error[:500]})
            return False
        old = self.router.config
        for section in ("signals", "semantic_cache", "server"):
            if getattr(old, section) != getattr(new, section):
                log.warning("config reload: changes to this section need a restart", extra={"section": section})
        self.router.swap_config(new, routes)
        self.metrics.config_reloads.labels("success").inc()
        self.metrics.config_last_reload_success.set(1)
        log.info("config reloaded", extra={"path": str(self.path)})
        return True

    async def run(self, sighup: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.wait_for(sighup.wait(), self.interval_s)
                sighup.clear()
                self._stamp = self._file_stamp()
                await self.areload()
            except asyncio.TimeoutError:
                stamp = self._file_stamp()
                if stamp is not None and stamp != self._stamp:
                    self._stamp = stamp
                    await self.areload()
            except Exception:  # noqa: BLE001 - e.g. a swap that fails: the next change is still picked up
                self.metrics.config_reloads.labels("failure").inc()
                log.exception("config watcher: reload failed; still watching")


async def serve(config_path: str | Path, *, grpc_port: int | None = None, metrics_port: int | None = None,
                grpc_host: str | None = None) -> None:
    config_path = Path(config_path)
    config = load_config(config_path)
    logs.setup(config.logging.level)
    metrics = Metrics()
    health = Health()

    address = (f"{grpc_host or config.server.grpc_host}:"
               f"{grpc_port if grpc_port is not None else config.server.grpc_port}")
    from .cache.admin import admin_token

    admin = Admin(token=admin_token(config))
    http = await _http_server(config.server.metrics_host,
                              metrics_port if metrics_port is not None else config.server.metrics_port,
                              metrics, health, admin)
    signals = await asyncio.get_running_loop().run_in_executor(None, build_signals, config)
    health.models_loaded = True
    cache = build_cache(config, signals, metrics)
    if cache is not None:
        await cache.start()
    admin.cache = cache
    # An unavailable Milvus does not hold readiness: the router serves uncached and reconnects.
    health.cache_ready = True
    from .routes import for_config

    # custom routes: their examples embedded once per config load, off the event loop
    routes = await asyncio.get_running_loop().run_in_executor(None, for_config, config, signals)
    router = Router(config, signals=signals, cache=cache, metrics=metrics, routes=routes)
    from .cache.audit import build_audit

    # None unless semantic_cache.audit_share: a share of semantic hits is re-asked upstream (cache/audit.py)
    router.cache_stage.audit = build_audit(config, signals, metrics.registry)
    server, health_servicer, port = build_server(router, address,
                                                 max_concurrent_rpcs=config.server.max_concurrent_rpcs)
    await server.start()
    await set_serving(health_servicer, True)
    health.serving = True
    admin.router = router   # live: /live, and Envoy's replica health polled into the live state
    from .live import poll_envoy

    live_stop = asyncio.Event()
    live_poll = asyncio.create_task(poll_envoy(router.live, lambda: router.config, stop=live_stop))
    log.info("router-extproc serving", extra={
        "grpc": f"{grpc_host or config.server.grpc_host}:{port}", "models": [m.name for m in config.models],
        "signals": getattr(signals, "provider", None), "cache": type(cache).__name__ if cache else None})

    stop, sighup = asyncio.Event(), asyncio.Event()
    install_signal_handlers(stop, sighup)
    watcher = asyncio.create_task(ConfigWatcher(config_path, router, metrics).run(sighup))
    await stop.wait()

    # Drain: report NOT_SERVING so Envoy stops opening streams, let in-flight streams finish.
    log.info("draining", extra={"grace_period_s": config.server.grace_period_s})
    health.draining = True
    await set_serving(health_servicer, False)
    await server.stop(config.server.grace_period_s)
    watcher.cancel()
    live_stop.set()   # live:
    await live_poll
    if cache is not None:
        await cache.close()
    if signals is not None:
        await signals.close()
    http.close()
    log.info("stopped")
