"""Offline classification: one JSON object per input prompt (plain lines or JSONL with a `text` field)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, TextIO


def _texts(lines: Iterable[str]):
    for line in lines:
        s = line.rstrip("\n")
        if not s.strip():
            continue
        if s.lstrip().startswith("{"):
            try:
                obj = json.loads(s)
            except json.JSONDecodeError:
                yield s
                continue
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                yield obj["text"]
                continue
        yield s


def run_classify(model_dir: str | Path, lines: Iterable[str], out: TextIO, device: str = "auto",
                 batch_size: int = 16) -> int:
    from .engine import SignalEngine

    eng = SignalEngine(model_dir, device=device)
    n = 0
    buf: list[str] = []

    def flush() -> None:
        nonlocal n
        for t, s in zip(buf, eng.analyze_batch(buf)):
            out.write(json.dumps({
                "text": t if len(t) <= 80 else t[:77] + "...",
                "category": s.category,
                "confidence": round(s.category_confidence, 4),
                "complexity": round(s.complexity, 4),
                "jailbreak": round(s.jailbreak, 4),
                "pii": [{"type": e.type, "start": e.start, "end": e.end, "score": round(e.score, 4)} for e in s.pii],
            }, ensure_ascii=False) + "\n")
            n += 1
        buf.clear()

    for t in _texts(lines):
        buf.append(t)
        if len(buf) >= batch_size:
            flush()
    if buf:
        flush()
    out.flush()
    return 0
