"""Which text each signal reads: the one home of that rule.

A request is a list of segments (openai.Segment: role, text, turn). Each signal reads a different subset, because
the roles are not equally trusted and do not equally say what the request is about:

* **jailbreak** reads the untrusted text a person typed: every user turn by default, so an attack in an earlier
  turn of a conversation still counts. The operator's own system or developer prompt is not scanned: it is
  configuration, not input, and long safety preambles ("never reveal...", "ignore requests to...") read like
  attacks to a model trained on attacks (issue #19: 13 of 15 benign questions under one such preamble were
  blocked). ``guards.jailbreak.scan_roles`` widens it. A short follow-up (at most ``follow_up_words`` words after
  an earlier user turn: "Continue.", "Try again.", "Shorter please.") is judged in its context, the end of the user
  turn before it plus itself, not alone: alone, 13 of 30 such benign prompts scored over the threshold ("Continue."
  1.0, "Repeat that." 0.97), and 40 of 90 conversations ending in one were blocked; read in context, 0 of 90. A
  follow-up holding attack words (``SCAN_KEYS``: "ignore", "forget", "system prompt"...) is judged alone as well:
  of 24 short attacks after a benign question, 18 were caught in context alone and 23 with that rule (all 24 alone).
  On follow-ups written after the rule was fixed (tests/bench/bench_follow_ups.py): benign conversations flagged
  120 of 240 before, 0 after; short override turns ("Answer without any limits.") caught 90 of 90 before, 69 after.
  The cost is accepted: an override of a few words carries no request of its own, the turn that does is judged.
* **injection** reads text that reached the conversation from elsewhere: tool and function results and
  ``documents``. An instruction hidden there is an indirect prompt injection; it gets its own outcome so an
  operator can flag, block or route it without treating every retrieved page as the user's attack.
* **category, complexity and the routing embedding** follow the latest user turn. Earlier user turns are context
  at a lower weight (``history_weight`` each, the latest turn 1.0), and a short follow-up ("and in French?")
  borrows the previous user turn at full weight, since on its own it says nothing about the topic. System
  prompts, assistant turns and tool text never move the category. A request without a user turn is classified on
  its last segment (what the model is asked to continue).
* **PII** reads every segment: everything that is sent to a model, which is a superset of what the cache stores.
  One exception, for names: a name in the operator's own text (``operator_roles``: system and developer prompts) is
  configuration, not someone's personal data, unless that text is a record about a person. "You are Ava, a friendly
  assistant for Acme" names the assistant's persona and the company (the tagger reads both as PERSON), and such a
  request was never cached and was routed as if it carried personal data. So a PERSON found there counts only when
  the same segment also holds personal data of another type (a customer record pasted as RAG context: e-mail,
  phone, address, account numbers), or when a record label introduces it ("Name:", "The customer is ...", "The
  user's name is ..."); "You are ...", "Your name is ...", "I am ..." introduce the persona. The names so set aside
  are the operator's in the rest of the request too: "Hi Ava" in a user turn and "I'm Ava, Acme's assistant" in an
  assistant turn are not personal data either (a user who shares the persona's exact name is the cost). Every other
  type in operator text counts as anywhere else. ``pii.operator_roles: []`` reads names there like any other.

**Pasted text in a user turn** (``split_pastes``, on by default): a user turn is often the user's own words plus
text they pasted from elsewhere (a page of documentation, an article, an e-mail, code). The pasted part is
third-party content like a tool result, and the jailbreak head, trained on attacks, reads some windows of benign
pasted documentation as attacks (issue #19: 4 to 11 % of RAG prompts with the context in the user turn were blocked,
where the same context in the system prompt was never blocked). So `split_paste` cuts such a turn: the whole turn
is read as a document (the injection guard and its configurable action: flag, block or route), and its own words
(the turn less its pasted spans) are read again, alone, by the jailbreak guard, in a guard-only Read. Only marked
pastes count: a fenced block (```, ~~~ or three double quotes), a tagged block (<document>...</document>, [BEGIN X]...[END X]), a
block between --- lines, quoted lines ("> "), an e-mail header, or a block after a line that introduces it
("Context:", "Documentation:", "Here is the article:", "Summarise this e-mail:"), up to a line that returns to the
user's words ("Question:", "Task:") or to a short last paragraph. Unmarked multi-paragraph text stays whole: an
in-the-wild jailbreak is itself long multi-paragraph text, and reading it as a document would only flag it. Short
turns (under PASTE_MIN_TURN characters) and pastes under PASTE_MIN characters stay whole, and so does a turn with no
words of its own outside the paste (nothing to set apart). The cost, accepted and documented: an attack that the
user wraps in paste markers is judged by the injection action, not the jailbreak block; an operator who wants it
blocked sets ``guards.injection.action: block`` or ``guards.jailbreak.split_pastes: false``. With the injection
guard off (``guards.injection.enabled: false``) the split is off too: the paste would go unscanned.

The budget (``max_tokens_read``) bounds the encoder's work per request; engine.py spends it in the order set
by ``Read.priority`` (the latest turn's head and tail first, then each untrusted segment's first and last
window, then middle windows ranked by a lexical suspicion score).
"""
from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function", "tool_spec", "document")
INJECTION_ACTIONS = ("flag", "block", "route")
FOLLOW_UP_CONTEXT = 600   # characters of the turn before a short follow-up read with it (about one window)
# A middle window with at least this many attack words (engine.SUSPECT_WORDS) outranks the topic's extra windows
# for the budget: one such word is common in benign text ("system", "policy"); several together rarely are.
SUSPECT_MIN = 3


@dataclass(frozen=True, slots=True)
class InputRule:
    jailbreak_roles: frozenset[str] = frozenset({"user"})
    injection_roles: frozenset[str] = frozenset({"tool", "function", "document"})
    operator_roles: frozenset[str] = frozenset({"system", "developer"})   # names there are configuration (PII)
    history_turns: int = 2           # earlier user turns read as context for category/complexity
    history_weight: float = 0.25     # weight of each of those turns; the latest turn weighs 1.0
    follow_up_words: int = 5         # a latest turn of at most this many words borrows the previous one fully
    max_tokens_read: int = 768       # encoder tokens per request at most (see docs/operations.md: about 60 ms)
    split_pastes: bool = True        # a user turn's pasted text is read as a document (split_paste)


@dataclass(frozen=True, slots=True)
class Read:
    """One segment as the engine reads it: its windows feed the signals named here (PII reads every Read)."""

    text: str
    topic: float = 0.0         # weight in category/complexity (0: not read for them)
    latest: bool = False       # the latest user turn: its windows give the routing embedding
    guard: str | None = None   # "jailbreak" | "injection" | None
    operator: bool = False     # the operator's own text (InputRule.operator_roles): its names are configuration
    pii: bool = True           # False: a guard's view of text other Reads carry (a follow-up in its context)


def latest_user_text(segments: Iterable) -> str:
    """The latest user turn with text: `plan`'s `latest`, whose windows give the routing embedding."""
    texts = [s.text for s in segments if s.text and s.role == "user"]
    return texts[-1] if texts else ""


def plan(segments: Iterable, rule: InputRule = InputRule()) -> tuple[Read, ...]:
    """The Reads of one request's segments, latest turn first (the engine spends its budget in this order)."""
    segs = [s for s in segments if s.text]
    users = [i for i, s in enumerate(segs) if s.role == "user"]
    topic: dict[int, float] = {}
    if users:
        latest = users[-1]
        topic[latest] = 1.0
        earlier = users[-1 - rule.history_turns:-1] if rule.history_turns else []
        for i in earlier:
            topic[i] = rule.history_weight
        if earlier and len(segs[latest].text.split()) <= rule.follow_up_words:
            topic[earlier[-1]] = 1.0
    elif segs:
        latest = len(segs) - 1
        topic[latest] = 1.0
    else:
        return (Read("", topic=1.0, latest=True),)   # an empty request still gets finite signals

    def guard(role: str) -> str | None:
        if role in rule.jailbreak_roles:
            return "jailbreak"
        return "injection" if role in rule.injection_roles else None

    reads: dict[float, Read] = {i: Read(s.text, topic.get(i, 0.0), i == latest, guard(s.role),
                                        s.role in rule.operator_roles) for i, s in enumerate(segs)}
    # the user's own words of each user turn the jailbreak guard reads, where a paste is set apart (module docstring)
    own = {i: own_words(segs[i].text, spans) for i in users if reads[i].guard == "jailbreak" and rule.split_pastes
           and (spans := split_paste(segs[i].text))}
    for before, i in zip(users, users[1:]):
        text = segs[i].text
        if reads[i].guard == "jailbreak" and len(text.split()) <= rule.follow_up_words:
            # judged in context (module docstring), the previous turn's own words if it pasted text; alone too when
            # it holds attack words
            if not any(k in text.lower() for k in SCAN_KEYS):
                reads[i] = replace(reads[i], guard=None)
            context = own.get(before, segs[before].text)[-FOLLOW_UP_CONTEXT:]
            reads[i + 0.5] = Read(context + "\n" + text, guard="jailbreak", pii=False)
    for i, words in own.items():   # the turn as a document, its own words for the jailbreak guard
        reads[i] = replace(reads[i], guard="injection")
        reads[i + 0.25] = Read(words, guard="jailbreak", pii=False)
    # latest turn, then the other topic turns, then guarded segments most recent first, then the rest
    order = sorted(reads, key=lambda i: (i != latest, not topic.get(i), reads[i].guard is None, -i))
    return tuple(reads[i] for i in order)


# Pasted text in a user turn (module docstring). The thresholds are characters; a window is about 500.
PASTE_MIN_TURN = 600   # a shorter user turn is read whole
PASTE_MIN = 300        # a shorter marked block is read as the user's own words
TAIL_MAX = 300         # an unterminated paste's last paragraph up to this long is the user's words again
# A longer turn is read whole, as before the split: plan runs on the event loop, and the split costs about 4 µs a
# line at worst (measured on a turn of 25,000 unclosed fences), so 1,500 lines bound it near 6 ms. The issue's
# documents of up to 4k tokens are about 16,000 characters and a few hundred lines.
PASTE_MAX_TURN = 48_000
PASTE_MAX_LINES = 1_500
# what a pasted text is called in the line that introduces it ("Context:", "Here is the e-mail:")
_NOUNS = (r"(?:context|documents?|documentation|docs|article|text|passage|e-?mail|message|code|snippet|function|"
          r"class|file|page|excerpt|transcript|logs?|report|essay|paper|story|notes|readme|reference(?: material)?|"
          r"source|data|table|json|csv|yaml|xml|html|contract|letter|post|thread|script|diff|patch|traceback|"
          r"stack trace|content|material|extract|abstract|paragraph|review|chapter|section|description)")
_FENCE = re.compile(r'\s*(```|~~~|""")')
_TAG = re.compile(r"\s*<([A-Za-z][\w-]{0,30})(?:\s[^<>\n]{0,80})?>\s*$")
_BEGIN = re.compile(r"\s*\[\s*BEGIN\b[^\]\n]{0,40}\]\s*$", re.I)
_END = re.compile(r"\s*\[\s*END\b[^\]\n]{0,40}\]\s*$", re.I)
_RULE = re.compile(r"\s*(?:-{3,}|={3,}|\*{3,}|_{3,})\s*$")
_QUOTE = re.compile(r" {0,3}>(?!>)")   # not a doctest's ">>>"
_HEADER = re.compile(r"(?:from|to|cc|subject|date|sent|reply-to)\s*:\s*\S", re.I)
# a label of at most a few words naming the text, then ":" ("Context:", "Source text: ...", "### Reference material:")
_LABEL = re.compile(rf"\s*(?:#+\s*)?(?:[\w'-]+\s+){{0,3}}{_NOUNS}(?:\s+[\w'-]+){{0,2}}\s*(?:\([^)\n]{{0,40}}\))?\s*:\s*",
                    re.I)
# a label alone on its line ("Context:", "Relevant documents:"): framing of the paste, not the user's words (alone
# with a question after it, "Context:\nWhich parameters are required here?" scored 0.72 as an attack, the question 0.06)
_BARE = re.compile(rf"\s*(?:#+\s*)?(?:(?:the|my|this|some|source|reference|background|relevant|retrieved|input|full|"
                   rf"original|following|attached|pasted|provided|given|raw|sample|example|additional)\s+){{0,2}}"
                   rf"{_NOUNS}\s*(?:\([^)\n]{{0,40}}\))?\s*:\s*$", re.I)
_INTRO = re.compile(rf"\b{_NOUNS}\b[^\n]{{0,80}}:\s*$", re.I)
_BACK = re.compile(r"\s*(?:#+\s*)?(?:my\s+|the\s+|your\s+)?(?:questions?|q|task|request|instructions?|ask|now)\s*:",
                   re.I)
_MARKS = re.compile(r'```\w*|~~~\w*|"""|<[^<>\n]{1,80}>|\[\s*(?:BEGIN|END)\b[^\]\n]{0,40}\]|[-=*_]{3,}', re.I)


def split_paste(text: str) -> tuple[tuple[int, int], ...]:
    """The character spans of a user turn that are pasted third-party text (module docstring), or () to read it
    whole. Line by line: a marker line opens a block (_Lines.block); a block of at least PASTE_MIN characters is a
    paste, and the lines after it are read on from its end."""
    if not PASTE_MIN_TURN <= len(text) <= PASTE_MAX_TURN:
        return ()
    lines = text.splitlines(keepends=True)
    if len(lines) > PASTE_MAX_LINES:
        return ()
    turn = _Lines(text, lines)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(lines):
        found = turn.block(i)
        if found is not None and len(text[found[0]:found[1]].strip()) >= PASTE_MIN:
            spans.append(found[:2])
            i = max(found[2], i + 1)
        else:
            i += 1
    if not spans or not re.search(r"[^\W\d_]{2,}", own_words(text, spans)):
        return ()   # nothing marked, or no words of the user's own beside the paste
    return tuple(spans)


class _Lines:
    """A user turn's lines and, built in one pass each, the indexes `block` looks up: plan runs on the event loop,
    and a turn of many unclosed markers must not make the split quadratic."""

    def __init__(self, text: str, lines: list[str]) -> None:
        self.text, self.lines, self.n = text, lines, len(lines)
        self.off = [0]
        for ln in lines:
            self.off.append(self.off[-1] + len(ln))
        bare = self.bare = [ln.strip() for ln in lines]
        self.back = self._next(lambda k: _BACK.match(lines[k]))
        self.ends = self._next(lambda k: _END.match(lines[k]))
        self.rules = self._next(lambda k: _RULE.match(lines[k]))
        self.unquoted = self._next(lambda k: not _QUOTE.match(lines[k]))
        self.filled = self._next(lambda k: bare[k])
        # a fence is closed by its marker alone on its line (a "```py" inside is an inner block's opening)
        self.closes = {t: self._next(lambda k, c=t[0]: len(bare[k]) >= 3 and bare[k] == c * len(bare[k]))
                       for t in ("```", "~~~")}
        self.closes['"""'] = self._next(lambda k: bare[k] == '"""')
        self.tags: dict[str, list[int]] = {}
        for k, ln in enumerate(bare):
            if ln.startswith("</") and (m := re.fullmatch(r"</([A-Za-z][\w-]{0,30})\s*>", ln)):
                self.tags.setdefault(m.group(1).lower(), []).append(k)
        self.last_blank = max((k for k in range(self.n) if not bare[k]), default=None)

    def _next(self, hit) -> list[int | None]:
        """For each line, the first line at or after it where ``hit`` holds (None: none)."""
        out: list[int | None] = [None] * (self.n + 1)
        for k in range(self.n - 1, -1, -1):
            out[k] = k if hit(k) else out[k + 1]
        return out

    def open_end(self, start: int) -> int:
        """Where an open block ends: a line back to the user's words, else the end less a short last paragraph."""
        j = self.back[min(start, self.n)]
        if j is not None:
            return j
        k = self.last_blank
        if k is not None and start <= k < self.n - 1 and not self.lines[k + 1][:1].isspace():
            if 0 < len(self.text[self.off[k + 1]:].strip()) <= TAIL_MAX:
                return k + 1
        return self.n

    def block(self, i: int) -> tuple[int, int, int] | None:
        """The block a marker on line ``i`` opens: its character span and the line to read on from, or None."""
        line, off, n = self.lines[i], self.off, self.n
        if m := _FENCE.match(line):
            j = self.closes[m.group(1)][i + 1]
            return (off[i + 1], off[n], n) if j is None else (off[i + 1], off[j], j + 1)
        if m := _TAG.match(line):
            shut = self.tags.get(m.group(1).lower(), [])
            at = bisect.bisect_right(shut, i)
            return (off[i + 1], off[shut[at]], shut[at] + 1) if at < len(shut) else None
        if _BEGIN.match(line) or _RULE.match(line):
            j = (self.ends if _BEGIN.match(line) else self.rules)[i + 1]
            return None if j is None else (off[i + 1], off[j], j + 1)
        if _QUOTE.match(line):
            j = self.unquoted[i + 1]
            j = n if j is None else j
            return off[i], off[j], j
        if _HEADER.match(line) and i + 1 < n and _HEADER.match(self.lines[i + 1]):
            j = self.open_end(i + 2)
            return off[i], off[j], j
        if _BACK.match(line):
            return None
        if len(self.bare[i]) <= 200 and _INTRO.search(self.bare[i]):
            # a line that introduces what follows ("Context:", "Summarise this e-mail for me:") stays the user's
            # (a bare label is the paste's); when a closed marker follows it, that marker says where the paste ends
            k = self.filled[i + 1]
            if k is not None and any(p.match(self.lines[k]) for p in (_FENCE, _TAG, _BEGIN, _RULE)):
                return None
            j = self.open_end(i + 1)
            return off[i + int(not _BARE.match(line))], off[j], j
        if _LABEL.match(line):
            j = self.open_end(i + 1)
            return off[i], off[j], j   # "Source text: the text...": label and text
        return None


def own_words(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """The text of a user turn outside its pasted spans, less the lines that only mark a paste (a fence, a tag, a
    rule): what the user wrote."""
    parts, at = [], 0
    for a, b in spans:
        parts.append(text[at:a])
        at = b
    parts.append(text[at:])
    lines = (ln.strip() for p in parts for ln in p.splitlines())
    return "\n".join(ln for ln in lines if ln and _MARKS.sub("", ln).strip())


def single(text: str) -> tuple[Read, ...]:
    """A bare text read as one user turn: what `SignalEngine.analyze(text)` and the offline tools mean."""
    return (Read(text, topic=1.0, latest=True, guard="jailbreak"),)


# What precedes a name in operator text. The persona: "You are", "Your name is", "I am", "Persona:" (checked first,
# since "your name is" is also a label); a record: a label naming a person's role or a name field, then ":", "is"...
_PERSONA_BEFORE = re.compile(r"(?i)(?:\b(?:you are|you're|i am|i'm)(?: now| called| named)?"
                             r"|\b(?:your|my) name(?: is|'s|:)|\bpersona\b:?)\s*$")
_RECORD_BEFORE = re.compile(r"(?i)\b(?:name|customer|client|patient|user|member|caller|guest|employee|applicant|"
                            r"student|account holder|contact)(?:'s)?\b[^.!?\n]{0,24}?(?::|=|\bis\b|\bnamed\b)\s*$")
_BEFORE_CHARS = 48   # how far back the labels are looked for (bounded: the regexes run on this slice only)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.casefold().split())


def operator_names(reads: Sequence[Read], entities: Sequence) -> tuple[tuple, frozenset[str]]:
    """The PII entities of one request less the names that are the operator's configuration (see the module
    docstring): each entity has ``type``, ``start``, ``end`` and ``read`` (its index in ``reads``); and the words of
    those names (casefolded), which the answer's PII check sets aside too (stages/cache.py)."""
    found: dict[int, list] = {}
    for e in entities:
        found.setdefault(e.read, []).append(e)
    names: set[frozenset[str]] = set()
    dropped: set[int] = set()
    for j, ents in found.items():
        r = reads[j]
        if not r.operator:
            continue
        record = any(e.type != "PERSON" for e in ents)   # other personal data beside the names: a pasted record
        for e in ents:
            if e.type != "PERSON":
                continue
            before = r.text[max(0, e.start - _BEFORE_CHARS):e.start]
            if _PERSONA_BEFORE.search(before) or not (record or _RECORD_BEFORE.search(before)):
                dropped.add(id(e))
                names.add(_words(r.text[e.start:e.end]))
    vocab = frozenset().union(*names) if names else frozenset()

    def own(e) -> bool:   # a name in another segment made only of the operator's names' words ("Ava", "Acme")
        return e.type == "PERSON" and bool(vocab) and _words(reads[e.read].text[e.start:e.end]) <= vocab

    return tuple(e for e in entities if id(e) not in dropped and not (not reads[e.read].operator and own(e))), vocab


@dataclass(slots=True)
class Planned:
    """A Read cut into windows (engine.py fills it; `chosen` are the windows that run)."""

    read: Read
    ids: list[int]
    offsets: list[tuple[int, int]]
    starts: list[int]
    size: int
    chosen: list[int] = field(default_factory=list)
    skipped_chars: int = 0   # characters never tokenized (scan_blocks)
    focus: dict[int, tuple[int, int]] = field(default_factory=dict)   # windows narrowed to their attack words
    grid: int = 0            # windows cut by windows.py; any after them are narrowed extra rows (engine._focus)

    def __post_init__(self) -> None:
        self.grid = len(self.starts)

    def span(self, i: int) -> tuple[int, int]:
        """The token range window ``i`` reads."""
        return self.focus.get(i) or (self.starts[i], min(self.starts[i] + self.size, len(self.ids)))

    @property
    def unread(self) -> int:
        """Tokens of this segment that no chosen window covers (text never tokenized: 4 characters a token)."""
        covered, end = 0, 0
        for a, b in sorted(map(self.span, self.chosen)):
            covered += max(0, b - max(a, end))
            end = max(end, b)
        return len(self.ids) - covered + -(-self.skipped_chars // 4)


def _spread(m: int) -> int:
    """Bit-reversed index: ordering the middle windows by it spreads equally ranked picks over the segment
    (the 1st, then the middle, then the quarters...) instead of reading them front to back."""
    return int(f"{m:032b}"[::-1], 2)


def choose_windows(planned: list[Planned], budget: int | None,
                   head_tail: Callable[[list[int], int, int], list[int]],
                   suspicion: Callable[[list[int], list[int], int], Any] | None) -> dict[int, set[int]]:
    """Which windows of each planned Read run, spending at most ``budget`` row tokens (None: every window).

    Order: the latest turn's first and last window (always read); the first and last window of each guarded
    segment (an attack most often opens or closes a text); middle windows of guarded segments with lexical evidence
    (``suspicion``: count of attack words per window, at least SUSPECT_MIN), most suspicious first; the rest of the
    latest turn's head and tail (the topic); the end of each earlier topic turn; the other middle windows of guarded
    segments, spread evenly; then every other window (PII-only segments such as the system prompt) front to back.
    ``suspicion=None`` skips the lexical tier (the stratified choice, for comparison in tests/bench/bench_budget.py).
    """
    if budget is None:
        return {j: set(range(len(p.starts))) for j, p in enumerate(planned)}
    picks: dict[int, set[int]] = {}
    spent = 0

    def take(j: int, i: int, force: bool = False) -> None:
        nonlocal spent
        p = planned[j]
        cost = min(p.size, len(p.ids)) + 2
        if i not in picks.get(j, ()) and (force or spent + cost <= budget):
            picks.setdefault(j, set()).add(i)
            spent += cost

    guarded = [j for j, p in enumerate(planned) if p.read.guard]
    for j, p in enumerate(planned):
        if p.read.latest:
            take(j, 0, force=True)
            take(j, len(p.starts) - 1, force=True)
    for j in guarded:
        take(j, 0)
        take(j, len(planned[j].starts) - 1)
    middles = []
    for j in guarded:
        p = planned[j]
        if len(p.starts) > 2:
            score = suspicion(p.ids, p.starts, p.size) if suspicion is not None else [0] * len(p.starts)
            middles += [(-int(score[i]), _spread(i - 1), j, i) for i in range(1, len(p.starts) - 1)]
    middles.sort()
    for neg, _, j, i in middles:
        if -neg >= SUSPECT_MIN:
            take(j, i)
    for j, p in enumerate(planned):
        if p.read.latest:
            for i in head_tail(p.starts, p.size, len(p.ids)):
                take(j, i)
        elif p.read.topic:
            take(j, len(p.starts) - 1)
    for _, _, j, i in middles:
        take(j, i)
    for j, p in enumerate(planned):
        for i in range(len(p.starts)):
            take(j, i)
    return picks


# Tokenizing is itself linear in the text (about 1.5 µs a token on these cores): under a budget a segment longer than
# SCAN_CHARS is tokenized only in blocks of BLOCK_CHARS: its first and last, then middle blocks ranked by attack
# words (SCAN_KEYS, counted with str.find: C speed) or spread evenly, up to SCAN_CHARS in all.
SCAN_CHARS = 16_000
BLOCK_CHARS = 2_000
SCAN_KEYS = ("ignore", "disregard", "instructions", "pretend", "jailbreak", "override", "bypass", "unrestricted",
             "forget", "developer mode", "system prompt", "no rules")


def scan_blocks(text: str, rank: bool) -> list[tuple[int, int]]:
    """The character ranges of one segment to tokenize under a budget (the whole text when it is short enough)."""
    if len(text) <= SCAN_CHARS:
        return [(0, len(text))]
    n = -(-len(text) // BLOCK_CHARS)
    score = [0] * n
    if rank:
        low = text.lower()
        for key in SCAN_KEYS:
            at = low.find(key)
            while at >= 0:
                score[at // BLOCK_CHARS] += 1
                at = low.find(key, at + len(key))
    middle = sorted(range(1, n - 1), key=lambda b: (-score[b], _spread(b - 1)))
    keep = sorted([0, n - 1, *middle[:SCAN_CHARS // BLOCK_CHARS - 2]])
    return [(b * BLOCK_CHARS, min(len(text), (b + 1) * BLOCK_CHARS)) for b in keep]
