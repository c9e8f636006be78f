"""Does the GPU path give the CPU path's answers? The fp16 graph on onnxruntime's CUDA provider against the int8
graph on the CPU, on the build's held-out splits (MMLU domain, jailbreak, PII).

Two steps, because a GPU machine may have neither the data packages nor the CPU build's results:

    python tests/bench/gpu_check.py prepare --out .gpu/heldout     # with the data packages: texts, gold, CPU outputs
    python tests/bench/gpu_check.py compare --ref .gpu/heldout --json docs/bench/gpu_check.json   # on the GPU

`compare` reports each held-out figure for both paths (accuracy, TPR/FPR at the shipped threshold, PII P/R) and
how often they agree request by request; `make bench` copies the JSON into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.evaluate import span_prf  # noqa: E402  (numpy only)
from router_extproc.signals import SignalEngine  # noqa: E402


def _outputs(eng: SignalEngine, texts: list[str], bs: int = 32) -> dict:
    cats = list(eng.categories)
    res = []
    for s in range(0, len(texts), bs):
        res += eng.analyze_batch(texts[s:s + bs])
    return {
        "category": np.array([cats.index(r.category) for r in res], dtype=np.int16),
        "jailbreak": np.array([r.jailbreak for r in res], dtype=np.float32),
        "complexity": np.array([r.complexity for r in res], dtype=np.float32),
        "embedding": np.stack([r.embedding for r in res]).astype(np.float32),
        "pii": [[(e.start, e.end, e.type) for e in r.pii] for r in res],
    }


def prepare(a) -> int:
    from models import data as D
    from models.synthetic import pii_sentences

    mmlu = D.load_mmlu()
    te = [r for r in mmlu if r["split"] == "test"]
    jte = [it for it in D.load_jailbreak(mmlu) if it.split == "test"]
    # the build's own call (models/recipe.py), so the test sentences are the ones it evaluated on
    pte = [p for p in pii_sentences({"train": 32, "cal": 16, "test": 24}, seed=1234) if p["split"] == "test"]
    texts = [r["question"] for r in te] + [it.text for it in jte] + [p["text"] for p in pte]
    ref = {
        "n_mmlu": len(te), "n_jb": len(jte), "n_pii": len(pte), "texts": texts,
        "mmlu_gold": [int(r["category"]) for r in te],
        "jb_gold": [int(it.label) for it in jte],
        "pii_gold": [[list(s) for s in p["spans"]] for p in pte],
    }
    eng = SignalEngine(a.model_dir, device="cpu", threads=a.threads)
    t = time.perf_counter()
    out = _outputs(eng, texts)
    ref["cpu_seconds"] = round(time.perf_counter() - t, 1)
    ref["cpu_pii"] = out.pop("pii")
    ref["cpu_provider"] = eng.provider
    ref["cpu_model"] = eng.model_file
    dst = Path(a.out)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.with_suffix(".json").write_text(json.dumps(ref))
    out["embedding"] = out["embedding"][: len(te)].astype(np.float16)  # MMLU questions only: keeps the file small
    np.savez_compressed(dst.with_suffix(".npz"), **out)
    print(f"{len(texts)} held-out texts ({len(te)} MMLU, {len(jte)} jailbreak, {len(pte)} PII), "
          f"CPU pass {ref['cpu_seconds']} s -> {dst}.json/.npz")
    return 0


def _figures(ref: dict, cat: np.ndarray, jb: np.ndarray, pii: list, thr: float, types) -> dict:
    nm, nj = ref["n_mmlu"], ref["n_jb"]
    yj = np.array(ref["jb_gold"])
    flag = jb[nm:nm + nj] >= thr
    prf = span_prf([[tuple(s) for s in g] for g in ref["pii_gold"]], [[tuple(e) for e in p] for p in pii[nm + nj:]],
                   types)
    return {
        "mmlu_accuracy": round(float((cat[:nm] == np.array(ref["mmlu_gold"])).mean()), 4),
        "jailbreak_tpr": round(float(flag[yj == 1].mean()), 4),
        "jailbreak_fpr": round(float(flag[yj == 0].mean()), 4),
        "pii_precision": prf["ALL"]["precision"], "pii_recall": prf["ALL"]["recall"],
    }


def compare(a) -> int:
    src = Path(a.ref)
    ref = json.loads(src.with_suffix(".json").read_text())
    cpu = dict(np.load(src.with_suffix(".npz")))
    eng = SignalEngine(a.model_dir, device=a.device, threads=a.threads)
    texts = ref["texts"]
    _outputs(eng, texts[:64])  # warm-up: CUDA kernels and allocator arenas
    t = time.perf_counter()
    gpu = _outputs(eng, texts)
    secs = time.perf_counter() - t
    nm, nj = ref["n_mmlu"], ref["n_jb"]
    thr = float(eng.labels["thresholds"]["jailbreak"])
    types = list(eng.labels["pii_types"])
    e_cpu = cpu["embedding"].astype(np.float32)
    e_gpu = gpu["embedding"][:nm]
    cos = (e_cpu * e_gpu).sum(1) / np.linalg.norm(e_cpu, axis=1) / np.linalg.norm(e_gpu, axis=1)
    dj = np.abs(cpu["jailbreak"] - gpu["jailbreak"])
    pii_cpu = [sorted(tuple(e) for e in p) for p in ref["cpu_pii"]]
    pii_gpu = [sorted(tuple(e) for e in p) for p in gpu["pii"]]
    res = {
        "n": {"mmlu": nm, "jailbreak": nj, "pii": ref["n_pii"]},
        "gpu": {"provider": eng.provider, "model": eng.model_file, "seconds": round(secs, 2),
                "texts_per_s": round(len(texts) / secs, 1),
                **_figures(ref, gpu["category"], gpu["jailbreak"], gpu["pii"], thr, types)},
        "cpu": {"provider": ref["cpu_provider"], "model": ref["cpu_model"], "seconds": ref["cpu_seconds"],
                **_figures(ref, cpu["category"], cpu["jailbreak"], ref["cpu_pii"], thr, types)},
        "agreement": {
            "category": round(float((cpu["category"] == gpu["category"]).mean()), 4),
            "jailbreak_decision": round(float(((cpu["jailbreak"] >= thr) == (gpu["jailbreak"] >= thr)).mean()), 4),
            "jailbreak_abs_diff_p99": round(float(np.quantile(dj, 0.99)), 4),
            "complexity_decision": round(float(((cpu["complexity"] >= 0.5) == (gpu["complexity"] >= 0.5)).mean()), 4),
            "pii_identical_entities": round(float(np.mean([a_ == b_ for a_, b_ in zip(pii_cpu, pii_gpu)])), 4),
            "embedding_cosine_mean": round(float(cos.mean()), 5),
            "embedding_cosine_min": round(float(cos.min()), 5),
        },
    }
    print(json.dumps(res, indent=1))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", default=str(ROOT / ".gpu" / "heldout"))
    c = sub.add_parser("compare")
    c.add_argument("--ref", default=str(ROOT / ".gpu" / "heldout"))
    c.add_argument("--device", default="cuda")
    c.add_argument("--json", default=None)
    for q in (p, c):
        q.add_argument("--model-dir", default=str(ROOT / "models" / "dist"))
        q.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    return prepare(a) if a.cmd == "prepare" else compare(a)


if __name__ == "__main__":
    raise SystemExit(main())
