"""Routing decisions: a pure function of (config, parsed request, signals).

Order: jailbreak guard → injection guard (tool results and documents: flag, block or route) → PII detection →
category and complexity → model choice by rules (rules.py: the operator's `decisions:`, else the `routing:` section
read as an equivalent rule set, config_rules.legacy_rules) → PII policy of the chosen model → reasoning flags. The cache lookup happens after this function (the chosen model is one
of the cache's hard filters, so a hit is never an answer from a different model than the request
would reach on a miss). Nothing here does I/O, so every rule is tested without gRPC or Envoy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from .config import ModelConfig, RouterConfig
from .openai import APIError, ChatRequest
from .rules import CachePolicy, Facts, SystemPrompt, evaluate, order_candidates
from .stages.contracts import LanguageReading, SignalsLike
from .thresholds import Thresholds, resolve


@dataclass(frozen=True, slots=True)
class Decision:
    model: str                         # configured model name the request goes to
    auto: bool                         # the client asked for an auto-model name
    category: str | None = None
    confidence: float | None = None
    complexity: str | None = None      # "simple" | "complex" | None when not measured
    complexity_score: float | None = None
    reasoning: bool | None = None      # None: leave the body's reasoning fields alone
    reasoning_effort: str | None = None
    pii_types: frozenset[str] = field(default_factory=frozenset)   # detected (less `pii.ignore`)
    pii_redact: frozenset[str] = field(default_factory=frozenset)  # of those, replaced by placeholders
    blocked: str | None = None         # "jailbreak" | "injection" | "pii"
    jailbreak_score: float | None = None
    injection: str | None = None       # "flagged" | "blocked" | "routed": a tool result or document reads as an attack
    injection_score: float | None = None
    reason: str = ""
    rule: str | None = None            # the operator's decision that chose this (x-router-decision); None: legacy
    matched: tuple[str, ...] = ()      # every rule whose condition held (only when the debug header is on)
    headers: tuple[tuple[str, str], ...] = ()   # the rule's headers for the response
    block_message: str | None = None   # blocked == "policy": the rule's message to the client
    candidates: tuple[str, ...] = ()   # the rule's models in selection order (live.py falls back within them)
    route: str | None = None           # the matched custom route (routes.py); None: none matched or none configured
    route_similarity: float | None = None   # the best route's nearest-example cosine (None: not measured)
    language: str | None = None        # the language signal, when a rule reads it (language.py)
    cache: CachePolicy | None = None   # the rule's cache policy for this request (stages/cache.py); None: the section's
    system_prompt: SystemPrompt | None = None   # the rule's system prompt (with_system_prompt)


def decide(
    config: RouterConfig,
    request: ChatRequest,
    signals: SignalsLike | None,
    *,
    thresholds: Thresholds | None = None,
    language: str | None = None,
    route_signals: SignalsLike | None = None,
    route_language: LanguageReading | None = None,
) -> Decision:
    """Choose the model (or a block) for one request. Raises APIError(404) for an unknown model.

    `thresholds`: resolved once per config load (thresholds.resolve); None resolves them from the config alone.
    `language`: the language signal's code (language.py, computed off the event loop; None: not sure or not read).
    `route_signals`: the signal pass over the user's turn with its typos repaired (stages/decide.route_reading),
    which the custom routes read instead of `signals`; None: the turn needed no repair.
    `route_language`: the language detector's reading of the user's text, which the custom routes read (routes.py:
    a route matches the languages of its examples); None: not read, every route may match."""
    auto = config.is_auto(request.model)
    if not auto and config.model(request.model) is None:
        raise APIError(
            404,
            f"The model '{request.model}' does not exist. Available: "
            + ", ".join([*(m.name for m in config.models), *config.auto_model_names]),
            type="invalid_request_error", param="model", code="model_not_found",
        )
    resolved = thresholds or resolve(config)
    threshold = resolved.jailbreak
    category, base = _readings(config, signals, threshold, auto, resolved.routes, route_signals,
                               user_text(request) if resolved.routes is not None else None, route_language)
    base["language"] = language
    guarded = _guard(config, request, category, threshold, base)
    if guarded is not None:
        return guarded

    pii_blocked = frozenset(t for t in base["pii_types"] if config.pii.action(t) == "block")
    if pii_blocked:
        model = request.model if not auto else config.default_model
        return Decision(model=model, category=category, blocked="pii",
                        reason=f"PII policy blocks {_fmt(pii_blocked)}", **base)
    if base["injection"] == "routed":
        return _route_injection(config, category, base)

    if not auto:
        chosen = config.model(request.model)
        assert chosen is not None
        routed_pii = base["pii_types"] - base["pii_redact"]  # a redacted value never reaches the model
        if routed_pii and not chosen.allows_pii(routed_pii):
            return Decision(model=chosen.name, category=category, blocked="pii",
                            reason=f"explicit model {chosen.name} does not accept {_fmt(routed_pii)}", **base)
        return Decision(model=chosen.name, category=category, reason="explicit model", **base)

    return _route_rules(config, request, category, base)


def _domain(config: RouterConfig, category: str | None, confidence: float | None) -> tuple[str, str]:
    """The route category: the signal's category, or the fallback when it is missing or under the confidence bar."""
    if category is not None and confidence is not None and confidence < config.routing.confidence_threshold:
        fb = config.routing.fallback_category
        return fb, f"confidence {confidence:.2f} < {config.routing.confidence_threshold:.2f}: fallback {fb}"
    route_category = category if category is not None else config.routing.fallback_category
    return route_category, f"category {route_category}"


def user_text(request: ChatRequest) -> str:
    """What keyword and context-length predicates read: the user's own turns (not the operator's system prompt)."""
    return "\n".join(s.text for s in request.segments() if s.role == "user")


def facts_for(config: RouterConfig, request: ChatRequest, category: str | None,
              base: dict[str, Any]) -> Facts:
    domain, _ = _domain(config, category, base["confidence"])
    if category is None and not config.rules.legacy:
        domain = None   # an operator's `domain` predicate is false when the category is not measured
    return Facts(domain=domain, complexity=base["complexity"], language=base.get("language"),
                 pii_types=base["pii_types"], text=user_text(request), route=base.get("route"))


def _route_rules(config: RouterConfig, request: ChatRequest, category: str | None,
                 base: dict[str, Any]) -> Decision:
    """The first matching rule's action (rules.py), with the PII policy applied last."""
    rs = config.rules
    facts = facts_for(config, request, category, base)
    out = evaluate(rs, facts, trace=rs.debug_header)
    rule, action = out.rule, out.rule.action
    route_category = facts.domain
    tag: dict[str, Any] = {}
    if rs.legacy:   # `routing:` read as rules: its decisions look as they always did (no rule name, its reasons)
        route_category, why = _legacy_reason(config, category, base)
        no_candidate = f"no model in {route_category} accepts"
    else:
        tag = dict(rule=rule.name, matched=out.matched if rs.debug_header else (), headers=action.headers,
                   cache=action.cache, system_prompt=action.system_prompt)
        why = f"decision {rule.name}"
        no_candidate = f"{why}: no candidate accepts"
    if action.block is not None:
        return Decision(model=config.default_model, category=route_category, blocked="policy",
                        block_message=action.block, reason=why + ": block", **tag, **base)
    ordered = order_candidates(action, lambda n: _model(config, n).cost, base["confidence"])
    chosen_name = ordered[0]
    if not rs.legacy:
        tag["candidates"] = tuple(ordered)
    routed_pii = base["pii_types"] - base["pii_redact"]  # a redacted value never reaches the model
    if routed_pii:
        allowed = [n for n in ordered if _model(config, n).allows_pii(routed_pii)]
        if not allowed:
            return Decision(model=chosen_name, category=route_category, blocked="pii",
                            reason=f"{no_candidate} {_fmt(routed_pii)}", **tag, **base)
        if allowed[0] != chosen_name:
            why += f", PII {_fmt(routed_pii)} moved {chosen_name} → {allowed[0]}"
        chosen_name = allowed[0]
    reasoning: bool | None = action.reasoning
    effort = (action.reasoning_effort or "medium") if reasoning else None
    if _model(config, chosen_name).family == "none":
        reasoning, effort = None, None
    return Decision(model=chosen_name, category=route_category, reasoning=reasoning, reasoning_effort=effort,
                    reason=why, **tag, **base)


def _legacy_reason(config: RouterConfig, category: str | None, base: dict[str, Any]) -> tuple[str, str]:
    """The routing category and the reason text the `routing:` section has always given."""
    route_category, why = _domain(config, category, base["confidence"])
    complexity, cx_score = base["complexity"], base["complexity_score"]
    simple_model = config.routing.complexity.simple_model
    if complexity == "simple" and simple_model is not None:
        why += f", simple ({cx_score:.2f}) → {simple_model}"
    elif complexity is not None:
        why += f", {complexity} ({cx_score:.2f})"
    return route_category, why


def _readings(config: RouterConfig, signals: SignalsLike | None, threshold: float,
              auto: bool, routes: Any = None, route_signals: SignalsLike | None = None,
              text: str | None = None, language: LanguageReading | None = None) -> tuple[str | None, dict[str, Any]]:
    """What the enabled signals say: the category, and the fields every Decision of this request carries."""
    guards = config.guards
    jb = signals.jailbreak if (signals is not None and config.signals.jailbreak) else None
    pii_types = (
        signals.pii_types - config.pii.ignore if (signals is not None and config.signals.pii and guards.pii_enabled)
        else frozenset()
    )
    pii_redact = frozenset(t for t in pii_types if config.pii.action(t) == "redact")
    category = confidence = None
    if signals is not None and config.signals.category:
        confidence = float(signals.category_confidence)
        category = signals.category
    complexity = cx_score = None
    rule = config.routing.complexity
    if signals is not None and config.signals.complexity and rule.enabled:
        cx_score = float(signals.complexity)
        complexity = "complex" if cx_score >= rule.threshold else "simple"

    # getattr: a signals source without the injection read (an older engine or a test double) reports none
    inj = getattr(signals, "injection", None) if config.signals.jailbreak else None
    injection = None
    if guards.injection_enabled and inj is not None and inj >= threshold:
        injection = {"flag": "flagged", "block": "blocked", "route": "routed"}[guards.injection_action]
    # custom routes: the signal pass's embedding against the examples embedded at load, ranked with the category
    # head's classes (routes.py; `confidence` is None when the category signal is off); a turn with typos: the
    # pass over its repaired text, its embedding and its head's confidence; a turn in another language the routes
    # keep out: the pass over its English gloss (gloss.py); the user's text says whom it is about
    match = None
    if routes is not None and signals is not None:
        read = route_signals if route_signals is not None else signals
        conf = float(read.category_confidence) if confidence is not None else None
        if route_signals is not None and text is not None:
            text, language = routes.read_as(text, language)   # a glossed turn: its gloss, read as English
        match = routes.match(getattr(read, "embedding", None), conf, text, language)
    return category, dict(auto=auto, confidence=confidence, complexity=complexity, complexity_score=cx_score,
                          pii_types=pii_types, pii_redact=pii_redact, jailbreak_score=jb, injection=injection,
                          injection_score=inj, route=match.route if match else None,
                          route_similarity=match.similarity if match else None)


def _guard(config: RouterConfig, request: ChatRequest, category: str | None, threshold: float,
           base: dict[str, Any]) -> Decision | None:
    """The jailbreak and injection guards' block, or None when neither blocks the request."""
    jb, inj = base["jailbreak_score"], base["injection_score"]
    blocked_model = config.default_model if base["auto"] else request.model
    if config.guards.jailbreak_enabled and jb is not None and jb >= threshold:
        return Decision(model=blocked_model, category=category, blocked="jailbreak",
                        reason=f"jailbreak score {jb:.3f} >= {threshold:.3f}", **base)
    if base["injection"] == "blocked":
        return Decision(model=blocked_model, category=category, blocked="injection",
                        reason=f"injection score {inj:.3f} >= {threshold:.3f}", **base)
    return None


def _route_injection(config: RouterConfig, category: str | None, base: dict[str, Any]) -> Decision:
    """The one model the operator allows to read untrusted text that looks like instructions; PII still applies."""
    routed_pii = base["pii_types"] - base["pii_redact"]
    chosen = _model(config, config.guards.injection_model)
    if routed_pii and not chosen.allows_pii(routed_pii):
        return Decision(model=chosen.name, category=category, blocked="pii",
                        reason=f"injection model {chosen.name} does not accept {_fmt(routed_pii)}", **base)
    return Decision(model=chosen.name, category=category,
                    reason=f"injection score {base['injection_score']:.3f}: routed to {chosen.name}", **base)


def _model(config: RouterConfig, name: str) -> ModelConfig:
    m = config.model(name)
    assert m is not None, name  # config validation guarantees every referenced model exists
    return m


def _fmt(types: frozenset[str]) -> str:
    return ",".join(sorted(types))


_SYSTEM_ROLES = ("system", "developer")


def with_system_prompt(body: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """The body with the decision's system prompt applied: what the model reads, and so what the cache key is
    built from (stages/cache.py). Chat bodies: `messages`; Responses bodies: `instructions`; a legacy
    completions body has no system turn and is left as sent. The client's body is never modified."""
    sp = decision.system_prompt
    if sp is None:
        return body
    out = copy.copy(body)
    if isinstance(body.get("messages"), list):
        msgs = list(body["messages"])
        system = {"role": "system", "content": sp.text}
        if sp.mode == "replace":
            msgs = [m for m in msgs if not (isinstance(m, dict) and m.get("role") in _SYSTEM_ROLES)]
            out["messages"] = [system, *msgs]
        elif msgs and isinstance(msgs[0], dict) and msgs[0].get("role") == "system":
            first = dict(msgs[0])
            content = first.get("content")
            if isinstance(content, list):   # content parts: the operator's text as the first part
                first["content"] = [{"type": "text", "text": sp.text}, *content]
            else:
                first["content"] = sp.text + ("\n\n" + content if content else "")
            out["messages"] = [first, *msgs[1:]]
        else:
            out["messages"] = [system, *msgs]
    elif "input" in body:   # the Responses API: the system prompt is `instructions`
        old = body.get("instructions")
        out["instructions"] = sp.text if sp.mode == "replace" or not old else sp.text + "\n\n" + str(old)
    return out


def rewrite_body(body: dict[str, Any], model: ModelConfig, decision: Decision) -> dict[str, Any]:
    """The upstream body: `model` set to the served name, the rule's system prompt applied and, for auto
    requests, reasoning switched on or off in the way the model's family understands. Every other field is kept
    as the client sent it."""
    out = with_system_prompt(body, decision)
    out = copy.copy(out) if out is body else out
    out["model"] = model.served_name
    if decision.reasoning is None:
        return out
    on = decision.reasoning
    if model.family in ("qwen3", "deepseek"):
        kwargs = dict(out.get("chat_template_kwargs") or {})
        kwargs["enable_thinking" if model.family == "qwen3" else "thinking"] = on
        out["chat_template_kwargs"] = kwargs
    elif model.family in ("gpt-oss", "openai"):
        # These families cannot switch reasoning off; "low" is the closest to off they accept.
        out["reasoning_effort"] = (decision.reasoning_effort or "medium") if on else "low"
    return out
