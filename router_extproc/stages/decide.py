"""Decide stage: the routing rules (`decision.decide`, pure) applied to this exchange, then live routing's steer
(live.py: another model when the chosen one is down, cooling or over its bounds)."""

from __future__ import annotations

import asyncio

from ..decision import Decision, decide as rules, user_text
from ..errors import Overloaded
from ..language import Language, LanguageDetector
from ..live import LiveHooks
from ..openai import APIRequest
from ..signals.inputs import latest_user_text
from .contracts import SignalSource, SignalsLike
from .exchange import Exchange


async def language(ex: Exchange, request: APIRequest, detector: LanguageDetector) -> Language | None:
    """The language signal for this request, computed once and in a worker thread (the detector is CPU work), and
    only when the config's rules or its custom routes read it (routes.py: a route matches the languages of its
    examples) and the client asked for an auto model (an explicit one is not routed)."""
    routes = ex.thresholds.routes
    reads = ex.config.rules.reads_language or (routes is not None and routes.reads_language)
    if not reads or not ex.config.is_auto(request.model):
        return None
    return await asyncio.to_thread(detector.detect, user_text(request))


async def route_reading(ex: Exchange, request: APIRequest, signals: SignalsLike | None,
                        source: SignalSource | None, language: Language | None = None) -> SignalsLike | None:
    """The custom routes' reading of a user turn with typos, or in a language the routes keep out: the turn
    repaired against the examples' words (routes.Speller) or glossed in English (gloss.py), in a worker thread,
    and read by the encoder once more; None when the config has no routes, the request is not routed, or the turn
    needed neither (the signal pass's embedding is then the routes'). `language`: the language signal's reading."""
    routes = ex.thresholds.routes
    if routes is None or signals is None or source is None or not ex.config.is_auto(request.model):
        return None
    repaired = await asyncio.to_thread(routes.repair, user_turn(request), language)
    if repaired is None:
        return None
    try:
        return await source.analyze(repaired, ex.config.signals.inputs.max_tokens_read)
    except Overloaded:
        return None     # the request already has its signal pass: the routes read that one rather than fail it


def user_turn(request: APIRequest) -> str:
    """The latest user turn: the text whose windows give the routing embedding (its one home: signals/inputs)."""
    return latest_user_text(request.segments())


def run(ex: Exchange, request: APIRequest, signals: SignalsLike | None, language: Language | None = None,
        route_signals: SignalsLike | None = None) -> Decision:
    """Raises APIError(404) for an unknown model. `language`: the rules read its code (when they read it), the
    custom routes the whole reading."""
    code = language.code if language is not None and ex.config.rules.reads_language else None
    ex.decision = rules(ex.config, request, signals, thresholds=ex.thresholds, language=code,
                        route_signals=route_signals, route_language=language)
    return ex.decision


def steer(ex: Exchange, decision: Decision, live: LiveHooks) -> tuple[Decision, dict[str, str]]:
    """live: the decision to forward (live.reroute: another candidate when the chosen model is not available; the
    rules stay pure, the live state is read here) and the route headers naming the next candidate for Envoy's last
    attempt (envoy.resilience.fallback). Counts the forwarded model in flight."""
    moved, headers = live.forward(ex, decision)
    ex.decision = moved
    return moved, headers
