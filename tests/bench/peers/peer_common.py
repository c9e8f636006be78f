"""What both peer scripts need, standard library only (they run inside .bench-venv, started by bench_peers.py as
plain scripts, so this sibling module is importable by name)."""

from __future__ import annotations

import sys
import time
from importlib import metadata


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
