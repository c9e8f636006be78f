"""Routing decisions that operators write: named rules over signal predicates (issue #23, first slice).

Pure data and functions, no I/O: `config_rules.py` builds a `RuleSet` from the `keywords:` and `decisions:`
sections at load; `decision.py` evaluates it against one request's `Facts`.

A rule matches when its condition tree (`all` / `any` / `not` over predicates) is true of the request. Rules are
tried by priority (highest first; the file's order breaks ties); the first match wins, and when none matches the
required default decision applies. Predicates read only values the signal pass already computed, plus the user's
text for keywords and a token estimate for context length, so evaluation costs microseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

SELECTIONS = ("first", "cheapest", "score-weighted")
COST_WEIGHT = 0.5   # score-weighted: how much of a quality point the most expensive candidate's cost is worth
# Predicates a condition may name (the signals a rule can read). `cache` (hit or miss) is not one and is rejected at
# load: the lookup runs after the decision because the chosen model and the route's cache policy are part of it, so
# no rule can read its outcome without deciding twice (docs/routing.md "Cache policy per route").
PREDICATES = ("domain", "complexity", "keyword", "context_length", "pii", "route", "language")
COMBINATORS = ("all", "any", "not")
CHARS_PER_TOKEN = 4   # context_length's estimate: ~4 characters per token for English BPE/WordPiece vocabularies


@dataclass(frozen=True, slots=True)
class KeywordSet:
    """Literal terms or RE2 regexes, compiled into one pattern (RE2: linear time, so no regex can explode)."""

    name: str
    terms: tuple[str, ...]
    regex: bool = False
    case_sensitive: bool = False
    whole_word: bool = True
    pattern: Any = field(default=None, compare=False, repr=False)   # re2 compiled alternation
    source: str = ""                                                # its RE2 text (KeywordIndex reads it)

    def matches(self, text: str) -> bool:
        return self.pattern.search(text) is not None


def compile_keywords(name: str, terms: tuple[str, ...], *, regex: bool, case_sensitive: bool,
                     whole_word: bool) -> KeywordSet:
    """Raises ValueError (the RE2 message) for a bad regex; the config parser names the key."""
    import re
    import re2

    parts = []
    for t in terms:
        src = t if regex else re.escape(t)
        re2.compile(src)   # one term at a time, so the error names the bad one
        parts.append(f"(?:{src})")
    body = "|".join(parts)
    if whole_word:
        body = rf"\b(?:{body})\b"
    if not case_sensitive:
        body = "(?i)" + body
    return KeywordSet(name, terms, regex, case_sensitive, whole_word, re2.compile(body), body)


@dataclass(frozen=True, slots=True)
class KeywordIndex:
    """Every keyword set in one RE2 set: one linear pass over the text says which sets match (the cost does not
    grow with each set searched separately)."""

    sets: Mapping[str, KeywordSet]
    names: tuple[str, ...]
    matcher: Any = field(compare=False, repr=False)

    def __contains__(self, name: object) -> bool:
        return name in self.sets

    def scan(self, text: str) -> frozenset[str]:
        if not self.names:
            return frozenset()
        hits = self.matcher.Match(text)   # indices of the matching patterns, or None
        return frozenset(self.names[i] for i in hits or ())


def index_keywords(sets: Mapping[str, KeywordSet]) -> KeywordIndex:
    import re2

    names = tuple(sets)
    matcher = re2.Set.SearchSet()
    for n in names:
        matcher.Add(sets[n].source)
    matcher.Compile()
    return KeywordIndex(dict(sets), names, matcher)


# ---- the condition tree ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Domain:
    names: frozenset[str]

    def describe(self) -> str:
        return f"domain in [{', '.join(sorted(self.names))}]"


@dataclass(frozen=True, slots=True)
class Complexity:
    level: str   # simple | complex

    def describe(self) -> str:
        return f"complexity = {self.level}"


@dataclass(frozen=True, slots=True)
class Keyword:
    sets: tuple[str, ...]   # any of these named keyword sets

    def describe(self) -> str:
        return f"keyword {' | '.join(self.sets)}"


@dataclass(frozen=True, slots=True)
class ContextLength:
    min: int = 0
    max: int | None = None

    def describe(self) -> str:
        return f"context_length in [{self.min}, {'inf' if self.max is None else self.max}]"


@dataclass(frozen=True, slots=True)
class PII:
    types: frozenset[str] | None   # None: any type

    def describe(self) -> str:
        return "pii any" if self.types is None else f"pii in [{', '.join(sorted(self.types))}]"


@dataclass(frozen=True, slots=True)
class Route:
    names: frozenset[str]   # custom routes (routes.py): the request's matched route is one of them

    def describe(self) -> str:
        return f"route in [{', '.join(sorted(self.names))}]"


@dataclass(frozen=True, slots=True)
class Language:
    codes: frozenset[str]   # the language signal (language.py) says one of these; false when it is not sure

    def describe(self) -> str:
        return f"language in [{', '.join(sorted(self.codes))}]"


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Condition, ...]

    def describe(self) -> str:
        return "all(" + ", ".join(c.describe() for c in self.items) + ")"


@dataclass(frozen=True, slots=True)
class Any_:
    items: tuple[Condition, ...]

    def describe(self) -> str:
        return "any(" + ", ".join(c.describe() for c in self.items) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition

    def describe(self) -> str:
        return f"not({self.item.describe()})"


Condition = Union[Domain, Complexity, Keyword, ContextLength, PII, Route, Language, All, Any_, Not]


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A route's semantic-cache policy. It can only narrow the cache's own section: a route may switch the cache
    off, raise the similarity a semantic hit needs, or shorten the age of the answers it accepts."""

    enabled: bool = True
    threshold: float | None = None        # None: the cache's own; thresholds.route_cache_similarity applies it
    ttl_s: float | None = None            # None: the cache's ttl_seconds; else older answers are not served


SYSTEM_PROMPT_MODES = ("insert", "replace")


@dataclass(frozen=True, slots=True)
class SystemPrompt:
    """The operator's system prompt for a route (decision.with_system_prompt applies it to the forwarded body).
    insert: put before the client's own system prompt (merged into its first system message, so templates that
    accept one system turn still work); replace: the client's system and developer turns are dropped."""

    text: str
    mode: str = "insert"


@dataclass(frozen=True, slots=True)
class Action:
    candidates: tuple[str, ...] = ()      # configured model names, in the operator's order
    select: str = "first"                 # first | cheapest (by models[].cost; ties keep the order) | score-weighted
    scores: tuple[tuple[str, float], ...] = ()   # the operator's quality score per candidate, in [0, 1]
    min_score: float | None = None        # cheapest: only candidates scoring at least this (the rest stay fallbacks)
    cost_weight: float = COST_WEIGHT      # score-weighted: the weight of cost against quality
    reasoning: bool = False
    reasoning_effort: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    block: str | None = None              # a message: the request is answered with it, never forwarded
    cache: CachePolicy | None = None      # None: the cache section's policy unchanged
    system_prompt: SystemPrompt | None = None


def order_candidates(action: Action, cost: Callable[[str], float], confidence: float | None) -> list[str]:
    """The candidates in selection order; the first is chosen, the rest are the PII and live fallbacks.

    - first: the operator's order.
    - cheapest: by `models[].cost`, ties in the operator's order; with `min_score`, the candidates scoring at
      least that come first (cheapest among them), the others after them (cheapest first).
    - score-weighted: by confidence × score − cost_weight × cost / (the dearest candidate's cost), highest first,
      where confidence is the category head's for this request (1 when not measured). A sure domain buys the
      better model; an unsure one, where the quality scores may not even apply, leans to the cheaper one.
    """
    names = list(action.candidates)
    if action.select == "cheapest":
        score = dict(action.scores)
        floor = action.min_score
        names.sort(key=lambda n: (floor is not None and score.get(n, 0.0) < floor, cost(n)))   # stable
    elif action.select == "score-weighted":
        score = dict(action.scores)
        top = max((cost(n) for n in names), default=0.0)
        c = 1.0 if confidence is None else confidence
        names.sort(key=lambda n: -(c * score[n] - (action.cost_weight * cost(n) / top if top > 0 else 0.0)))
    return names


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    priority: int
    when: Condition | None                # None only for the default decision
    action: Action
    key: str = field(default="", compare=False)   # where it is in the config file (errors name it)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]               # non-default, already sorted: highest priority first, file order on ties
    default: Rule
    keywords: KeywordIndex = field(default_factory=lambda: index_keywords({}))
    debug_header: bool = False            # x-router-decision-matched: every rule that matched (off by default)
    routes: tuple[Any, ...] = ()          # routes.RouteSpec: custom routes, embedded per config load (routes.py)
    # translated from the `routing:` section (config_rules.legacy_rules): decisions keep that section's outward
    # form (no x-router-decision, its reason text), so a config without `decisions:` behaves as it always did
    legacy: bool = False
    reads_language: bool = False          # a rule reads `language`: the signal is computed for each request


# ---- facts and evaluation ----------------------------------------------------------------------------------

@dataclass(slots=True)
class Facts:
    """What the predicates read for one request. `text` is the user's text (keywords and the length estimate)."""

    domain: str | None = None
    complexity: str | None = None         # None: not measured (a complexity predicate is then false)
    pii_types: frozenset[str] = frozenset()
    text: str = ""
    tokens: int | None = None             # None: estimated from `text`
    route: str | None = None              # the matched custom route (routes.py); None: none matched or not measured
    language: str | None = None           # the language signal (language.py); None: not sure or not measured
    _kw: frozenset[str] | None = field(default=None, repr=False)   # matching keyword sets, scanned once

    @property
    def token_count(self) -> int:
        if self.tokens is None:
            self.tokens = -(-len(self.text) // CHARS_PER_TOKEN)
        return self.tokens

    def keywords(self, index: KeywordIndex) -> frozenset[str]:
        if self._kw is None:
            self._kw = index.scan(self.text)
        return self._kw


def predicates(cond: Condition) -> list[Condition]:
    """The leaf predicates of a condition tree."""
    if isinstance(cond, (All, Any_)):
        return [p for c in cond.items for p in predicates(c)]
    if isinstance(cond, Not):
        return predicates(cond.item)
    return [cond]


def holds(cond: Condition, facts: Facts, keywords: KeywordIndex) -> bool:
    if isinstance(cond, All):
        return all(holds(c, facts, keywords) for c in cond.items)
    if isinstance(cond, Any_):
        return any(holds(c, facts, keywords) for c in cond.items)
    if isinstance(cond, Not):
        return not holds(cond.item, facts, keywords)
    if isinstance(cond, Domain):
        return facts.domain in cond.names
    if isinstance(cond, Complexity):
        return facts.complexity == cond.level
    if isinstance(cond, Keyword):
        found = facts.keywords(keywords)
        return any(s in found for s in cond.sets)
    if isinstance(cond, ContextLength):
        n = facts.token_count
        return n >= cond.min and (cond.max is None or n <= cond.max)
    if isinstance(cond, Route):
        return facts.route in cond.names
    if isinstance(cond, Language):
        return facts.language in cond.codes
    if isinstance(cond, PII):
        return bool(facts.pii_types) if cond.types is None else bool(facts.pii_types & cond.types)
    raise TypeError(f"unknown condition {cond!r}")


@dataclass(frozen=True, slots=True)
class Outcome:
    rule: Rule                            # the chosen one (the default when nothing matched)
    matched: tuple[str, ...]              # names of rules whose condition held (all of them only when traced)
    trace: tuple[tuple[str, bool | None], ...] = ()   # (rule, outcome) in evaluation order; None: not evaluated


def evaluate(rs: RuleSet, facts: Facts, *, trace: bool = False) -> Outcome:
    """First match by priority. With `trace` (explain, the debug header) every rule is evaluated."""
    chosen: Rule | None = None
    matched: list[str] = []
    steps: list[tuple[str, bool | None]] = []
    for rule in rs.rules:
        if chosen is not None and not trace:
            break
        assert rule.when is not None
        ok = holds(rule.when, facts, rs.keywords)
        steps.append((rule.name, ok))
        if ok:
            matched.append(rule.name)
            if chosen is None:
                chosen = rule
    if chosen is None:
        chosen = rs.default
    if trace:
        steps.append((rs.default.name, True))
    return Outcome(chosen, tuple(matched), tuple(steps))
