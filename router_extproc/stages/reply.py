"""Every answer the router gives itself: errors, blocks, cache hits (JSON and SSE), the models list, and the
decision headers that also go on forwarded answers. A new reply kind is a new function here.

Pure builders: no metrics, no logging, no change to the exchange (record.py and act.py do those).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .. import headers as H
from ..cache.replay import render_sse
from ..config import RouterConfig
from ..decision import Decision
from ..openai import CHAT_PATH, APIError, completion, error_body, models_list, restamped
from .contracts import HitLike
from .exchange import Exchange, Respond

JSON = "application/json"
SSE = "text/event-stream"


def decision_headers(ex: Exchange) -> dict[str, str]:
    d = ex.decision
    out = {H.CACHE: ex.cache_state}
    if d is None:
        return out
    out[H.MODEL] = d.model
    if d.category is not None:
        out[H.CATEGORY] = d.category
    if d.confidence is not None:
        out[H.CONFIDENCE] = f"{d.confidence:.3f}"
    if d.complexity is not None:
        out[H.COMPLEXITY] = d.complexity
    out[H.REASONING] = "on" if d.reasoning else "off"
    if d.pii_types:
        out[H.PII] = ",".join(sorted(d.pii_types))
    if ex.redaction is not None and ex.redaction.counts:
        out[H.PII_REDACTED] = ",".join(sorted(ex.redaction.counts))
    if d.blocked:
        out[H.BLOCKED] = d.blocked
    if d.injection:
        out[H.INJECTION] = d.injection
    if d.rule is not None:
        out.update(d.headers)   # config_rules keeps these out of x-router-*, so they cannot fake the router's
        out[H.DECISION] = d.rule
        if ex.config.decisions is not None and ex.config.decisions.debug_header:
            out[H.DECISION_MATCHED] = ",".join(d.matched)
    if ex.fallback:
        out[H.FALLBACK] = ex.fallback   # live: live routing moved the request (live.py)
    return out


def models(cfg: RouterConfig) -> Respond:
    owners = [(m.name, "router-extproc") for m in cfg.models]
    owners += [(a, "router-extproc") for a in cfg.auto_model_names]
    return Respond(200, models_list(owners), {"content-type": JSON}, "models list")


def error(err: APIError, headers: Mapping[str, str] | None = None) -> Respond:
    return Respond(err.status, err.body(), {"content-type": JSON, H.CACHE: "bypass", **(headers or {})},
                   f"error {err.code}")


def overloaded_error() -> APIError:
    return APIError(503, "The router is overloaded: retry shortly", type="server_error", code="router_overloaded")


def internal_error() -> APIError:
    return APIError(500, "The router failed on this request", type="server_error", code="router_internal_error")


def _block_message(d: Decision) -> str:
    if d.blocked == "policy" and d.block_message is not None:
        return d.block_message
    if d.blocked == "jailbreak":
        return "The request was blocked: it looks like a jailbreak or prompt-injection attempt."
    if d.blocked == "injection":
        return ("The request was blocked: a tool result or document in it carries instructions that look like "
                "a prompt-injection attempt.")
    return (f"The request was blocked: it contains personal data ({', '.join(sorted(d.pii_types))}) "
            "that no eligible model may receive.")


def blocked(ex: Exchange, d: Decision) -> Respond:
    assert d.blocked is not None
    hdrs = decision_headers(ex)
    message = _block_message(d)
    details = f"blocked {d.blocked}"
    # A blocked legacy-completions or Responses request gets the error form: its API has no chat completion.
    if ex.config.guards.block_response == "completion" and ex.path == CHAT_PATH:
        comp = completion(d.model, message, finish_reason="content_filter")
        if ex.request is not None and ex.request.stream:
            return Respond(200, render_sse(comp), {**hdrs, "content-type": SSE}, details)
        return Respond(200, json.dumps(comp).encode(), {**hdrs, "content-type": JSON}, details)
    code = "blocked_by_policy" if d.blocked == "policy" else f"{d.blocked}_detected"
    body = error_body(message, type=d.blocked, code=code)
    return Respond(403, body, {**hdrs, "content-type": JSON}, details)


def hit(ex: Exchange, stream: bool, found: HitLike) -> Respond:
    """A cached completion under a fresh id and time, as JSON or as the SSE stream the client asked for."""
    comp = restamped(found.completion)
    hdrs = {**decision_headers(ex), H.CACHE: "hit"}
    if stream:
        return Respond(200, render_sse(comp), {**hdrs, "content-type": SSE, "cache-control": "no-cache"},
                       "cache hit")
    return Respond(200, json.dumps(comp, ensure_ascii=False).encode(), {**hdrs, "content-type": JSON},
                   "cache hit")
