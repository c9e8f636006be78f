"""A word-for-word English gloss of a support turn in another language, for the custom routes (routes.py).

The signal encoder (all-MiniLM-L6-v2) reads English only: a French or Spanish turn is word pieces to it, so the
routes' language gate keeps such a turn from every route whose examples are English. Most of a support turn's
meaning sits in a few everyday words (order, parcel, invoice, password, refund, crashes) and in its function words
(my, not, since, still), which a short table carries across word by word: "Mon colis n'est toujours pas arrivé"
reads as "my parcel is still not arrived", which the encoder places beside the routes' English examples. The
table (data/gloss.txt, one section per language) is general support vocabulary, the same for every config, written
without the route sets' rows; a word it does not list is kept as written (names, numbers, and the loanwords that
are English already: "app", "email", "login").

`Glossary.gloss` returns None when too few of the turn's words are known (GLOSS_MIN_COVER): such a turn's gloss
would be its own words again, and the gate keeps it out as before. Pure and deterministic; a dictionary look-up a
word (a 2,000-character turn: tens of µs).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from itertools import islice
from importlib.resources import files

from .thresholds import GLOSS_MIN_COVER

# The turn is read up to this many characters (as the routes' repair reads it) and this many words: the routes read
# the gloss on the event loop (the judge's cues), ~0.6 µs a word; the longest turn of the route sets has 41 words,
# and a turn's first 80 words say what it is about
MAX_CHARS = 2_000
MAX_WORDS = 80
# Words, with an elided article or pronoun split off ("l'email", "n'est", "dov'è" -> "l", "email", ...)
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*|\d+", re.UNICODE)


def _strip(c: str) -> str:
    return "".join(x for x in unicodedata.normalize("NFKD", c) if not unicodedata.combining(x))


# The Latin letters with accents, each to its base letter: one str.translate a word (the gloss runs on the event
# loop when the routes read it: a 2,000-character turn in tens of µs, where a Unicode normalisation a word took ~0.5 ms)
_ACCENTS = {ord(c): _strip(c) for c in map(chr, range(0xC0, 0x250)) if len(_strip(c)) == 1 and _strip(c) != c}
_ACCENTS[ord("ß")] = "ss"


def fold(word: str) -> str:
    """Lower case without accents: the table's keys, and how a turn's words are looked up (customers often type
    without accents)."""
    return word.lower().translate(_ACCENTS)


@dataclass(frozen=True, slots=True)
class Glossary:
    """The shipped tables: language code -> folded word -> English ('' for a dropped particle)."""

    tables: Mapping[str, Mapping[str, str]]

    @classmethod
    def parse(cls, text: str) -> Glossary:
        """`# xx` opens language xx's section; `word = english` lines follow (`-`: dropped). The first entry of a
        word wins; other comment lines are skipped."""
        tables: dict[str, dict[str, str]] = {}
        current: dict[str, str] | None = None
        for line in text.splitlines():
            line = line.strip()
            head = re.fullmatch(r"#\s*([a-z]{2,3})", line)
            if head:
                current = tables.setdefault(head.group(1), {})
            elif line and not line.startswith("#") and current is not None and "=" in line:
                word, english = (p.strip() for p in line.split("=", 1))
                current.setdefault(fold(word), "" if english == "-" else english)
        return cls(tables)

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self.tables)

    def gloss(self, text: str, code: str | None) -> str | None:
        """The turn in English words, or None: no table for `code`, or fewer than GLOSS_MIN_COVER of its words
        known (numbers aside)."""
        table = self.tables.get(code or "")
        if table is None:
            return None
        out: list[str] = []
        known = words = 0
        for m in islice(_WORD.finditer(text[:MAX_CHARS]), MAX_WORDS):
            w = m.group(0)
            if w.isdigit():
                out.append(w)
                continue
            words += 1
            english = table.get(fold(w))
            if english is None:
                out.append(w)
                continue
            known += 1
            if english:
                out.append(english)
        if not words or known < GLOSS_MIN_COVER * words:
            return None
        return " ".join(out)


@cache
def shipped() -> Glossary:
    """data/gloss.txt, parsed once per process."""
    return Glossary.parse(files(__package__).joinpath("data", "gloss.txt").read_text(encoding="utf-8"))
