"""What both peer scripts need, numpy and the standard library only (they run inside .bench-venv, started by
bench_peers.py as plain scripts, so this sibling module is importable by name)."""

from __future__ import annotations

import json
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np


def inputs(data: Path, name: str, rows: str) -> tuple[list[str], np.ndarray, list[Any]]:
    """What bench_peers.py wrote to DATA_DIR for one peer: ``<name>_texts.jsonl`` (one JSON string a line),
    ``<name>_emb.npy`` (our encoder's normalized embeddings, same order) and ``<name>_<rows>.jsonl``."""
    texts = [json.loads(line) for line in open(data / f"{name}_texts.jsonl", encoding="utf-8")]
    emb = np.load(data / f"{name}_emb.npy").astype(np.float32)
    return texts, emb, [json.loads(line) for line in open(data / f"{name}_{rows}.jsonl", encoding="utf-8")]


def versions(*packages: str) -> dict[str, str]:
    """The installed version of each package present (the result files name what was measured)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def progress(peer: str, n: int, total: int, every: int, started: float, what: str = "") -> None:
    """A line on stderr every `every` items (stdout carries the one JSON result)."""
    if n and n % every == 0:
        print(f"{peer}: {n}/{total}{what} in {time.time() - started:.0f}s", file=sys.stderr, flush=True)
