"""PII span decoding from token tags, plus validators for structured types (Luhn, IBAN mod-97, regexes)."""
from __future__ import annotations

import re

import numpy as np

EMAIL_RE = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
IPV4_RE = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.]*\d)")
IPV6_RE = re.compile(r"(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![:\w])|(?<![:\w])(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{1,4}(?![:\w])")
CARD_RE = re.compile(r"(?<![\d-])(?:\d[ -]?){11,18}\d(?![\d-])")
IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
SSN_RE = re.compile(r"(?<![\d-])(\d{3})-(\d{2})-(\d{4})(?![\d-])")
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{3}[ .-])\d{3}[ .-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?!\w)"
)

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
    for m in EMAIL_RE.finditer(text):
        out.append((m.start(), m.end(), "EMAIL_ADDRESS", 0.99))
    for m in IPV4_RE.finditer(text):
        out.append((m.start(), m.end(), "IP_ADDRESS", 0.97))
    for m in IPV6_RE.finditer(text):
        if m.group(0).count(":") >= 2:
            out.append((m.start(), m.end(), "IP_ADDRESS", 0.95))
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


def decode_tags(probs: np.ndarray, offsets: list[tuple[int, int]], tags: tuple[str, ...], threshold: float
                ) -> list[tuple[int, int, str, float]]:
    """probs: [n_tokens, n_tags] for content tokens only; offsets: char offsets of those tokens."""
    p_ent = 1.0 - probs[:, 0]
    best = probs[:, 1:].argmax(1) + 1
    ents: list[list] = []  # [start_tok, end_tok, type, scores]
    prev_end = None
    for i, (pe, b) in enumerate(zip(p_ent, best)):
        if pe < threshold or offsets[i][1] <= offsets[i][0]:
            prev_end = None
            continue
        bio, typ = tags[b].split("-", 1)
        cont = (ents and prev_end == i - 1 and ents[-1][2] == typ
                and (bio == "I" or _same_word(offsets, i)))
        if cont:
            ents[-1][1] = i
            ents[-1][3].append(pe)
        else:
            ents.append([i, i, typ, [pe]])
        prev_end = i
    out = []
    for a, b, typ, sc in ents:
        out.append((offsets[a][0], offsets[b][1], typ, float(np.mean(sc))))
    return out


def _same_word(offsets: list[tuple[int, int]], i: int) -> bool:
    return i > 0 and offsets[i][0] == offsets[i - 1][1]


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def combine(text: str, model_ents: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    rx = regex_entities(text)
    out = list(rx)
    for s, e, typ, sc in model_ents:
        s, e = snap(text, s, e)
        if e <= s:
            continue
        if any(_overlap((s, e), (r[0], r[1])) for r in rx):
            continue  # validated match wins
        span = text[s:e]
        if typ in ("EMAIL_ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE"):
            continue  # these types need a validated match
        if typ == "US_SSN" and len(re.sub(r"\D", "", span)) != 9:
            continue
        if typ == "PHONE_NUMBER" and len(re.sub(r"\D", "", span)) < 7:
            continue
        if typ == "PERSON" and not any(c.isalpha() for c in span):
            continue
        out.append((s, e, typ, sc))
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
    return merged
