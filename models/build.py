"""Build the signal models:  python -m models.build [--out DIR] [--force]

Outputs are cached in ${ROUTER_EXTPROC_CACHE:-~/.cache/router-extproc}/models/<recipe-hash>/ and
models/dist is a symlink to that directory. A second build with the same recipe is instant.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE_VERSION = 3
SEED = 1234
PINNED = ("torch", "onnx", "onnxruntime", "tokenizers", "numpy", "faker", "pandas", "pyarrow", "pyyaml")
log = logging.getLogger("models.build")


def cache_root() -> Path:
    return Path(os.environ.get("ROUTER_EXTPROC_CACHE") or Path.home() / ".cache" / "router-extproc") / "models"


def _ver(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def recipe_hash(data_versions: dict[str, str]) -> str:
    h = hashlib.sha256()
    h.update(f"recipe={RECIPE_VERSION};seed={SEED};py={sys.version_info[:2]}".encode())
    for p in sorted(HERE.iterdir()):
        # build_verifier.py has its own recipe (models/build_verifier.py): editing it must not retrain the heads.
        if (p.is_file() and p.suffix in (".py", ".txt", ".jsonl", ".md")
                and p.name not in ("MODEL_CARD.md", "build_verifier.py")):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    # What the build shares with the runtime has one home, router_extproc/signals/spec.py: the graph's output
    # names, and the runtime files whose rules the build trains or calibrates through (the window rule).
    from router_extproc.signals.spec import ALL_OUTPUTS, RECIPE_RUNTIME_FILES

    h.update(repr(ALL_OUTPUTS).encode())
    for rel in RECIPE_RUNTIME_FILES:
        h.update((HERE.parent / rel).read_bytes())
    qqp = HERE / "data" / "qqp-dev.jsonl.gz"  # the held-out benign questions the build evaluates on
    h.update(qqp.read_bytes() if qqp.exists() else b"no-qqp")
    for d in PINNED:
        h.update(f"{d}={_ver(d)}".encode())
    for d, v in sorted(data_versions.items()):
        h.update(f"{d}={v}".encode())
    return h.hexdigest()[:16]


def link_dist(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(link.name + ".tmp-link")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(target)
    if link.exists() and not link.is_symlink():
        shutil.rmtree(link)
    os.replace(tmp, link)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m models.build", description=__doc__)
    ap.add_argument("--out", type=Path, default=HERE / "dist", help="symlink to create (default models/dist)")
    ap.add_argument("--force", action="store_true", help="rebuild even if the cache has this recipe")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("root").setLevel(logging.ERROR)

    from .data import MissingPackageError, check_packages

    try:
        versions = check_packages()
    except MissingPackageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    key = recipe_hash(versions)
    final = cache_root() / key
    if (final / "metrics.json").exists() and not args.force:
        link_dist(final, args.out)
        print(f"models: cached build {key} -> {args.out}")
        return 0
    cache_root().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root()))
    t0 = time.time()
    try:
        from .recipe import run_recipe

        run_recipe(tmp, versions, key, threads=args.threads, seed=SEED)
        (tmp / "build.json").write_text(json.dumps({
            "recipe": key, "seconds": round(time.time() - t0, 1), "platform": platform.platform(),
            "cpus": os.cpu_count(), "threads": args.threads}, indent=1))
        if final.exists():
            old = final.with_name(final.name + f".old-{os.getpid()}")
            os.replace(final, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    link_dist(final, args.out)
    print(f"models: built {key} in {time.time() - t0:.0f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
