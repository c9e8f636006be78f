"""The verifier build is reproducible: one recipe, built twice from an empty cache in different processes (other
hash seeds), gives byte-identical verifier.json and verifier.npz (issue #20)."""

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.build_verifier import embed, pair_rows_features, save_npz

ROOT = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("ROUTER_EXTPROC_MODELS", ROOT / "models" / "dist"))
QQP = ROOT / "models" / "data" / "qqp-dev.jsonl.gz"
needs_models = pytest.mark.skipif(not (MODELS / "encoder.onnx").exists(), reason="models not built (make models)")


def test_save_npz_writes_the_same_bytes_for_the_same_arrays(tmp_path):
    arrays = {"w1_0": np.arange(12, dtype=np.float32).reshape(3, 4), "b2_0": np.ones(1, np.float32)}
    save_npz(tmp_path / "a.npz", arrays)
    save_npz(tmp_path / "b.npz", dict(reversed(list(arrays.items()))))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as z:  # still an ordinary .npz
        assert sorted(z.files) == ["b2_0", "w1_0"] and np.array_equal(z["w1_0"], arrays["w1_0"])


def model_dir(tmp_path: Path, name: str) -> Path:
    """A model directory of links to the built models, without their verifier."""
    d = tmp_path / name
    d.mkdir()
    for f in MODELS.iterdir():
        if not f.name.startswith("verifier."):
            (d / f.name).symlink_to(f.resolve())
    return d


def build(tmp_path: Path, name: str, seed: str, *args: str) -> dict[str, str]:
    md = model_dir(tmp_path, name)
    env = {**os.environ, "PYTHONHASHSEED": seed, "ROUTER_EXTPROC_CACHE": str(tmp_path / f"cache-{name}")}
    subprocess.run([sys.executable, "-m", "models.build_verifier", "--model-dir", str(md), *args], cwd=ROOT,
                   env=env, check=True, capture_output=True, text=True)
    return {f: hashlib.sha256((md / f).read_bytes()).hexdigest() for f in ("verifier.json", "verifier.npz")}


def qqp_rows(n: int) -> list[dict]:
    import json

    with gzip.open(QQP, "rt") as f:
        return [json.loads(next(f)) for _ in range(n)]


@needs_models
def test_the_encoder_passes_give_the_same_bits_on_one_worker_or_two():
    # The build runs its encoder passes on as many single-thread workers as the machine has cores (up to
    # ENCODER_WORKERS): the verifier must not depend on that number.
    rows = qqp_rows(150)
    texts = sorted({r["text_a"] for r in rows})
    assert np.array_equal(embed(texts, MODELS, batch=16, workers=1), embed(texts, MODELS, batch=16, workers=2))
    assert np.array_equal(pair_rows_features(rows[:60], MODELS, batch=16, workers=1),
                          pair_rows_features(rows[:60], MODELS, batch=16, workers=2))


@needs_models
def test_a_tiny_recipe_builds_byte_identical_verifiers_in_two_processes(tmp_path):
    # The embedding recipe on 400 QQP pairs: the same code path (embedding, IDF table, lexical features, seeded
    # deterministic training, threshold, deterministic .npz) as the shipped build, in seconds.
    data = tmp_path / "tiny.jsonl.gz"
    with gzip.open(QQP, "rt") as f:
        lines = [next(f) for _ in range(400)]
    with gzip.GzipFile(data, "wb", mtime=0) as f:
        f.write("".join(lines).encode())
    args = ("--recipe", "embedding", "--data", str(data))
    assert build(tmp_path, "a", "1", *args) == build(tmp_path, "b", "2", *args)


@needs_models
@pytest.mark.reliability
def test_the_shipped_recipe_builds_byte_identical_verifiers_in_two_processes(tmp_path):
    # The whole build, twice, from empty caches: minutes on 2 cores (make test-reliability).
    assert build(tmp_path, "a", "1") == build(tmp_path, "b", "2")
