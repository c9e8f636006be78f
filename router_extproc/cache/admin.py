"""Erasure and inspection: ``router-extproc cache stats|clear [--scope S] [--header 'Name: value' ...]``.

The CLI talks to the running routers first: each worker's ops HTTP server (``server.metrics_listen``, worker i on
port + i) serves ``GET /admin/cache/stats`` and ``POST /admin/cache/clear?scope=<id>``, so a clear reaches every
tier a router holds (the in-process exact and hot tiers, queued inserts) and the backend behind it. Only when no
router answers does the CLI open the backend itself (Milvus Lite allows one process per database file, so this is
also the only way that works while a router runs on Lite).

Who may call the admin endpoints: with a token (env ``ROUTER_EXTPROC_ADMIN_TOKEN``, or the file named by
``server.admin_token_file``) every call must carry ``Authorization: Bearer <token>``; without one, only
loopback peers are served. The CLI sends the same token.

The scope to clear: ``--scope`` is a scope id as stored (32 hex characters, or ``anon``) or the raw value of the
first scope header (e.g. ``"Bearer sk-..."``); ``--header 'x-api-key: k'`` (repeatable) gives the tenant's headers
exactly as a request carries them, for configs with several scope headers. Either way the id is computed by
:func:`~router_extproc.cache.keys.scope_of`, the router's own function.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from router_extproc.cache.keys import scope_of
from router_extproc.config_cache import SemanticCacheConfig
from router_extproc.errors import ConfigError

__all__ = ["resolve_scope", "cache_stats", "cache_clear", "admin_token", "handle_admin", "run_admin"]

TOKEN_ENV = "ROUTER_EXTPROC_ADMIN_TOKEN"
PREFIX = "/admin/cache/"
_SCOPE_ID = re.compile(r"^(anon|[0-9a-f]{32})$")


def resolve_scope(value: str | None, cfg: SemanticCacheConfig, headers: Sequence[str] = ()) -> str | None:
    """The scope id for ``--scope`` (an id or the first scope header's raw value) or ``--header`` lines."""
    if headers:
        pairs = [h.split(":", 1) for h in headers]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("--header must look like 'Name: value'")
        return scope_of({k.strip().lower(): v.strip() for k, v in pairs}, cfg.scope_headers)
    if value is None:
        return None
    if _SCOPE_ID.match(value):
        return value
    return scope_of({cfg.scope_headers[0]: value}, cfg.scope_headers)


def admin_token(config: Any) -> str | None:
    """The admin token: env ROUTER_EXTPROC_ADMIN_TOKEN, else the file ``server.admin_token_file`` names."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    token_file = config.server.admin_token_file
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{config.source}: server.admin_token_file: cannot read {token_file}: {e}") from None
    return token or None


def _allowed(peer: str, headers: Mapping[str, str], token: str | None) -> bool:
    if token is not None:
        given = headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())
    try:
        return ipaddress.ip_address(peer.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


async def handle_admin(cache: Any, method: str, target: str, peer: str, headers: Mapping[str, str],
                       token: str | None) -> tuple[int, dict]:
    """One admin request of the ops HTTP server: (status, JSON body)."""
    if not _allowed(peer, headers, token):
        return 403, {"error": "admin endpoints need a loopback peer or the admin token"}
    url = urllib.parse.urlsplit(target)
    action = url.path.removeprefix(PREFIX)
    if cache is None:
        return 404, {"error": "the semantic cache is disabled"}
    if action == "stats" and method == "GET":
        return 200, await cache.stats()
    if action == "clear" and method == "POST":
        scope = urllib.parse.parse_qs(url.query).get("scope", [None])[0]
        if scope is not None and not _SCOPE_ID.match(scope):
            return 400, {"error": "scope must be a scope id (32 hex characters or anon)"}
        return 200, {"cleared": await cache.clear(scope), "scope": scope}
    return 404, {"error": f"unknown admin request {method} {url.path}"}


# ---------------------------------------------------------------- the CLI side

def _call_router(base: str, action: str, scope: str | None, token: str | None) -> dict:
    query = f"?{urllib.parse.urlencode({'scope': scope})}" if scope else ""
    req = urllib.request.Request(f"{base}{PREFIX}{action}{query}", method="GET" if action == "stats" else "POST",
                                 headers={"authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = json.loads(e.read() or b"{}")
        return {"status": e.code, "error": body.get("error", e.reason)}


def _router_bases(config: Any) -> list[str]:
    s = config.server
    host = "127.0.0.1" if s.metrics_host in ("0.0.0.0", "::", "") else s.metrics_host
    host = f"[{host}]" if ":" in host else host
    return [f"http://{host}:{s.metrics_port + i}" for i in range(s.workers)]


def _dimension(config: Any) -> int:
    """The embedding width the router would give the backend (a Milvus collection is checked against it)."""
    try:
        labels = json.loads((Path(config.signals.model_dir) / "labels.json").read_text())
        return int(labels.get("dimension", 384))
    except (OSError, ValueError):
        return 384


def run_admin(config: Any, action: str, *, scope: str | None = None, headers: Sequence[str] = ()) -> dict:
    """``cache stats|clear`` for the CLI: through every running router worker, else on the backend directly."""
    cfg: SemanticCacheConfig = config.semantic_cache
    scope_id = resolve_scope(scope, cfg, headers) if action == "clear" else None
    token = admin_token(config)
    routers: dict[str, dict] = {}
    for base in _router_bases(config):
        try:
            routers[base] = _call_router(base, action, scope_id, token)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            continue  # not running (or another worker count): the others, or the backend, answer
    if routers:
        return {"via": "router", "scope": scope_id, "routers": routers}
    dimension = _dimension(config)
    if action == "stats":
        return {"via": "backend", **asyncio.run(cache_stats(cfg, dimension=dimension))}
    return {"via": "backend", "scope": scope_id,
            "cleared": asyncio.run(cache_clear(cfg, scope_id, dimension=dimension))}


async def _with_cache(cfg: SemanticCacheConfig, dimension: int, fn):
    from router_extproc.cache.service import SemanticCache

    cache = SemanticCache.from_config(cfg, dimension=dimension, verifier_path=None)
    await cache.start()
    try:
        return await fn(cache)
    finally:
        await cache.close()


async def cache_stats(cfg: SemanticCacheConfig, *, dimension: int = 384) -> dict:
    return await _with_cache(cfg, dimension, lambda c: c.stats())


async def cache_clear(cfg: SemanticCacheConfig, scope: str | None = None, *, dimension: int = 384) -> int:
    """Clear ``scope`` (an id, or a raw first-header value) or everything, on the backend itself."""
    s = resolve_scope(scope, cfg)
    return await _with_cache(cfg, dimension, lambda c: c.clear(s))
