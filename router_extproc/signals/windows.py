"""How a prompt's tokens are cut into the encoder's rows.

A prompt longer than one window is read as overlapping windows that cover all of it. The build calibrates the
jailbreak span threshold and measures its held-out figures through this rule (models/build.py hashes this file
into the recipe), so a change here is a new model build, not only a new runtime.
"""
from __future__ import annotations

WINDOW_TOKENS = 126  # content tokens per window at most: rows of 128 with [CLS]/[SEP], as the heads were trained
MIN_OVERLAP = 16     # tokens shared by neighbouring windows, so an entity on a boundary is seen whole once


def windows(n: int, size: int = WINDOW_TOKENS, overlap: int = MIN_OVERLAP) -> tuple[list[int], int]:
    """The first token of each window and the windows' common length, for a text of ``n`` content tokens.

    As few windows as cover the text with at least ``overlap`` tokens between neighbours, spread evenly, and each
    only as long as that needs: a 510-token prompt is five windows of 115 tokens, not five of 126 that overlap by
    30. The encoder's cost is mostly per token, so the spare overlap was spare work (about 9 % of that prompt's).
    """
    if n <= size:
        return [0], n
    k = -(-(n - overlap) // (size - overlap))
    width = -(-(n + (k - 1) * overlap) // k)
    # The even step (n - width) / (k - 1) is at most width - overlap, and two rounded starts differ by less than
    # the step plus one: a whole number of tokens no greater than width - overlap, so rounding keeps the overlap.
    return [round(i * (n - width) / (k - 1)) for i in range(k)], width
