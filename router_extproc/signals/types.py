from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class PIIEntity:
    type: str        # e.g. "EMAIL_ADDRESS"
    start: int       # char offsets into the analyzed text
    end: int
    score: float


@dataclass(frozen=True, slots=True)
class Signals:
    embedding: np.ndarray          # float32 (384,), L2-normalized
    category: str                  # one of the 14
    category_confidence: float     # calibrated probability of `category`
    complexity: float              # P(needs reasoning) in [0,1]
    jailbreak: float               # attack score in [0,1]: max over windows of two detectors (engine.py)
    pii: tuple[PIIEntity, ...]
    tokens: int                    # token count of the full text (without [CLS]/[SEP])

    @property
    def pii_types(self) -> frozenset[str]:
        return frozenset(e.type for e in self.pii)
