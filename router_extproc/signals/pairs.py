"""A (query, candidate) pair as one encoder row, for the cache's hit verifier.

The verifier is trained on rows built by this function (models/build_verifier.py hashes this file into its
recipe), so the router and the training read a pair the same way."""
from __future__ import annotations

PAIR_TOKENS = 128  # [CLS] a [SEP] b [SEP] included: the heads' training length


def pair_row(a_ids: list[int], b_ids: list[int], cls: int, sep: int, max_tokens: int = PAIR_TOKENS) -> list[int]:
    """[CLS] a [SEP] b [SEP] in at most ``max_tokens``. A text too long for its share keeps its end: in a
    conversation key the latest message comes last."""
    budget = max_tokens - 3
    ia, ib = list(a_ids), list(b_ids)
    if len(ia) + len(ib) > budget:
        half = budget // 2
        if len(ia) <= half:
            ib = ib[len(ib) - (budget - len(ia)):]
        elif len(ib) <= half:
            ia = ia[len(ia) - (budget - len(ib)):]
        else:
            ia, ib = ia[len(ia) - half:], ib[len(ib) - (budget - half):]
    return [cls, *ia, sep, *ib, sep]
