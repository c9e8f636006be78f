"""Decide stage: the routing rules (`decision.decide`, pure) applied to this exchange."""

from __future__ import annotations

from ..decision import Decision, decide as rules
from ..openai import APIRequest
from .contracts import SignalsLike
from .exchange import Exchange


def run(ex: Exchange, request: APIRequest, signals: SignalsLike | None) -> Decision:
    """Raises APIError(404) for an unknown model."""
    ex.decision = rules(ex.config, request, signals, thresholds=ex.thresholds)
    return ex.decision
