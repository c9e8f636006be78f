"""Decide stage: the routing rules (`decision.decide`, pure) applied to this exchange."""

from __future__ import annotations

from ..decision import Decision, decide as rules
from ..openai import APIRequest
from .contracts import SignalSource, SignalsLike
from .exchange import Exchange


def run(ex: Exchange, request: APIRequest, signals: SignalsLike | None, jailbreak_threshold: float) -> Decision:
    """Raises APIError(404) for an unknown model."""
    ex.decision = rules(ex.config, request, signals, jailbreak_threshold=jailbreak_threshold)
    return ex.decision


def model_jailbreak_threshold(source: SignalSource | None) -> float:
    # The threshold chosen on the model's calibration split ships in labels.json.
    labels = getattr(source, "labels", None) or {}
    return float(labels.get("thresholds", {}).get("jailbreak", 0.5))
