"""PII span decoding from token tags, plus validators for structured types (Luhn, IBAN mod-97, regexes)."""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
IPV4_RE = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.]*\d)")
IPV6_RE = re.compile(r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![:\w])|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}(?![:\w])")
CARD_RE = re.compile(r"(?<![\d-])(?:\d[ -]?){11,18}\d(?![\d-])")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN_RE = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
PHONE_RE = re.compile(
    r"(?<![\w+])(?:"
    # North-American style groups, optionally after an international prefix: (212) 555-0199, 001-428-583-3841,
    # +1-502-762-0191x229
    r"(?:(?:\+|00)\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    # "+" country code then 7-13 digits in any grouping: +34 976654393, +49(0)3944 117715, +33 (0)3 62 94 41 17
    r"|\+\d{1,3}(?:[ .-]?\(0\))?[ .-]?\d(?:[ .-]?\d){6,12}"
    r")(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)"
)
# Dates are not phone numbers (a model span "1995-06-26" typed PHONE_NUMBER or STREET_ADDRESS is dropped).
DATE_RE = re.compile(r"(?<![\d./-])(?:\d{4}([-/.])\d{1,2}\1\d{1,2}|\d{1,2}([-/.])\d{1,2}\2\d{2,4})(?![./-]?\d)")
# A model span made only of phone-number characters (digits, + ( ) . - spaces, an extension).
PHONE_CHARS_RE = re.compile(r"\+?[\d\s().-]+(?:\s?(?:x|ext\.?)\s?\d{1,5})?")
_DIGIT_RE = re.compile(r"\d")
URL_RE = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.I)
# Titles written before a name; a title belongs to the PERSON span ("Dott. Griselda Pace", "Dr X").
TITLES = frozenset("""Dr Dott Dott.ssa Prof Univ.Prof Ing Sig Sig.ra Sig.na Mr Mrs Ms Miss Mx Mme Mlle M Sr Sra Srta
    Hr Fr Herr Frau Rev Dipl.-Ing Mag""".split())
_TITLE_BEFORE = re.compile(r"(?:^|(?<=[\s,;:(\"'>]))([A-Z][A-Za-z.-]{0,8}?)(\.?) $")

VALIDATED = ("EMAIL_ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN")


def luhn_ok(digits: str) -> bool:
    s, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d *= 2
            if d > 9:
                d -= 9
        s += d
        alt = not alt
    return s % 10 == 0


def iban_ok(s: str) -> bool:
    s = s.replace(" ", "").upper()
    if not (15 <= len(s) <= 34) or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    r = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in r)
    return int(num) % 97 == 1


def ssn_ok(a: str, g: str, s: str) -> bool:
    return a not in ("000", "666") and not a.startswith("9") and g != "00" and s != "0000"


def regex_entities(text: str) -> list[tuple[int, int, str, float]]:
    out: list[tuple[int, int, str, float]] = []
    if "@" in text:
        for m in EMAIL_RE.finditer(text):
            out.append((m.start(), m.end(), "EMAIL_ADDRESS", 0.99))
    if ":" in text:
        for m in IPV6_RE.finditer(text):
            if m.group(0).count(":") >= 2:
                out.append((m.start(), m.end(), "IP_ADDRESS", 0.95))
    if _DIGIT_RE.search(text) is None:
        return out  # every other pattern needs a digit: most prompts skip five scans of the text
    for m in IPV4_RE.finditer(text):
        out.append((m.start(), m.end(), "IP_ADDRESS", 0.97))
    for m in CARD_RE.finditer(text):
        d = re.sub(r"\D", "", m.group(0))
        if 12 <= len(d) <= 19 and luhn_ok(d) and len(set(d)) > 1:
            out.append((m.start(), m.end(), "CREDIT_CARD", 0.99))
    for m in IBAN_RE.finditer(text):
        if iban_ok(m.group(0)):
            out.append((m.start(), m.end(), "IBAN_CODE", 0.99))
    for m in SSN_RE.finditer(text):
        if ssn_ok(*m.groups()):
            out.append((m.start(), m.end(), "US_SSN", 0.9))
    for m in PHONE_RE.finditer(text):
        out.append((m.start(), m.end(), "PHONE_NUMBER", 0.85))
    return out


_TRAIL = " \t\n,.;:!?)]}>\"'"
_LEAD = " \t\n,;:([{<\"'"


def snap(text: str, s: int, e: int) -> tuple[int, int]:
    while s > 0 and text[s - 1].isalnum():
        s -= 1
    while e < len(text) and text[e].isalnum():
        e += 1
    while e > s and text[e - 1] in _TRAIL:
        e -= 1
    while s < e and text[s] in _LEAD:
        s += 1
    return s, e


class Piece(NamedTuple):
    """One word of a decoded entity. A `glued` piece continues the previous one (its first token has an I- tag);
    `combine` joins pieces into entities once the text is known."""
    start: int
    end: int
    type: str
    score: float  # mean P(not O) over the tokens
    glued: bool
    mass: dict  # type -> summed probability over the tokens
    n: int  # tokens


def decode_tags(probs: np.ndarray, offsets: list[tuple[int, int]], tags: tuple[str, ...], threshold: float
                ) -> list[Piece]:
    """probs: [n_tokens, n_tags] for content tokens only; offsets: char offsets of those tokens.

    A token with P(not O) >= threshold is inside an entity; a B- tag (on a new word) starts a new entity, an I- tag
    or a word piece continues the previous one whatever its type. Returns the entities as pieces (see `Piece`);
    `combine` gives each entity the type with the most probability mass over its tokens, so "Callejon de Paulina
    Frutos" stays one address even where the last word alone looks like a surname."""
    p_ent = 1.0 - probs[:, 0]
    if not len(p_ent) or p_ent.max() < threshold:
        return []  # the common case: no token is inside an entity
    best = probs[:, 1:].argmax(1) + 1
    types = sorted({t.split("-", 1)[1] for t in tags[1:]}, key=lambda t: tags.index("B-" + t))
    tcols = np.stack([probs[:, [tags.index("B-" + t), tags.index("I-" + t)]].sum(1) for t in types], 1)
    runs: list[list] = []  # one per word: [start_tok, end_tok, glued, scores]
    prev_end = None
    for i, (pe, b) in enumerate(zip(p_ent, best)):
        if pe < threshold or offsets[i][1] <= offsets[i][0]:
            prev_end = None
            continue
        bio = tags[b].split("-", 1)[0]
        if runs and prev_end == i - 1 and _same_word(offsets, i):
            runs[-1][1] = i  # word pieces stay in their word
            runs[-1][3].append(pe)
        else:
            runs.append([i, i, bool(runs) and prev_end == i - 1 and bio == "I", [pe]])
        prev_end = i
    out = []
    for a, b, glued, sc in runs:
        m = tcols[a:b + 1].sum(0)
        out.append(Piece(offsets[a][0], offsets[b][1], types[int(m.argmax())], float(np.mean(sc)), glued,
                         dict(zip(types, m.tolist())), b - a + 1))
    return out


def _entities(text: str, model_ents: list) -> list[tuple[int, int, str, float]]:
    """Join glued pieces into entities typed by their summed probability mass. A line break ends an entity where
    the next piece's type differs from the entity's so far (a name line above an address line: two entities)."""
    out: list[tuple[int, int, str, float]] = []
    group: list[Piece] = []

    def flush() -> None:
        if group:
            n = sum(p.n for p in group)
            out.append((group[0].start, group[-1].end, _heaviest_type(group), sum(p.score * p.n for p in group) / n))
            group.clear()

    for ent in model_ents:
        if not isinstance(ent, Piece):
            flush()
            out.append(tuple(ent[:4]))
            continue
        if ent.glued and group and ("\n" not in text[group[-1].end:ent.start] or ent.type == _heaviest_type(group)):
            group.append(ent)
            continue
        flush()
        group.append(ent)
    flush()
    return out


def _heaviest_type(group: list[Piece]) -> str:
    """The type with the most probability mass summed over a group of pieces."""
    mass: dict[str, float] = {}
    for p in group:
        for t, v in p.mass.items():
            mass[t] = mass.get(t, 0.0) + v
    return max(mass, key=mass.__getitem__)


def _same_word(offsets: list[tuple[int, int]], i: int) -> bool:
    return i > 0 and offsets[i][0] == offsets[i - 1][1]


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _phone_like(span: str) -> bool:
    digits = len(re.sub(r"\D", "", span))
    return 7 <= digits <= 15 and PHONE_CHARS_RE.fullmatch(span) is not None and not DATE_RE.search(span)


def _is_title(word: str) -> bool:
    return word.rstrip(".") in TITLES


def _model_span(text: str, s: int, e: int, typ: str) -> tuple[int, int, str] | None:
    """Type-specific checks of one snapped model span; returns the (possibly retyped/extended) span or None."""
    span = text[s:e]
    if typ in ("EMAIL_ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE"):
        return None  # these types need a validated match
    if typ == "US_SSN" and len(re.sub(r"\D", "", span)) != 9:
        return None
    if typ == "STREET_ADDRESS" and not any(c.isalpha() for c in span):
        # an address has a street name; a bare number is a phone number or nothing
        if not _phone_like(span):
            return None
        typ = "PHONE_NUMBER"
    if typ == "STREET_ADDRESS" and not any(c.isdigit() or c.isupper() for c in span):
        return None  # neither a number nor a capitalised name ("traffic", "y/o") is not an address
    if typ == "PHONE_NUMBER":
        if len(re.sub(r"\D", "", span)) < 7 or DATE_RE.search(span):
            return None
        if s > 0 and text[s - 1] == "+":
            s -= 1  # the international prefix belongs to the number
    if typ == "PERSON":
        if not any(c.isalpha() for c in span) or _is_title(span):
            return None
        m = _TITLE_BEFORE.search(text, max(0, s - 16), s)
        if m and _is_title(m.group(1)):
            s = m.start(1)  # "Dr. |Jane Roe|" -> "|Dr. Jane Roe|"
    return s, e, typ


def _joinable(text: str, a: tuple, b: tuple) -> bool:
    """May two consecutive same-type spans be one entity?"""
    gap = text[a[1]:b[0]]
    if a[2] == "STREET_ADDRESS":
        # parts of one postal address: street, unit, city, postcode, country on separate lines or after commas
        return re.sub(r"\n[ \t]*>+", "\n", gap).strip(" \t\n\r,") == ""
    if a[2] == "PERSON":
        return gap == " " or (gap == ". " and _is_title(text[a[0]:a[1]]))
    return False


def combine(text: str, model_ents: list) -> list[tuple[int, int, str, float]]:
    """Model entities (pieces from `decode_tags`, or plain (start, end, type, score) tuples) + validated regex
    matches -> final entities."""
    rx = regex_entities(text)
    ents = _entities(text, model_ents)
    urls = [(m.start(), m.end()) for m in URL_RE.finditer(text)] if ents else []
    out = list(rx)
    for s, e, typ, sc in ents:
        s, e = snap(text, s, e)
        if e <= s:
            continue
        if any(_overlap((s, e), (r[0], r[1])) for r in rx):
            continue  # validated match wins
        if typ in ("PERSON", "STREET_ADDRESS") and any(_overlap((s, e), u) for u in urls):
            continue  # words inside a URL are not names or addresses
        got = _model_span(text, s, e, typ)
        if got is None:
            continue
        out.append((*got, sc))
    out.sort()
    merged: list[tuple[int, int, str, float]] = []
    for ent in out:
        if merged and _overlap(merged[-1], ent):
            a = merged[-1]
            if a[2] == ent[2]:
                merged[-1] = (a[0], max(a[1], ent[1]), a[2], max(a[3], ent[3]))
            elif ent[3] > a[3]:
                merged[-1] = ent
            continue
        merged.append(ent)
    joined: list[tuple[int, int, str, float]] = []
    for ent in merged:
        if joined and joined[-1][2] == ent[2] and _joinable(text, joined[-1], ent):
            a = joined[-1]
            joined[-1] = (a[0], ent[1], a[2], max(a[3], ent[3]))
            continue
        joined.append(ent)
    return joined
