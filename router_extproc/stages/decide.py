"""Decide stage: the routing rules (`decision.decide`, pure) applied to this exchange, then live routing's steer
(live.py: another model when the chosen one is down, cooling or over its bounds)."""

from __future__ import annotations

from ..decision import Decision, decide as rules
from ..live import LiveHooks
from ..openai import APIRequest
from .contracts import SignalsLike
from .exchange import Exchange


def run(ex: Exchange, request: APIRequest, signals: SignalsLike | None) -> Decision:
    """Raises APIError(404) for an unknown model."""
    ex.decision = rules(ex.config, request, signals, thresholds=ex.thresholds)
    return ex.decision


def steer(ex: Exchange, decision: Decision, live: LiveHooks) -> tuple[Decision, dict[str, str]]:
    """live: the decision to forward (live.reroute: another candidate when the chosen model is not available; the
    rules stay pure, the live state is read here) and the route headers naming the next candidate for Envoy's last
    attempt (envoy.resilience.fallback). Counts the forwarded model in flight."""
    moved, headers = live.forward(ex, decision)
    ex.decision = moved
    return moved, headers
