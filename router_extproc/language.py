"""The `language` signal: which natural language the user wrote in (py3langid, a maintained fork of langid.py:
naive Bayes over byte n-grams, numpy only, 140 labels, ~0.05 ms for a sentence).

Computed once per request, off the event loop (stages/decide.language), and only when a rule reads it. The model
loads in a worker thread (about 2 s, once per process); `warm()` starts that at config load so the first request
does not pay it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .thresholds import LANGUAGE_CONFIDENCE

# What is read: the first characters of the user's text. A prompt's language shows in its first lines, and the
# cost stays bounded (2,000 characters: ~0.2 ms) whatever the prompt's length.
MAX_CHARS = 2_000

# The labels the shipped model can answer (ISO 639-1 where one exists, else 639-3; `zxx`: no linguistic content).
# A config's `language:` predicate must name these; test_rules_language.py checks the list against the model.
LANGUAGES = frozenset("""
af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr ht hu hy id ig
is it ja jv ka kk km kn ko ku ky la lg ln lo lt lv mg mk ml mn mr ms my ne nl no om or pa pl ps pt qu ro ru sa si sk
sl so sq sr sv sw ta te th tl tr ug uk ur uz vi xh yo zh zu zxx ace bcl dz ext gcf gom grc gug hbo kik nso pcm rw se
sn st an ary crh fo fuv gcr guw kab lb lij ltg uzs wa sdh arz ba mt nn oc tg tk tt vec vo wuu yue
""".split())


@dataclass(frozen=True, slots=True)
class Language:
    code: str | None          # None: not sure enough (short or mixed text, code, numbers)
    confidence: float         # the detector's probability for its best label
    # every label's probability of at least SHARE_FLOOR (the custom routes ask how likely the turn is in one of a
    # route's languages, routes.RouteIndex.match)
    shares: Mapping[str, float] = field(default_factory=dict, compare=False, repr=False)

    def share(self, codes: Iterable[str]) -> float:
        """The probability that the text is in one of `codes`."""
        return sum(self.shares.get(c, 0.0) for c in codes)


SHARE_FLOOR = 1e-3   # smaller probabilities are not kept: no route's decision turns on them


class LanguageDetector:
    """One per Router. `detect` is thread-safe (classification reads the model and never changes it)."""

    def __init__(self, min_confidence: float = LANGUAGE_CONFIDENCE) -> None:
        self.min_confidence = min_confidence
        self._model: Any = None
        self._lock = threading.Lock()
        self._warming = False

    def _identifier(self) -> Any:
        with self._lock:
            if self._model is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                self._model = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            return self._model

    def warm(self) -> None:
        """Load the model in a background thread (a request that comes first waits on the lock, in its worker)."""
        if self._model is not None or self._warming:
            return
        self._warming = True
        threading.Thread(target=self._identifier, name="language-model", daemon=True).start()

    def detect(self, text: str) -> Language:
        """Blocking (CPU): call from a worker thread on the request path."""
        ranked = self._identifier().rank(text[:MAX_CHARS])   # one pass, every label's probability, best first
        code, p = ranked[0]
        p = float(p)
        return Language(code if p >= self.min_confidence and code != "zxx" else None, p,
                        {c: float(s) for c, s in ranked if s >= SHARE_FLOOR})
