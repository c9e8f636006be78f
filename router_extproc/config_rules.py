"""The `keywords:` and `decisions:` sections: parsed into a `rules.RuleSet`, validated at load.

Every error names the file and the dotted key: unknown predicates or keyword sets, unknown models, duplicate
names, bad regexes, a missing or second default, and rules that can never fire (an empty `any`, an empty range,
a condition a higher-priority rule already decides, an unconditional rule that is not the default).

    keywords:
      code: {terms: ["stack trace", "traceback", "segfault"], whole_word: true}
      errors: {terms: ['\\w+Error\\b'], regex: true, case_sensitive: true}
    decisions:
      debug_header: false            # x-router-decision-matched on responses
      rules:
        - name: code
          priority: 100
          when: {any: [{keyword: [code, errors]}, {domain: computer science}]}
          candidates: [coder, big]   # or `model: coder`
          select: first              # first | cheapest (models[].cost) | score-weighted (docs/routing.md)
          scores: {coder: 0.9, big: 0.8}   # quality per candidate: cheapest's min_score, score-weighted's weights
          reasoning: true
          reasoning_effort: high
          headers: {x-team: code}
          cache: {enabled: true, threshold: 0.92, ttl_s: 600}   # narrows semantic_cache for this route
          system_prompt: {text: "You are Acme's code assistant.", mode: insert}   # insert | replace
        - name: general
          default: true
          model: small
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import rules as R
from .routes import MAX_EXAMPLE_CHARS, MAX_EXAMPLES, STRICTNESS_MAX, RouteSpec
from .config import CATEGORIES, REASONING_EFFORTS
from .config_reader import Reader as _Reader
from .errors import ConfigError
from .language import LANGUAGES
from .pii import taxonomy

COMPLEXITY_LEVELS = ("simple", "complex")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")   # an RFC 9110 token, lower-case (HTTP/2)


def parse_rules(root: _Reader, known_model: Callable[[_Reader, str, str], str]) -> R.RuleSet | None:
    """None when the file has no `decisions:` section: today's routing config then applies unchanged."""
    keywords = _keywords(root)
    routes = _routes(root)
    if root.raw("decisions", None) is None:
        if keywords:
            raise root.error("keywords", "keyword sets are read only by `decisions:` rules; none are configured")
        if routes:
            raise root.error("routes", "routes are read only by `decisions:` rules (`when: {route: ...}`); "
                                       "none are configured")
        return None
    d = root.section("decisions")
    debug = d.bool("debug_header", False)
    items = d.items("rules")
    if not items:
        raise d.error(d.key("rules"), "at least one rule (the default decision) is required")
    parsed: list[R.Rule] = []
    default: R.Rule | None = None
    names: dict[str, str] = {}
    for r in items:
        rule = _rule(r, keywords, routes, known_model)
        if rule.name in names:
            raise r.error(r.key("name"), f"duplicate decision name {rule.name!r} (first at {names[rule.name]})")
        names[rule.name] = r.path
        if rule.when is None:
            if default is not None:
                raise r.error(r.path, f"a second default decision; {default.name!r} is already the default")
            default = rule
        else:
            parsed.append(rule)
        r.check_unknown()
    if default is None:
        raise d.error(d.key("rules"), "a default decision is required (a rule with `default: true` and no `when`)")
    d.check_unknown()
    # sorted() is stable: equal priorities keep the file's order.
    ordered = tuple(sorted(parsed, key=lambda x: -x.priority))
    _check_reachable(d, ordered, items, names)
    used = {n for rule in ordered for p in R.predicates(rule.when) if isinstance(p, R.Route) for n in p.names}
    for spec in routes.values():
        if spec.out_of_scope:
            if spec.name in used:
                where = next(rule.key for rule in ordered for p in R.predicates(rule.when)
                             if isinstance(p, R.Route) and spec.name in p.names)
                raise root.error(f"{where}.when", f"route {spec.name!r} is out_of_scope: it never matches, "
                                                  "so the rule could never fire")
            continue
        if spec.name not in used:
            raise root.error(spec.key, f"route {spec.name!r} is read by no decision (`when: {{route: {spec.name}}}`): "
                                       "its examples would be embedded for nothing")
    reads_language = any(isinstance(p, R.Language) for rule in ordered for p in R.predicates(rule.when))
    return R.RuleSet(rules=ordered, default=default, keywords=R.index_keywords(keywords), debug_header=debug,
                     routes=tuple(routes.values()), reads_language=reads_language)


def _routes(root: _Reader) -> dict[str, RouteSpec]:
    """`routes: [{name, examples: [...], threshold}]`: custom routes matched by their examples (routes.py)."""
    out: dict[str, RouteSpec] = {}
    owner: dict[str, str] = {}      # example text -> the key of the route that lists it
    total = 0
    for r in root.items("routes"):
        name = r.str("name")
        if not name:
            raise r.error(r.key("name"), "must not be empty")
        if name in out:
            raise r.error(r.key("name"), f"duplicate route name {name!r} (first at {out[name].key})")
        ex = r.raw("examples", None)
        if not isinstance(ex, list) or not ex:
            raise r.error(r.key("examples"), "must be a non-empty list of example utterances (a route with no "
                                             "examples can never match)")
        examples: list[str] = []
        for i, t in enumerate(ex):
            k = f"{r.key('examples')}[{i}]"
            if not isinstance(t, str) or not t.strip():
                raise r.error(k, "must be a non-empty string")
            if len(t) > MAX_EXAMPLE_CHARS:
                raise r.error(k, f"{len(t)} characters; an example is one utterance (at most {MAX_EXAMPLE_CHARS})")
            t = t.strip()
            if t in owner:
                if owner[t] == r.path:
                    continue   # listed twice in one route: harmless, embedded once
                raise r.error(k, f"{t[:60]!r} is also an example of {owner[t]}: one utterance cannot name two routes")
            owner[t] = r.path
            examples.append(t)
        total += len(examples)
        if total > MAX_EXAMPLES:
            raise r.error(r.key("examples"), f"more than {MAX_EXAMPLES} examples in all routes (each is embedded at "
                                             "load and compared on every request)")
        out_of_scope = r.bool("out_of_scope", False)
        if out_of_scope and r.raw("threshold", None) is not None:
            raise r.error(r.key("threshold"), "an out_of_scope route never matches: a threshold means nothing")
        negatives = _negatives(r, out_of_scope)
        total += len(negatives)
        if total > MAX_EXAMPLES:
            raise r.error(r.key("negatives"), f"more than {MAX_EXAMPLES} examples and negatives in all routes (each "
                                              "is embedded at load and compared on every request)")
        # no `threshold`: fitted from the examples at load (routes.fitted_threshold)
        threshold = r.float("threshold", None, lo=-1.0, hi=1.0)
        if out_of_scope and r.raw("strictness", None) is not None:
            raise r.error(r.key("strictness"), "an out_of_scope route never matches: a strictness means nothing")
        # added to the judge's cut in log-odds (routes.py; routing.md has the trade curve): beyond ±STRICTNESS_MAX it says
        # yes to everything or nothing near the route, which a rule or `threshold` says more plainly
        strictness = r.float("strictness", 0.0, lo=-STRICTNESS_MAX, hi=STRICTNESS_MAX)
        out[name] = RouteSpec(name, tuple(examples), threshold, key=r.path, out_of_scope=out_of_scope,
                              languages=_route_languages(r), negatives=negatives, strictness=strictness)
        r.check_unknown()
    for spec in out.values():
        for i, t in enumerate(spec.negatives):
            if t in owner:
                raise root.error(f"{spec.key}.negatives[{i}]", f"{t[:60]!r} is also an example of {owner[t]}: an "
                                                                "utterance cannot be both what a route is and is not")
    return out


def _negatives(r: _Reader, out_of_scope: bool) -> tuple[str, ...]:
    """`negatives: [...]`: utterances the route is not, though they read like it (routes.py). Each is one utterance,
    and none may also be an example (of any route): it would refuse the route it names."""
    raw = r.raw("negatives", None)
    if raw is None:
        return ()
    if out_of_scope:
        raise r.error(r.key("negatives"), "an out_of_scope route never matches: negatives mean nothing")
    if not isinstance(raw, list) or not raw:
        raise r.error(r.key("negatives"), "must be a non-empty list of utterances the route is not")
    out: list[str] = []
    for i, t in enumerate(raw):
        k = f"{r.key('negatives')}[{i}]"
        if not isinstance(t, str) or not t.strip():
            raise r.error(k, "must be a non-empty string")
        if len(t) > MAX_EXAMPLE_CHARS:
            raise r.error(k, f"{len(t)} characters; a negative is one utterance (at most {MAX_EXAMPLE_CHARS})")
        t = t.strip()
        out.append(t)
    return tuple(dict.fromkeys(out))


def _route_languages(r: _Reader) -> tuple[str, ...] | None:
    """`languages: [en, fr]` (the languages a turn may be in to match the route) or `languages: any`; absent: the
    languages the route's examples are written in, detected at load (routes.py)."""
    raw = r.raw("languages", None)
    if raw is None:
        return None
    if raw == "any":
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
        raise r.error(r.key("languages"), "must be `any` or a non-empty list of language codes (e.g. [en, fr])")
    bad = [x for x in raw if x not in LANGUAGES]
    if bad:
        raise r.error(r.key("languages"), f"unknown language code {bad[0]!r}: the detector's codes are ISO 639-1 "
                                          "(e.g. en, fr, de; docs/routing.md)")
    return tuple(dict.fromkeys(raw))


def _keywords(root: _Reader) -> dict[str, R.KeywordSet]:
    kw = root.section("keywords")
    out: dict[str, R.KeywordSet] = {}
    for name in kw.data:
        k = kw.section(name)
        terms = k.str_list("terms")
        if not terms or any(not t for t in terms):
            raise k.error(k.key("terms"), "must be a non-empty list of non-empty strings")
        regex = k.bool("regex", False)
        try:
            out[name] = R.compile_keywords(str(name), terms, regex=regex,
                                           case_sensitive=k.bool("case_sensitive", False),
                                           whole_word=k.bool("whole_word", True))
        except Exception as exc:  # re2.error: RE2 rejects the pattern (or a construct it does not support)
            raise k.error(k.key("terms"), f"bad regex: {exc}") from exc
        k.check_unknown()
    return out


def _rule(r: _Reader, keywords: dict[str, R.KeywordSet], routes: dict[str, RouteSpec], known_model) -> R.Rule:
    name = r.str("name")
    if not name:
        raise r.error(r.key("name"), "must not be empty")
    is_default = r.bool("default", False)
    when_raw = r.raw("when", None)
    if is_default and when_raw is not None:
        raise r.error(r.key("when"), "the default decision applies when no rule matched: it takes no `when`")
    if not is_default and when_raw is None:
        raise r.error(r.key("when"), "is required (an unconditional rule would hide every rule below it; "
                                      "mark the catch-all `default: true`)")
    when = None if is_default else _condition(r, r.key("when"), when_raw, (keywords, routes))
    priority = r.int("priority", 0)
    return R.Rule(name=name, priority=priority, when=when, action=_action(r, known_model), key=r.path)


def _action(r: _Reader, known_model) -> R.Action:
    block = r.raw("block", None)
    if block is not None and (not isinstance(block, str) or not block):
        raise r.error(r.key("block"), "must be the message the client gets (a non-empty string)")
    model = r.raw("model", None)
    cands = r.raw("candidates", None)
    if model is not None and cands is not None:
        raise r.error(r.key("candidates"), "give `model` or `candidates`, not both")
    if model is not None:
        cands = [r.str("model")]
        ckey = r.key("model")
    else:
        ckey = r.key("candidates")
        cands = list(r.str_list("candidates", []))
    if not cands and block is None:
        raise r.error(r.path, "an action needs `model`, `candidates` or `block`")
    for c in cands:
        known_model(r, ckey, c)
    if len(set(cands)) != len(cands):
        raise r.error(ckey, "lists a model twice")
    select = r.str("select", "first", choices=R.SELECTIONS)
    scores, min_score, cost_weight = _scores(r, select, cands)
    effort = r.raw("reasoning_effort", None)
    if effort is not None and effort not in REASONING_EFFORTS:
        raise r.error(r.key("reasoning_effort"), f"must be one of {', '.join(REASONING_EFFORTS)}")
    hdr = r.section("headers")
    headers = []
    for hname in hdr.data:
        value = hdr.str(hname)
        if not isinstance(hname, str) or not hname or hname.lower().startswith(("x-router-", ":")):
            raise hdr.error(hdr.key(str(hname)), "header names under x-router- and pseudo-headers belong to the router")
        if not _HEADER_NAME.fullmatch(hname) or any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in value):
            # Envoy rejects such a mutation: the request would fail at request time, not at load
            raise hdr.error(hdr.key(hname), "not a valid HTTP header name, or the value has control characters")
        headers.append((hname.lower(), value))
    return R.Action(candidates=tuple(cands), select=select, reasoning=r.bool("reasoning", False),
                    reasoning_effort=effort, headers=tuple(headers), block=block, cache=_cache_policy(r, block),
                    scores=scores, min_score=min_score, cost_weight=cost_weight,
                    system_prompt=_system_prompt(r, block))


MAX_SYSTEM_PROMPT_CHARS = 20_000   # a prompt, not a document: it is sent with every request of the route


def _forwarding_section(r: _Reader, name: str, block: str | None, why: str) -> _Reader | None:
    """An action's sub-section that only a forwarded request uses (None when absent); a blocking rule may not
    carry it, since it would never apply."""
    if r.raw(name, None) is None:
        return None
    if block is not None:
        raise r.error(r.key(name), why)
    return r.section(name)


def _system_prompt(r: _Reader, block: str | None) -> R.SystemPrompt | None:
    sp = _forwarding_section(r, "system_prompt", block, "a blocking rule never forwards the request")
    if sp is None:
        return None
    text = sp.str("text")
    if not text.strip():
        raise sp.error(sp.key("text"), "must not be empty")
    if len(text) > MAX_SYSTEM_PROMPT_CHARS:
        raise sp.error(sp.key("text"), f"{len(text)} characters; at most {MAX_SYSTEM_PROMPT_CHARS}")
    mode = sp.str("mode", "insert", choices=R.SYSTEM_PROMPT_MODES)
    sp.check_unknown()
    return R.SystemPrompt(text, mode)


def _scores(r: _Reader, select: str, cands: list[str]) -> tuple[tuple[tuple[str, float], ...], float | None, float]:
    """`scores` (quality per candidate), `min_score` (cheapest only), `cost_weight` (score-weighted only)."""
    sc = r.section("scores")
    scores = tuple((str(n), sc.float(n, lo=0.0, hi=1.0)) for n in sc.data)
    named = {n for n, _ in scores}
    stray = sorted(named - set(cands))
    if stray:
        raise sc.error(sc.key(stray[0]), "not one of this rule's candidates")
    if select == "score-weighted" and named != set(cands):
        missing = ", ".join(sorted(set(cands) - named))
        raise r.error(r.key("scores"), f"score-weighted needs a score for every candidate; missing: {missing}")
    min_score = None
    if r.raw("min_score", None) is not None:
        if select != "cheapest" or not scores:
            raise r.error(r.key("min_score"), "applies to `select: cheapest` with `scores`")
        min_score = r.float("min_score", lo=0.0, hi=1.0)
    if scores and select != "score-weighted" and min_score is None:
        raise r.error(r.key("scores"), f"`select: {select}` does not read scores (score-weighted does, and "
                                       "cheapest with `min_score`): they would change nothing")
    cost_weight = R.COST_WEIGHT
    if r.raw("cost_weight", None) is not None:
        if select != "score-weighted":
            raise r.error(r.key("cost_weight"), "applies to `select: score-weighted`")
        cost_weight = r.float("cost_weight", lo=0.0)
    return scores, min_score, cost_weight


def _cache_policy(r: _Reader, block: str | None) -> R.CachePolicy | None:
    """`cache: {enabled, threshold, ttl_s}`; checked against the `semantic_cache` section in check_signals."""
    c = _forwarding_section(r, "cache", block, "a blocking rule answers with its message: it never reaches the cache")
    if c is None:
        return None
    threshold = c.float("threshold", None, lo=0.0, hi=1.0) if c.raw("threshold", None) is not None else None
    ttl = c.float("ttl_s", None, lo=0.0) if c.raw("ttl_s", None) is not None else None
    if ttl is not None and ttl <= 0:
        raise c.error(c.key("ttl_s"), "must be > 0 seconds (switch the route's cache off with `enabled: false`)")
    policy = R.CachePolicy(enabled=c.bool("enabled", True), threshold=threshold, ttl_s=ttl)
    c.check_unknown()
    if not policy.enabled and (threshold is not None or ttl is not None):
        raise c.error(c.key("enabled"), "false: the route never reads the cache, so `threshold`/`ttl_s` mean nothing")
    return policy


def _known(r: _Reader, key: str, v: Any, known: Any, what: str, where: str) -> frozenset[str]:
    """The names a condition lists, each one of `known`: an unknown one is an error naming it and the choices."""
    names = _names(r, key, v)
    bad = [n for n in names if n not in known]
    if bad:
        raise r.error(key, f"unknown {what} {bad[0]!r}; {where}: {', '.join(known) or '(none)'}")
    return frozenset(names)


def _condition(r: _Reader, key: str, raw: Any, known: tuple[dict, dict]) -> R.Condition:
    """One node: a mapping; several keys in one mapping mean all of them."""
    if not isinstance(raw, dict) or not raw:
        raise r.error(key, f"a condition must be a non-empty mapping of {', '.join((*R.COMBINATORS, *R.PREDICATES))}")
    parts = [_node(r, f"{key}.{k}", k, v, known) for k, v in raw.items()]
    return parts[0] if len(parts) == 1 else R.All(tuple(parts))


def _names(r: _Reader, key: str, v: Any) -> tuple[str, ...]:
    vals = [v] if isinstance(v, str) else v
    if not isinstance(vals, list) or not vals or not all(isinstance(x, str) and x for x in vals):
        raise r.error(key, f"must be a name or a non-empty list of names, got {v!r}")
    return tuple(vals)


def _node(r: _Reader, key: str, k: str, v: Any, known: tuple[dict, dict]) -> R.Condition:
    """`known`: the keyword sets and the routes the file defines."""
    keywords, routes = known
    if k in ("all", "any"):
        if not isinstance(v, list) or not v:
            raise r.error(key, "must be a non-empty list of conditions (an empty one never decides anything)")
        items = tuple(_condition(r, f"{key}[{i}]", c, known) for i, c in enumerate(v))
        return R.All(items) if k == "all" else R.Any_(items)
    if k == "not":
        return R.Not(_condition(r, key, v, known))
    if k == "route":
        return R.Route(_known(r, key, v, routes, "route", "defined under `routes:`"))
    if k == "domain":
        return R.Domain(_known(r, key, v, CATEGORIES, "domain", "known"))
    if k == "complexity":
        if v not in COMPLEXITY_LEVELS:
            raise r.error(key, f"must be one of {', '.join(COMPLEXITY_LEVELS)}, got {v!r}")
        return R.Complexity(v)
    if k == "keyword":
        sets = _names(r, key, v)
        bad = [s for s in sets if s not in keywords]
        if bad:
            raise r.error(key, f"unknown keyword set {bad[0]!r}; defined under `keywords:`: "
                               f"{', '.join(keywords) or '(none)'}")
        return R.Keyword(sets)
    if k == "context_length":
        if not isinstance(v, dict) or not v or set(v) - {"min", "max"}:
            raise r.error(key, "must be a mapping with `min` and/or `max` (tokens)")
        lo, hi = v.get("min", 0), v.get("max")
        for name, val in (("min", lo), ("max", hi)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, int) or val < 0):
                raise r.error(f"{key}.{name}", f"must be a token count >= 0, got {val!r}")
        if hi is not None and hi < lo:
            raise r.error(key, f"min {lo} > max {hi}: the rule can never fire")
        return R.ContextLength(lo, hi)
    if k == "language":
        return R.Language(_known(r, key, v, sorted(LANGUAGES), "language", "the detector's codes (ISO 639-1, e.g. fr, de)"))
    if k == "cache":
        raise r.error(key, "a rule cannot read the cache's hit or miss: the lookup runs after the decision, because "
                           "the chosen model and the route's cache policy are part of it (docs/routing.md)")
    if k == "pii":
        if v == "any" or v is True:
            return R.PII(None)
        types = _names(r, key, v)
        bad = [t for t in types if t not in taxonomy.ALL_TYPES]
        if bad:
            raise r.error(key, f"unknown PII type {bad[0]!r}")
        return R.PII(frozenset(types))
    raise r.error(key, f"unknown signal {k!r}; known: {', '.join((*R.COMBINATORS, *R.PREDICATES))}")


def _check_reachable(d: _Reader, ordered: tuple[R.Rule, ...], items: list[_Reader], where: dict[str, str]) -> None:
    """A rule whose condition equals one tried before it can never fire: the earlier rule always takes it."""
    seen: dict[R.Condition, str] = {}
    for rule in ordered:
        assert rule.when is not None
        first = seen.get(rule.when)
        if first is not None:
            raise d.error(f"{where[rule.name]}.when", f"unreachable: rule {first!r} (same or higher priority) "
                                                      "has the same condition and is tried first")
        seen[rule.when] = rule.name


def check_signals(rs: R.RuleSet | None, config: Any) -> None:
    """A predicate over a signal the config switches off reads "not measured" on every request: its rule would
    never fire (or, under `not`, always). Rejected at load, naming the rule and the switch."""
    if rs is None:
        return
    off = {
        R.Domain: None if config.signals.category else "signals.category",
        R.Complexity: None if (config.signals.complexity and config.routing.complexity.enabled)
        else "signals.complexity / routing.complexity.enabled",
        R.PII: None if (config.signals.pii and config.guards.pii_enabled) else "signals.pii / guards.pii",
        # the request embedding comes from the signal pass, which runs when any signal is on
        R.Route: None if config.signals.any_enabled else "signals (all off: no embedding)",
    }
    _check_cache_policies(rs, config)
    for rule in rs.rules:
        assert rule.when is not None
        for p in R.predicates(rule.when):
            switch = off.get(type(p))
            if switch is not None:
                raise ConfigError(f"{config.source}: {rule.key}.when: {p.describe()} reads a signal that "
                                  f"{switch} switches off: the rule can never decide on it")


def _check_cache_policies(rs: R.RuleSet, config: Any) -> None:
    """A route's cache policy can only narrow the `semantic_cache` section (rules.CachePolicy): one that asks for
    what the cache will not do is rejected rather than silently ignored."""
    sc = config.semantic_cache
    for rule in (*rs.rules, rs.default):
        p = rule.action.cache
        if p is None:
            continue
        where = f"{config.source}: {rule.key}.cache"
        if p.enabled and (sc is None or not sc.enabled):
            raise ConfigError(f"{where}: the semantic cache is off (semantic_cache.enabled): a route cannot switch it on")
        if p.threshold is not None and p.threshold < sc.similarity_threshold:
            raise ConfigError(f"{where}.threshold: {p.threshold} is below semantic_cache.similarity_threshold "
                              f"{sc.similarity_threshold}: a route can only raise the bar")
        if p.ttl_s is not None and 0 < sc.ttl_seconds < p.ttl_s:
            raise ConfigError(f"{where}.ttl_s: {p.ttl_s} is above semantic_cache.ttl_seconds {sc.ttl_seconds}: "
                              "entries expire then; a route can only shorten it")


def legacy_rules(config: Any) -> R.RuleSet:
    """The `routing:` section as an equivalent rule set, so one decide path serves both forms. The domain the rules
    read is the routing category (after the confidence fallback), as `routing:` always used it:

    - per configured category, by file order: `{domain: C, complexity: simple}` → simple_model first, then C's
      models (when `complexity.simple_model` is set), then `{domain: C}` → C's models by score, with its reasoning;
    - for any other category: `{complexity: simple}` → simple_model, `{complexity: complex}` → complex_model (each
      when set), each then the default model; the default decision → the default model.
    """
    routing = config.routing
    cx = routing.complexity
    rules: list[R.Rule] = []

    def after(first: str, rest: list[str]) -> tuple[str, ...]:
        return (first, *[n for n in rest if n != first])

    for route in routing.categories:
        models = [n for n, _ in route.model_scores] or [config.default_model]
        domain = R.Domain(frozenset({route.name}))
        if cx.simple_model is not None:
            rules.append(R.Rule(f"{route.name}/simple", 2, R.All((domain, R.Complexity("simple"))),
                                R.Action(candidates=after(cx.simple_model, models))))
        rules.append(R.Rule(route.name, 1, domain, R.Action(candidates=tuple(models), reasoning=route.use_reasoning,
                                                            reasoning_effort=route.reasoning_effort)))
    if cx.simple_model is not None:
        rules.append(R.Rule("simple", 0, R.Complexity("simple"),
                            R.Action(candidates=after(cx.simple_model, [config.default_model]))))
    if cx.complex_model is not None:
        rules.append(R.Rule("complex", 0, R.Complexity("complex"),
                            R.Action(candidates=after(cx.complex_model, [config.default_model]))))
    default = R.Rule("default", 0, None, R.Action(candidates=(config.default_model,)))
    return R.RuleSet(rules=tuple(sorted(rules, key=lambda x: -x.priority)), default=default, legacy=True)
