"""Signal-model benchmark: latency p50/p99 at 50 and 512 tokens, batch-16 throughput, micro-batched
throughput under concurrency, and the held-out accuracy figures measured by the build (metrics.json).

    python tests/bench/bench_signals.py [--model-dir models/dist] [--device cpu] [--threads 2]
                                        [--doc docs/signals.md] [--json out.json] [--no-doc]
Writes docs/signals.md and plots under docs/img/ (confusion matrix, ROC, latency).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from router_extproc.signals import SignalEngine  # noqa: E402
from tests.helpers import write_section  # noqa: E402

START, END = "<!-- bench_signals:start -->", "<!-- bench_signals:end -->"

WORDS = ("the committee reviewed quarterly revenue figures and asked whether the new pricing model would "
         "improve retention among small business customers in northern regions during winter").split()


def text_of_tokens(eng: SignalEngine, n: int) -> str:
    words, i = [], 0
    while True:
        words.append(WORDS[i % len(WORDS)])
        i += 1
        t = " ".join(words)
        if len(eng.tokenizer.encode(t, add_special_tokens=False).ids) >= n - 2:
            return t


def _times(fn, n: int) -> list[float]:
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1000)
    return ts


def _stats(ts: list[float]) -> dict:
    ts = sorted(ts)
    return {"p50_ms": round(statistics.median(ts), 2), "p99_ms": round(ts[min(len(ts) - 1, int(0.99 * len(ts)))], 2),
            "mean_ms": round(statistics.fmean(ts), 2), "n": len(ts), "samples": [round(x, 3) for x in ts]}


def latency_of(fn, n: int, warm: int = 10) -> dict:
    for _ in range(warm):
        fn()
    return _stats(_times(fn, n))


def interleaved(cases: dict[str, tuple], rounds: int = 5, warm: int = 10) -> dict[str, dict]:
    """Latency of several cases measured in alternating rounds. These shared cores drift by tens of percent
    within minutes, so one block per case let one slow stretch decide a target; pooled over rounds, with each
    round's p50 reported, the drift shows instead of hiding in one case's figure."""
    for fn, _ in cases.values():
        for _ in range(warm):
            fn()
    parts: dict[str, list[list[float]]] = {k: [] for k in cases}
    for _ in range(rounds):
        for k, (fn, n) in cases.items():
            parts[k].append(_times(fn, max(1, n // rounds)))
    return {k: {**_stats([t for p in ps for t in p]), "round_p50_ms": [round(statistics.median(p), 2) for p in ps]}
            for k, ps in parts.items()}


def throughput(eng: SignalEngine, texts: list[str], rounds: int) -> dict:
    eng.analyze_batch(texts)
    t = time.perf_counter()
    for _ in range(rounds):
        eng.analyze_batch(texts)
    dt = time.perf_counter() - t
    return {"texts_per_s": round(rounds * len(texts) / dt, 1), "batch_ms": round(dt / rounds * 1000, 2)}


async def concurrent(eng: SignalEngine, texts: list[str]) -> dict:
    await asyncio.gather(*(eng.analyze(t) for t in texts[:16]))
    b0, i0 = eng._batcher.batches, eng._batcher.items
    t = time.perf_counter()
    await asyncio.gather(*(eng.analyze(t) for t in texts))
    dt = time.perf_counter() - t
    nb = eng._batcher.batches - b0
    return {"callers": len(texts), "texts_per_s": round(len(texts) / dt, 1),
            "mean_batch": round((eng._batcher.items - i0) / max(1, nb), 2)}


def plots(metrics: dict, lat: dict, img: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img.mkdir(parents=True, exist_ok=True)
    out = []
    labels = json.loads((Path(metrics["_model_dir"]) / "labels.json").read_text())
    cats = labels["categories"]
    cm = np.array(metrics["domain"]["confusion_question_only"], dtype=float)
    cmn = cm / cm.sum(1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(8, 7))
    ax.imshow(cmn, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cats)), cats, rotation=60, ha="right")
    ax.set_yticks(range(len(cats)), cats)
    for i in range(len(cats)):
        for j in range(len(cats)):
            if cm[i, j]:
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if cmn[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"Domain, held-out MMLU (question only), acc {metrics['domain']['mmlu_test_accuracy_question_only']}")
    fig.tight_layout()
    fig.savefig(img / "signals_confusion.png", dpi=110)
    plt.close(fig)
    out.append("signals_confusion.png")
    r = metrics["jailbreak"]["roc"]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(r["fpr"], r["tpr"])
    ax.axvline(0.02, color="grey", ls="--", lw=0.8)
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xlabel("FPR (held-out benign incl. MMLU)")
    ax.set_ylabel("TPR")
    ax.set_title(f"Jailbreak ROC (AUC {metrics['jailbreak']['auc']})")
    fig.tight_layout()
    fig.savefig(img / "signals_jailbreak_roc.png", dpi=110)
    plt.close(fig)
    out.append("signals_jailbreak_roc.png")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for k, v in lat.items():
        ax.hist(v["samples"], bins=40, alpha=0.6, label=k)
    ax.set_xlabel("ms per request (all signals)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(img / "signals_latency.png", dpi=110)
    plt.close(fig)
    out.append("signals_latency.png")
    return out


def write_doc(path: Path, res: dict, metrics: dict, imgs: list[str]) -> None:
    d, j, c, p = metrics["domain"], metrics["jailbreak"], metrics["complexity"], metrics["pii"]
    L = res["latency"]
    lines = [
        START, "# Signal model benchmark", "",
        f"Generated by `python tests/bench/bench_signals.py` on {res['machine']} ({res['cpus']} CPUs, "
        f"provider {res['provider']}, {res['threads']} threads), model recipe `{metrics['recipe']}`.", "",
        "## Latency and throughput (all signals from one ONNX pass)", "",
        "| case | p50 ms | p99 ms | target p50 |", "|---|---|---|---|",
        f"| 50 tokens, 1 request | {L['50_tokens']['p50_ms']} | {L['50_tokens']['p99_ms']} | <= 5 |",
        f"| 512 tokens, 1 request | {L['512_tokens']['p50_ms']} | {L['512_tokens']['p99_ms']} | <= 40 |", "",
        *([f"Measured in {len(L['50_tokens']['round_p50_ms'])} alternating rounds (the cores are shared and drift); "
           f"each round's p50: 50 tokens {L['50_tokens']['round_p50_ms']} ms, 512 tokens "
           f"{L['512_tokens']['round_p50_ms']} ms.", ""] if "round_p50_ms" in L["50_tokens"] else []),
        f"* batch of 16 x 50-token prompts: {res['batch16']['texts_per_s']} prompts/s ({res['batch16']['batch_ms']} ms per batch)",
        f"* micro-batched `analyze()` with {res['concurrent']['callers']} concurrent callers: "
        f"{res['concurrent']['texts_per_s']} prompts/s, mean batch {res['concurrent']['mean_batch']}",
        f"* fp32 vs int8 embedding cosine: {metrics['fp32_int8_embedding_cosine']}",
        "* prompts longer than one window run as overlapping windows of up to 128 tokens (the heads' training "
        "length), each only as long as the cover needs: a 512-token prompt is five 117-token rows in one batch, "
        "cheaper than one 512-position row because attention is quadratic in the row length; jailbreak takes the "
        "max over windows, PII decodes every window",
        "* the int8 graph quantizes activations dynamically with one scale per tensor, that is per session run, so a "
        "prompt's outputs moved with the prompts batched beside it (one question alone vs beside 8 others, embedding "
        "cosine 0.993; 3 of 1,139 traffic verdicts flipped at 16 a run). A verdict must not depend on other users' "
        "traffic, so on that graph the runtime runs each request's rows apart from other requests' (engine.py): the "
        "batch of 16 above is 16 runs and the micro-batcher hands on one request at a time (mean batch 1); the fp16 "
        "GPU graph has no data-dependent scale and shares runs. The same holds for the build's frozen features, so the build "
        "caches them per exact data set and extracts each set in the same batches: a build on a fresh machine "
        "reproduces the held-out figures below exactly (they moved by up to 0.005 when builds shared features)", "",
        "## Held-out accuracy (measured by the build through the runtime, test splits only)", "",
        "| signal | metric | value | target |", "|---|---|---|---|",
        f"| domain | MMLU test accuracy, question only (n={d['mmlu_test_n']}) | {d['mmlu_test_accuracy_question_only']} | >= 0.85 |",
        f"| domain | MMLU test accuracy, with options | {d['mmlu_test_accuracy_with_options']} | |",
        f"| domain | out-of-distribution accuracy (n={d['ood_n']}) | {d['ood_accuracy']} | >= 0.80 |",
        f"| jailbreak | TPR / FPR at calibrated threshold | {j['test_tpr_at_threshold']} / {j['test_fpr_at_threshold']} | >= 0.95 / <= 0.02 |",
        f"| jailbreak | AUC | {j['auc']} | |",
        f"| complexity | accuracy on held-out labels (n={c['test_n']}) | {c['test_accuracy']} | |",
        f"| complexity | accuracy OOD (n={c['ood_n']}) | {c['ood_accuracy']} | |",
        f"| PII | precision / recall, all types | {p['iou50']['ALL']['precision']} / {p['iou50']['ALL']['recall']} | >= 0.90 / 0.90 |",
        f"| PII | MMLU test questions with any entity | {p['mmlu_test_questions_with_any_entity']} | |", "",
        "OOD domain accuracy by source: " + ", ".join(f"{k} {v['accuracy']} (n={v['n']})" for k, v in d["ood_accuracy_by_source"].items()), "",
        "Per-category F1 (MMLU test, question only):", "",
        "| category | F1 |", "|---|---|",
        *[f"| {k} | {v} |" for k, v in d["per_category_f1_question_only"].items()], "",
        "Jailbreak FPR by benign source: " + ", ".join(f"{k} {v}" for k, v in j["fpr_by_source"].items()), "",
        "Jailbreak TPR by attack source: " + ", ".join(f"{k} {v}" for k, v in j["tpr_by_source"].items()), "",
        *([f"Benign traffic outside the jailbreak test set, at the same threshold: Quora questions never read "
           f"(QQP rows 20,000 onward, n={j['qqp_questions_n']}) flagged {j['qqp_questions_flagged']}; ~1,000-token "
           f"prompts made of them flagged {j['long_qqp_1000_tokens_flagged']}, made of MMLU test questions "
           f"{j['long_mmlu_1000_tokens_flagged']} (n={j['long_n']} each). A long prompt is flagged when any one of "
           "its windows is.", ""] if "qqp_questions_flagged" in j else []),
        *([f"Short test attacks (<= 64 tokens, n={j['short_attacks_n']}) detected alone "
           f"{j['short_attacks_alone_detected']}; pasted between the questions of those ~1,000-token prompts "
           f"{j['short_attack_in_long_qqp_detected']} (Quora) and {j['short_attack_in_long_mmlu_detected']} (MMLU), "
           "by the higher of the pooled head's and the span head's scores (docs/operations.md).", ""]
          if "short_attacks_n" in j else []),
        "PII per type (held-out templates; same type and char IoU >= 0.5):", "",
        "| type | precision | recall | n |", "|---|---|---|---|",
        *[f"| {k} | {v['precision']} | {v['recall']} | {v['n_gold']} |" for k, v in p["iou50"].items()], "",
        *[f"![{i}](img/{i})" for i in imgs], "",
    ]
    if res.get("gpu"):
        g = res["gpu"]
        lines += ["## GPU", "",
                  f"{g.get('gpu_name', 'GPU')}, onnxruntime {g.get('onnxruntime', '?')} CUDA provider, "
                  f"`{g.get('model', '?')}`, measured {g.get('date', '?')}: 50 tokens p50 "
                  f"{g['latency']['50_tokens']['p50_ms']} ms, 512 tokens p50 {g['latency']['512_tokens']['p50_ms']} ms, "
                  f"batch 16 {g['batch16']['texts_per_s']} texts/s. CPU/GPU agreement on the held-out splits: "
                  "docs/benchmarks.md, section GPU.", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only this bench's own block: docs/signals.md also holds bench_pii's and bench_traffic's sections.
    write_section(path, START, END, "\n".join(lines + [END]))


def _recipe(model_dir: Path) -> str | None:
    build = model_dir / "build.json"
    return json.loads(build.read_text()).get("recipe") if build.exists() else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=str(ROOT / "models" / "dist"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--doc", default=str(ROOT / "docs" / "signals.md"))
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--gpu-json", default=None, help="merge a GPU run's --json output into the doc")
    a = ap.parse_args()
    eng = SignalEngine(a.model_dir, device=a.device, threads=a.threads, max_batch_size=16, max_wait_ms=2)
    t50, t512 = text_of_tokens(eng, 50), text_of_tokens(eng, 512)
    lat = interleaved({"50_tokens": (lambda: eng.analyze_batch([t50]), a.n),
                       "512_tokens": (lambda: eng.analyze_batch([t512]), max(25, a.n // 4))})
    if eng.has_pair_features:  # the cache verifier's extra pass: one query against 4 candidates
        q = "How can I learn to play the guitar quickly as an adult?"
        cands = ["What is the fastest way for an adult to learn guitar?", "How do I learn piano as an adult?",
                 "Is it too late to learn guitar at 40?", "What are good guitar songs for beginners?"]
        lat["verifier_pairs_4"] = latency_of(lambda: eng.pair_features_batch([(q, c) for c in cands]), a.n)
    batch = [text_of_tokens(eng, 40 + i) for i in range(16)]
    import onnxruntime

    res = {
        "machine": platform.node() if a.device != "cpu" else platform.processor() or platform.machine(),
        "cpus": os.cpu_count(), "provider": eng.provider, "threads": a.threads, "latency": lat,
        "date": time.strftime("%Y-%m-%d"), "onnxruntime": onnxruntime.__version__, "model": eng.model_file,
        "model_recipe": _recipe(Path(a.model_dir)),
        "batch16": throughput(eng, batch, 30),
        "concurrent": asyncio.run(concurrent(eng, [f"{b} variant {i}" for i in range(4) for b in batch])),
    }
    if a.device != "cpu":
        try:
            import subprocess

            res["gpu_name"] = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                             capture_output=True, text=True).stdout.strip()
        except OSError:
            pass
    summary = {k: ({kk: vv for kk, vv in v.items() if kk != "samples"} if k == "latency" else v) for k, v in res.items()}
    summary["latency"] = {k: {kk: vv for kk, vv in v.items() if kk != "samples"} for k, v in lat.items()}
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1))
    if not a.no_doc:
        metrics = json.loads((Path(a.model_dir) / "metrics.json").read_text())
        metrics["_model_dir"] = a.model_dir
        if a.gpu_json:
            res["gpu"] = json.loads(Path(a.gpu_json).read_text())
        imgs = plots(metrics, lat, Path(a.doc).parent / "img")
        write_doc(Path(a.doc), res, metrics, imgs)
        print(f"wrote {a.doc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
