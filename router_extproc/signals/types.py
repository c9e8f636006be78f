from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class PIIEntity:
    type: str        # e.g. "EMAIL_ADDRESS"
    start: int       # char offsets into the text of the Read it was found in
    end: int
    score: float
    read: int = 0    # index of that Read in the request's plan (inputs.plan; 0: the latest turn or a bare text)


@dataclass(frozen=True, slots=True)
class Signals:
    embedding: np.ndarray          # float32 (384,), L2-normalized
    category: str                  # one of the 14
    category_confidence: float     # calibrated probability of `category`
    complexity: float              # P(needs reasoning) in [0,1]
    jailbreak: float               # attack score in [0,1] of the jailbreak-scanned text (0: none): max over windows
    pii: tuple[PIIEntity, ...]
    tokens: int                    # tokens of the latest turn as tokenized (a huge turn: its scanned blocks)
    injection: float = 0.0         # the same detectors over tool results and documents (inputs.py), 0: none
    unread_tokens: int = 0         # tokens no window read because of the budget (0: every segment read whole)
    operator_names: frozenset[str] = frozenset()   # words of the persona's names (inputs.operator_names), casefolded

    @property
    def pii_types(self) -> frozenset[str]:
        return frozenset(e.type for e in self.pii)
