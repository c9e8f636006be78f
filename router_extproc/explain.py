"""`router-extproc explain --config C prompt.json`: why a request goes where it goes.

Prints every signal value, what each rule's predicates read (domain, keyword sets, token estimate), each rule
with its outcome in evaluation order, and the chosen decision. It runs the real signal engine when the models
exist (signals.model_dir), else it says so and decides without signals, as the router would with them off.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, TextIO

from .config import RouterConfig, load_config
from .decision import Decision, decide, facts_for, user_text
from .language import LanguageDetector
from .errors import ConfigError
from .openai import APIError, parse_chat_request
from . import routes as routes_mod
from .rules import evaluate
from .stages.decide import user_turn
from .thresholds import resolve


def load_prompt(path: str | Path) -> bytes:
    """A chat-completions body; `model` defaults to the first auto name, and a bare string or {"prompt": ...}
    becomes one user turn."""
    raw = Path(path).read_text(encoding="utf-8")
    try:
        data: Any = json.loads(raw)
    except json.JSONDecodeError:
        data = raw
    if isinstance(data, str):
        data = {"messages": [{"role": "user", "content": data}]}
    elif isinstance(data, dict) and "messages" not in data and isinstance(data.get("prompt"), str):
        data = {**{k: v for k, v in data.items() if k != "prompt"},
                "messages": [{"role": "user", "content": data["prompt"]}]}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: must be a chat request (JSON object), a {{\"prompt\": ...}} or a plain text")
    data.setdefault("model", "auto")
    return json.dumps(data).encode()


async def _signals(config: RouterConfig, request: Any) -> tuple[Any, Any, Any, Any]:
    """The signal pass the router would run, the model's labels (its calibrated thresholds), the config's
    custom routes embedded with the same engine, and the routes' pass over the repaired user turn (None: no
    typos to repair), as stages/decide.route_reading."""
    from .app import build_signals
    from .routes import for_config
    from .signals.inputs import plan

    engine = build_signals(config)
    if engine is None:
        return None, None, None, None
    try:
        rule = config.signals.inputs
        sig = await engine.analyze_reads(plan(request.segments(), rule), rule.max_tokens_read)
        routes = for_config(config, engine)
        lang = LanguageDetector().detect(user_text(request)) if routes is not None and routes.reads_language \
            else None
        repaired = routes.repair(user_turn(request), lang) if routes is not None and config.is_auto(request.model) \
            else None
        fixed = await engine.analyze(repaired, rule.max_tokens_read) if repaired is not None else None
        return sig, engine.labels, routes, fixed
    finally:
        await engine.close()


def explain(config: RouterConfig, body: bytes, out: TextIO, signals: Any = ..., routes: Any = None,
            route_signals: Any = None) -> Decision:
    """`signals`: a signal result to use (tests; `routes` then: the embedded routes, routes.build_index;
    `route_signals`: the pass over the repaired turn); by default the real engine runs, or none when models are
    missing."""
    request = parse_chat_request(body)
    w = out.write
    labels = None
    if signals is ...:
        try:
            signals, labels, routes, route_signals = asyncio.run(_signals(config, request))
        except ConfigError as exc:
            w(f"signals: unavailable ({exc}); deciding without them\n")
            signals = None
    w("signals:\n")
    if signals is None:
        w("  (none)\n")
    else:
        w(f"  category: {signals.category} (confidence {signals.category_confidence:.3f})\n")
        w(f"  complexity: {signals.complexity:.3f}\n")
        w(f"  jailbreak: {signals.jailbreak:.3f}\n")
        w(f"  injection: {getattr(signals, 'injection', 0.0):.3f}\n")
        w(f"  pii: {', '.join(sorted(signals.pii_types)) or '-'}\n")
    lang = None
    if config.rules.reads_language or (routes is not None and routes.reads_language):
        lang = LanguageDetector().detect(user_text(request))
        w(f"  language: {lang.code or 'not sure'} (confidence {lang.confidence:.3f})\n")
    if routes is not None and signals is not None:
        _route(config, request, signals, routes, route_signals, lang, w)
    language = lang.code if lang is not None and config.rules.reads_language else None
    d = decide(config, request, signals, thresholds=resolve(config, labels, routes), language=language,
               route_signals=route_signals, route_language=lang)
    rs = config.decisions
    if rs is None:
        w("decisions: none configured; the `routing:` section decides\n")
    else:
        base = dict(confidence=d.confidence, complexity=d.complexity, pii_types=d.pii_types, route=d.route,
                    language=d.language)
        category = signals.category if signals is not None and config.signals.category else None
        facts = facts_for(config, request, category, base)
        w("facts:\n")
        w(f"  domain: {facts.domain}\n  complexity: {facts.complexity}\n")
        if rs.routes:
            w(f"  route: {facts.route}\n")
        if rs.reads_language:
            w(f"  language: {facts.language}\n")
        w(f"  pii: {', '.join(sorted(facts.pii_types)) or '-'}\n  context_length: ~{facts.token_count} tokens\n")
        found = facts.keywords(rs.keywords)
        for name in rs.keywords.names:
            w(f"  keyword {name}: {'match' if name in found else 'no match'}\n")
        outcome = evaluate(rs, facts, trace=True)
        by_name = {r.name: r for r in (*rs.rules, rs.default)}
        w("rules (highest priority first):\n")
        for name, ok in outcome.trace:
            r = by_name[name]
            if r.when is None:
                chosen = outcome.rule is r
                w(f"  [{'x' if chosen else ' '}] {name}: default{' (no rule above matched)' if chosen else ''}\n")
            else:
                w(f"  [{'x' if ok else ' '}] {name} (priority {r.priority}): {r.when.describe()}\n")
    w("decision:\n")
    if d.rule is not None:
        w(f"  rule: {d.rule}\n")
    elif rs is not None:   # a guard's block, or an explicit model: the rules were not applied
        w("  rule: none (a guard or an explicit model decided before the rules)\n")
    w(f"  model: {d.model}\n")
    if d.blocked:
        w(f"  blocked: {d.blocked}" + (f" ({d.block_message})" if d.block_message else "") + "\n")
    w(f"  reasoning: {d.reasoning}{f' ({d.reasoning_effort})' if d.reasoning_effort else ''}\n")
    if d.cache is not None:
        c = d.cache
        w("  cache: " + ("off for this route" if not c.enabled else
                         f"threshold {c.threshold if c.threshold is not None else 'section'}, "
                         f"ttl_s {c.ttl_s if c.ttl_s is not None else 'section'}") + "\n")
    w(f"  reason: {d.reason}\n")
    return d


def _route(config: RouterConfig, request: Any, signals: Any, routes: Any, route_signals: Any, lang: Any,
           w: Any) -> None:
    """The route signal's lines: what the matcher read (the repaired turn, whom it is about, its language) and why
    it matched."""
    read = route_signals if route_signals is not None else signals
    text, glossed = user_text(request), None
    if route_signals is not None:
        glossed = routes.gloss(text, lang)
    kept = [s.name for s, ok in zip(routes.specs, routes.language_allows(lang)) if not ok and not s.out_of_scope]
    if glossed is not None:
        w(f"  route: the turn is in {lang.code}, which no route's examples are in: the routes read its English "
          f"gloss (gloss.py): {glossed!r}\n")
        text, lang = glossed, None
    elif kept:
        w(f"  route: the turn is in {lang.code}, which the examples of {', '.join(kept)} are not in: "
          "they cannot match (add examples in that language, or let a `language` rule decide)\n")
    if route_signals is not None and glossed is None:
        w(f"  route reads the turn with its typos repaired: {routes.repair(user_turn(request), lang)!r}\n")
    m = routes.match(read.embedding, read.category_confidence if config.signals.category else None, text, lang)
    if routes.about_someone_else(text):
        w("  route: the turn reads as about someone else (another company's name, a third party or a general "
          "question, and no \"you\"): " + ("the judge weighs it (routes.py)\n" if routes.elsewhere is not None
                                           else "its bar is raised\n"))
    if routes.elsewhere is not None and routes.brands is not None and routes.brands.named(text):
        w("  route: the turn names a well-known brand the examples do not: the judge weighs it\n")
    if routes.elsewhere is not None:
        for what in _judge_cues(routes, text):
            w(f"  route: the turn reads as {what}: the judge weighs it\n")
    if m is not None and m.nearest is not None and routes.elsewhere is not None:
        spec = next(s for s in routes.specs if s.name == m.nearest)
        if spec.strictness:
            w(f"  route: {spec.name} has strictness {spec.strictness:+g}: the judge's cut is log-odds "
              f"{routes.judge_cut + spec.strictness:g}\n")
    if m is not None and m.refused:
        w(f"  route: the turn is as close to the negatives of {', '.join(m.refused)} as to their examples: "
          "they cannot match\n")
    if m is not None:
        got = (f"{m.route} (score {m.score:.3f} >= bar {m.bar:.3f}; nearest example {m.similarity:.3f}, "
               f"{m.probability:.2f} of the ranking with the category head)") if m.route else \
            f"none (nearest {m.nearest}: score {m.score:.3f} < bar {m.bar:.3f})"
        w(f"  route: {got}\n")


def _judge_cues(routes: Any, text: str) -> list[str]:
    """The judge's "whose case is it" cues the turn fires (routes.py), in words."""
    cues = [
        (routes_mod.someone_elses_case(text), "someone else's case (\"my mum's\", \"our vendor\")"),
        (routes_mod.third_person(text), "about another person (\"he\", \"her\")"),
        (routes_mod.other_party_subject(text), "another organisation's case (\"the post office lost ...\")"),
        (routes.brands is not None and routes.brands.partner_owned_in(text),
         "the customer's own account or app with a partner the examples name (\"my PayPal\")"),
        (routes_mod.general_howto(text), "a general how-to (\"how do I write an invoice\", \"what is a ...\")"),
        (routes_mod.asks_advice(text),
         "advice sought in general (\"the cheapest way to ...\", \"how are ... calculated\")"),
        (routes_mod.bought_elsewhere(text), "bought from another seller (\"from a local carpenter\")"),
        (routes_mod.local_service(text), "a local trade or service (\"the optician\", \"a taxi\")"),
        (routes_mod.own_appliance(text), "the customer's own appliance (\"the microwave\", \"my router\")"),
        (routes_mod.general_question(text),
         "a question about a kind of thing in general (\"how do couriers decide ...\", "
         "\"the difference between a ...\")"),
        (routes_mod.general_knowledge(text),
         "general knowledge (\"what's the usual ...\", \"is it legal ...\"), no first or second person"),
        (routes.brands is not None and routes.brands.platform_in(text),
         "the operator's service on a platform, no other brand (\"on Android\", \"in Firefox\"): for the route"),
    ]
    return [what for fired, what in cues if fired]


def run_explain(config_path: str, prompt_path: str, out: TextIO) -> int:
    config = load_config(config_path)
    try:
        explain(config, load_prompt(prompt_path), out)
    except APIError as err:
        # what the router would answer this body: said as such, not as a traceback
        out.write(f"the router answers {err.status} {err.code or err.type}: {err.message}\n")
        return 2
    return 0
