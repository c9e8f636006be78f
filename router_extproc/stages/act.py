"""Act stage: answer from the router (a block, a cache hit, a refusal) or forward upstream with the decision."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import headers as H
from ..decision import Decision, rewrite_body
from ..openai import CHAT_PATH, RESPONSES_PATH, APIError, dump_body, responses_reasoning
from ..usage import UsageHooks
from . import reply
from .contracts import HitLike
from .exchange import Continue, Exchange, Respond
from .record import Recorder


def forward(ex: Exchange, body: dict[str, Any], decision: Decision, rec: Recorder,
            route_headers: Mapping[str, str] | None = None) -> Continue:
    """The request goes to the chosen model, its body rewritten for that model. `route_headers` (live: the next
    candidate, the trace's traceparent) go with it."""
    cfg = ex.config
    model = cfg.model(decision.model)
    assert model is not None
    new_body = rewrite_body(body, model, decision)
    UsageHooks.ask(ex, new_body, ex.path == CHAT_PATH)   # live: a stream reports its usage only when asked
    if ex.path == RESPONSES_PATH:
        new_body = responses_reasoning(new_body)
    ex.forwarded_at = time.perf_counter()
    rec.forwarded(ex)
    upstream = {cfg.route_header: model.name, **(route_headers or {})}
    if decision.rule is not None:   # the upstream (its logs, its own policies) sees which decision sent the request
        upstream[H.DECISION] = decision.rule
    return Continue(set_headers=upstream, body=dump_body(new_body), clear_route_cache=True)


def answer_hit(ex: Exchange, hit: HitLike, rec: Recorder) -> Respond:
    ex.cache_state = "hit"
    ex.store = False
    rec.log(ex, "cache_hit", similarity=round(hit.similarity, 4), exact=hit.exact)
    rec.finish(ex, "cache_hit")
    return reply.hit(ex, ex.request is not None and ex.request.stream, hit)


def block(ex: Exchange, d: Decision, rec: Recorder) -> Respond:
    assert d.blocked is not None
    rec.log(ex, "blocked", blocked=d.blocked)
    rec.finish(ex, f"blocked_{d.blocked}")
    return reply.blocked(ex, d)


def reject(ex: Exchange, err: APIError, rec: Recorder, headers: Mapping[str, str] | None = None) -> Respond:
    rec.rejected(ex, err)
    ex.finished = True
    return reply.error(err, headers)
