"""Parse stage: what the request headers allow, and the body as a typed API request.

Raises `APIError` for a request the router refuses; the orchestrator turns it into a reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from .. import headers as H
from ..openai import (MODELS_PATH, PARSERS, ROUTED_PATHS, APIError, APIRequest, canonical_path, looks_like_api)
from . import reply
from .exchange import Continue, Exchange, Respond

PARSE_INLINE_BYTES = 256 * 1024  # bodies from this size are parsed, and their cache key built, on a worker thread


def request_headers(ex: Exchange, headers: Mapping[str, str], end_of_stream: bool) -> Respond | Continue:
    ex.headers = dict(headers)
    if H.NEXT in headers:
        # live: Envoy's fallback attempt, on its internal listener (envoy_config.HOP). Only the router sets this
        # header: Envoy strips every x-router-* header of a client's request before routing; the internal listener
        # routes on it, so it stays
        ex.hop, ex.chat = headers[H.NEXT], True
        return Continue()
    ex.method = headers.get(":method", "GET").upper()
    ex.path = canonical_path(headers.get(":path", "/"))
    ex.request_id = headers.get(H.REQUEST_ID, "")
    cfg = ex.config
    strip = tuple(H.spoofed(headers.keys(), cfg.route_header))
    if ex.path == MODELS_PATH and ex.method == "GET":
        return reply.models(cfg)
    if ex.method == "OPTIONS":
        return Continue(remove_headers=strip, skip_body=True)   # a CORS preflight: it carries no prompt
    if ex.path in ROUTED_PATHS and ex.method != "POST":
        raise APIError(405, f"{ex.method} {ex.path} is not supported: use POST", code="method_not_allowed")
    if ex.path not in ROUTED_PATHS:
        if looks_like_api(ex.path) and not cfg.envoy.passes_through(ex.path):
            raise APIError(404, f"The router does not serve {ex.method} {ex.path}", code="unknown_url")
        return Continue(remove_headers=strip, skip_body=True)
    ex.chat = True
    if end_of_stream:
        raise APIError(400, "Request body is required", code="missing_body")
    length = headers.get("content-length", "")
    # isascii: str.isdigit() is true for "²", which int() refuses; 16+ digits is over any limit (and int()
    # refuses more than 4,300).
    if length.isascii() and length.isdigit() and (len(length) > 15 or int(length) > cfg.server.max_body_bytes):
        raise too_large(cfg.server.max_body_bytes)
    raw_path, sep, query = headers.get(":path", "/").partition("?")
    # Another spelling of a routed path is guarded like it, and sent upstream as the path the server serves.
    fixed = {":path": ex.path + sep + query} if raw_path != ex.path else {}
    return Continue(set_headers=fixed, remove_headers=strip)


async def request_body(ex: Exchange, body: bytes) -> APIRequest:
    limit = ex.config.server.max_body_bytes
    if len(body) > limit:
        raise too_large(limit)
    parse = PARSERS[ex.path]
    ex.body_bytes = len(body)
    if len(body) < PARSE_INLINE_BYTES:
        return parse(body)
    # A multi-megabyte body takes tens of ms to decode: keep the event loop (other streams, health) moving.
    return await asyncio.get_running_loop().run_in_executor(None, parse, body)


def has_text(request: APIRequest) -> bool:
    """A request without text (only previous_response_id, an empty turn) gives the guards nothing to judge."""
    return any(s.text.strip() for s in request.segments())


def too_large(limit: int) -> APIError:
    return APIError(413, f"Request body exceeds the router's limit of {limit} bytes", code="request_too_large")
