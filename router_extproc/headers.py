"""Header names the router owns, and the rule that clients may not send them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

ROUTER_PREFIX = "x-router-"
MODEL = "x-router-model"
CACHE = "x-router-cache"
CATEGORY = "x-router-category"
CONFIDENCE = "x-router-confidence"
COMPLEXITY = "x-router-complexity"
REASONING = "x-router-reasoning"
PII = "x-router-pii"                    # detected PII types (never values)
PII_REDACTED = "x-router-pii-redacted"  # the types replaced by placeholders before forwarding
BLOCKED = "x-router-blocked"
INJECTION = "x-router-injection"   # flagged | blocked | routed (decision.py)
DECISION = "x-router-decision"     # the operator's decision (rules.py) that routed the request
DECISION_MATCHED = "x-router-decision-matched"   # every rule that matched; only with decisions.debug_header
FALLBACK = "x-router-fallback"     # live: "<chosen>><sent to>;<reason>" when live routing moved the request (live.py)
NEXT = "x-router-next"             # live: the next candidate, set by the router on the forwarded request (Envoy routes on it)
NEXT_REASONING = "x-router-next-reasoning"   # live: "on:<effort>" | "off" | "" for the next candidate's body rewrite
REQUEST_ID = "x-request-id"


def spoofed(names: Iterable[str], route_header: str) -> list[str]:
    """Request headers a client must not be able to set: they would steer routing or fake router
    output (a cache verdict, a block reason). Envoy removes them before routing."""
    return sorted({n for n in names if n == route_header or n.startswith(ROUTER_PREFIX)})


def get(headers: Mapping[str, str], name: str, default: str = "") -> str:
    return headers.get(name, default)
