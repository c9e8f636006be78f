"""Decide stage: the routing rules (`decision.decide`, pure) applied to this exchange, then live routing's steer
(live.py: another model when the chosen one is down, cooling or over its bounds)."""

from __future__ import annotations

import asyncio

from ..decision import Decision, decide as rules, user_text
from ..errors import Overloaded
from ..language import LanguageDetector
from ..live import LiveHooks
from ..openai import APIRequest
from ..signals.inputs import latest_user_text
from .contracts import SignalSource, SignalsLike
from .exchange import Exchange


async def language(ex: Exchange, request: APIRequest, detector: LanguageDetector) -> str | None:
    """The language signal for this request, computed once and in a worker thread (the detector is CPU work), and
    only when the config's rules read it and the client asked for an auto model (an explicit one is not routed)."""
    if not ex.config.rules.reads_language or not ex.config.is_auto(request.model):
        return None
    return (await asyncio.to_thread(detector.detect, user_text(request))).code


async def route_reading(ex: Exchange, request: APIRequest, signals: SignalsLike | None,
                        source: SignalSource | None) -> SignalsLike | None:
    """The custom routes' reading of a user turn with typos: the turn repaired against the examples' words
    (routes.Speller, in a worker thread) and read by the encoder once more; None when the config has no routes,
    the request is not routed, or the turn needed no repair (the signal pass's embedding is then the routes')."""
    routes = ex.thresholds.routes
    if routes is None or signals is None or source is None or not ex.config.is_auto(request.model):
        return None
    repaired = await asyncio.to_thread(routes.repair, user_turn(request))
    if repaired is None:
        return None
    try:
        return await source.analyze(repaired, ex.config.signals.inputs.max_tokens_read)
    except Overloaded:
        return None     # the request already has its signal pass: the routes read that one rather than fail it


def user_turn(request: APIRequest) -> str:
    """The latest user turn: the text whose windows give the routing embedding (its one home: signals/inputs)."""
    return latest_user_text(request.segments())


def run(ex: Exchange, request: APIRequest, signals: SignalsLike | None, language: str | None = None,
        route_signals: SignalsLike | None = None) -> Decision:
    """Raises APIError(404) for an unknown model."""
    ex.decision = rules(ex.config, request, signals, thresholds=ex.thresholds, language=language,
                        route_signals=route_signals)
    return ex.decision


def steer(ex: Exchange, decision: Decision, live: LiveHooks) -> tuple[Decision, dict[str, str]]:
    """live: the decision to forward (live.reroute: another candidate when the chosen model is not available; the
    rules stay pure, the live state is read here) and the route headers naming the next candidate for Envoy's last
    attempt (envoy.resilience.fallback). Counts the forwarded model in flight."""
    moved, headers = live.forward(ex, decision)
    ex.decision = moved
    return moved, headers
