"""`make bench` / `make bench-quick`: run every benchmark on this machine, then write docs/benchmarks.md.

Each benchmark saves its figures to docs/bench/<name>.json; this module runs them in order and renders
one document from those files, so every table comes from the same run (the date and versions of each
file are printed with it). A benchmark that cannot run here says why in the document.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from .common import DOCS, MODEL_DIR, RESULTS, ROOT, load, machine, progress

# pii and traffic run after signals: bench_signals rewrites docs/signals.md, they then put their sections back in
STEPS = ["signals", "pii", "traffic", "rules", "routes", "language", "overhead", "cache_speedup", "cache_quality", "savings",
         "peers", "scale", "hostile", "live"]
# bench-quick stays under ~3 minutes: the peers (a separate venv) and scaling (1M-row inserts, a Milvus
# server) only run in the full pass; their last full results are still rendered, with their own dates.
QUICK_STEPS = ["signals", "pii", "overhead", "cache_speedup", "savings"]
# Upper bounds per step (seconds), far above the measured durations (scale with 1M rows: ~17 min).
STEP_TIMEOUT_S = {"scale": 2700, "peers": 1200}


def run_step(name: str, quick: bool) -> None:
    q = ["--quick"] if quick else []
    t0 = time.perf_counter()
    progress(f"=== {name} ===")
    (RESULTS / f"{name}.error").unlink(missing_ok=True)  # an error file describes this run's step, not an old one
    try:
        if name == "signals":
            if not (MODEL_DIR / "encoder.onnx").exists():
                progress("models not built: skipping")
                return
            subprocess.run([sys.executable, str(ROOT / "tests" / "bench" / "bench_signals.py"),
                            "--json", str(RESULTS / "signals.json"), *(["--n", "60"] if quick else []),
                            *(["--gpu-json", str(RESULTS / "gpu.json")] if (RESULTS / "gpu.json").exists() else [])],
                           check=True, cwd=ROOT)
        else:
            # A child process per step: a client library thread that outlives its server (pymilvus after a
            # killed milvus-server) can keep an interpreter from exiting; the figures are saved before that.
            proc = subprocess.run([sys.executable, "-m", f"tests.bench.bench_{name}", *q], cwd=ROOT,
                                  timeout=STEP_TIMEOUT_S.get(name, 1800))
            if proc.returncode != 0:
                raise RuntimeError(f"bench_{name} exited with {proc.returncode}")
    except subprocess.TimeoutExpired as exc:
        saved = (RESULTS / f"{name}.json").exists()
        progress(f"{name} did not exit within {exc.timeout:.0f}s"
                 + ("; its figures were saved before" if saved else ""))
    except Exception as exc:  # one failed benchmark must not lose the others' figures
        progress(f"{name} failed: {exc!r}")
        (RESULTS / f"{name}.error").write_text(repr(exc))
    progress(f"{name} took {time.perf_counter() - t0:.0f}s")


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join("" if v is None else str(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _stamp(d: dict[str, Any]) -> str:
    m = d.get("machine", {})
    if not isinstance(m, dict):
        return f"_Measured on {m}._"
    return f"_Measured {m.get('date', '?')} on {m.get('cpu', '?')} ({m.get('cores', '?')} cores)._"


def section_overhead() -> str:
    d = load("overhead")
    if not d:
        return "Not run."
    rows = d["rows"]
    head = "Zero-latency demo upstream, raw keep-alive HTTP/1.1 client, all on 127.0.0.1.\n\n"
    head += ("router_miss prompts are drawn from disjoint runs of QQP questions, so none repeats or paraphrases "
             "an earlier one; the last column is how the router answered the measured requests (its metrics).\n\n")
    if d.get("summary", {}).get("miss_cache_cost_ms"):
        head += ("At concurrency 1 and 50 tokens the signals-only stack (cache off) and the miss-path stack run side "
                 "by side and are measured in alternating rounds on new questions of the same kind; their rows pool "
                 "the rounds, and miss_cache_cost_ms gives each round's difference of p50s and their median.\n\n")

    def answered(r: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(r.get("outcomes", {}).items()))

    t1 = _table(["scenario", "concurrency", "prompt tokens", "p50 ms", "p99 ms", "req/s", "errors", "router outcomes"],
                [[r["scenario"], r["concurrency"], r["tokens"], r["p50_ms"], r["p99_ms"], r["rps"], r["errors"],
                  answered(r)] for r in rows])
    s = d.get("summary", {})
    tail = "\n\n" + "; ".join(f"{k} = {v}" for k, v in s.items())
    return _stamp(d) + "\n\n" + head + t1 + tail


def _model_file(name: str) -> dict[str, Any]:
    path = MODEL_DIR / name
    return json.loads(path.read_text()) if path.exists() else {}


def _check(value: Any, ok: bool | None) -> str:
    return "not measured" if value is None else ("met" if ok else "**missed**")


def section_targets() -> str:
    """One row per target the issues set, read from the same files the sections below render."""
    ov, sig = load("overhead") or {}, load("signals") or {}
    metrics, verifier = _model_file("metrics.json"), _model_file("verifier.json")

    def ov_row(scenario: str, conc: int, tokens: int = 50) -> dict[str, Any]:
        return next((r for r in ov.get("rows", []) if r["scenario"] == scenario and r["concurrency"] == conc
                     and r["tokens"] == tokens), {})

    rows: list[list[Any]] = []

    def add(target: str, value: Any, ok: bool | None, shown: str | None = None) -> None:
        rows.append([target, shown if shown is not None else value, _check(value, ok)])

    summ = ov.get("summary", {})
    miss = summ.get("added_p50_miss_ms")
    add("router overhead, miss path, 50 tokens, c=1: added p50 <= 5 ms", miss, miss is not None and miss <= 5,
        None if miss is None else f"+{miss} ms (protocol alone +{summ.get('added_p50_bare_ms')} ms, "
                                  f"with signals +{summ.get('added_p50_signals_ms')} ms)")
    rps = ov_row("router_miss", 32).get("rps")
    add("miss path >= 200 req/s (c=32)", rps, rps is not None and rps >= 200)
    rps = ov_row("router_hit", 32).get("rps")
    add("cache hits >= 500 req/s (c=32)", rps, rps is not None and rps >= 500)
    hit = ov_row("router_hit", 1).get("p50_ms")
    add("cache hit through Envoy p50 <= 5 ms (c=1)", hit, hit is not None and hit <= 5)
    mc = summ.get("miss_cache_cost_ms")  # the two stacks measured in alternating rounds (bench_overhead.py)
    cost = mc["median_ms"] if mc else None
    add("miss-path cache cost <= 3 ms (miss p50 - signals-only p50, c=1)", cost, cost is not None and cost <= 3,
        mc and f"{cost} (median of {len(mc['round_ms'])} alternating rounds: {', '.join(map(str, mc['round_ms']))})")
    # at the shipped config's verifier_threshold (bench_cache_quality), else the verifier build's own threshold
    vt = ((load("cache_quality") or {}).get("qqp_test", {}).get("shipped_calibrated")
          or verifier.get("figures", {}).get("test", {}))
    if vt:
        add("QQP held-out, shipped threshold: hit precision >= 0.90 at duplicate recall >= 0.40",
            vt.get("precision"), vt.get("precision", 0) >= 0.90 and vt.get("recall", 0) >= 0.40,
            f"P {round(vt.get('precision', 0), 4)} at R {round(vt.get('recall', 0), 4)}")
    dom = metrics.get("domain", {})
    if dom:
        a = dom.get("mmlu_test_accuracy_question_only")
        add("domain accuracy, held-out MMLU >= 0.85", a, a is not None and a >= 0.85)
        a = dom.get("ood_accuracy")
        add("domain accuracy, other sources >= 0.80", a, a is not None and a >= 0.80)
    jb = metrics.get("jailbreak", {})
    if jb:
        tpr, fpr = jb.get("test_tpr_at_threshold"), jb.get("test_fpr_at_threshold")
        add("jailbreak TPR >= 0.95 at FPR <= 0.02 (held-out)", tpr,
            tpr is not None and tpr >= 0.95 and fpr is not None and fpr <= 0.02, f"TPR {tpr} at FPR {fpr}")
    pii = metrics.get("pii", {}).get("iou50", {})
    for typ, v in pii.items():
        add(f"PII {typ} precision and recall >= 0.90", v["precision"],
            v["precision"] >= 0.90 and v["recall"] >= 0.90, f"P {v['precision']} / R {v['recall']}")
    scale = (load("scale") or {}).get("cache", {})
    for backend, label in (("milvus_lite", "Milvus Lite"), ("milvus_server", "Milvus server")):
        for r in scale.get(backend, []):
            if "entries" not in r:
                continue
            what = f"cache lookup latency at {r['entries']:,} entries, {label} (no numeric target)"
            if "p50_ms" in r:
                rows.append([what, f"p50 {r['p50_ms']} ms / p99 {r['p99_ms']} ms", "measured"])
            else:
                rows.append([what, r.get("skipped", ""), "**not measured**"])
    lat = sig.get("latency", {})
    for key, limit in (("50_tokens", 5.0), ("512_tokens", 40.0)):
        v = lat.get(key, {}).get("p50_ms")
        rounds = lat.get(key, {}).get("round_p50_ms")
        add(f"all signals, {key.replace('_', ' ')}, p50 <= {limit:g} ms (CPU)", v, v is not None and v <= limit,
            f"{v} (rounds {min(rounds)}-{max(rounds)})" if v is not None and rounds else None)
    return ("Every target the issues set, from the figures below (same run; model figures from the build's "
            "held-out evaluation in `models/dist/metrics.json` and `verifier.json`).\n\n"
            + _table(["target", "measured", "status"], rows))


def section_signals() -> str:
    d = load("signals")
    if not d:
        return "Not run."
    body = "```json\n" + json.dumps({k: v for k, v in d.items() if k != "machine"}, indent=1)[:6000] + "\n```"
    return _stamp(d) + "\n\nFull report with plots: [signals.md](signals.md).\n\n" + body


def section_cache() -> str:
    parts = []
    d = load("cache_speedup")
    if d:
        s = d["summary"]
        parts.append(_stamp(d) + "\n\n![cache speedup](img/cache_speedup.png)\n\n" + _table(
            ["upstream latency", "miss p50 ms", "same request p50 ms", "paraphrase p50 ms", "exact hit rate",
             "paraphrase hit rate", "speedup"],
            [[s["upstream_latency_ms"], s["miss_p50_ms"], s["exact_hit_p50_ms"], s["paraphrase_hit_p50_ms"],
              s["exact_hit_rate"], s["paraphrase_hit_rate"], s.get("speedup_exact")]]))
    verifier = MODEL_DIR / "verifier.json"
    if verifier.exists():
        v = json.loads(verifier.read_text())
        figures = v.get("metrics") or v.get("figures") or {}
        parts.append("Hit verification on the held-out QQP test split (details: [cache.md](cache.md)):\n\n```json\n"
                     + json.dumps(figures, indent=1)[:3000] + "\n```")
    return "\n\n".join(parts) or "Not run."


def section_savings() -> str:
    d = load("savings")
    if not d:
        return "Not run."
    s = d["summary"]
    rows = [[f"always {s['largest']}", s["cost_always_largest"], "1.000", "0.0", ""],
            ["router (`model: auto`)", round(s["cost_ours"], 1), s["cost_vs_largest"],
             s.get("complex_sent_to_small"), s.get("category_accuracy")],
            [f"always {s['smallest']}", s["cost_always_smallest"],
             round(s["cost_always_smallest"] / s["cost_always_largest"], 3), "1.0", ""]]
    share = ", ".join(f"{m}: {v:.1%}" for m, v in s["share"].items())
    return (_stamp(d) + f"\n\n{s['served']} prompts served ({s['prompts']} sent, {s['blocked']} blocked). "
            f"Share per model: {share}.\n\n![savings](img/savings.png)\n\n"
            + _table(["policy", "cost (configured units)", "vs always-largest", "complex prompts on small model",
                      "category accuracy"], rows)
            + "\n\nCategory accuracy by source: "
            + ", ".join(f"{k} {v}" for k, v in s["category_accuracy_by_source"].items())
            + f". Simple prompts sent to the small model: {s.get('simple_sent_to_small')}."
            + _savings_policies(s.get("policies")))


def _savings_policies(policies: dict[str, Any] | None) -> str:
    """The static policy next to the cost-optimised one (config/examples/cost-fleet.yaml), each costed by its
    own models[].cost."""
    if not policies:
        return ""
    rows = [[f"`{name}`", p["cost_per_1k"], p["cost_per_1k_always_largest"], p["cost_per_1k_always_smallest"],
             ", ".join(f"{m} {v:.1%}" for m, v in p["share"].items()), p.get("complex_sent_to_small"),
             p.get("complex_sent_to_large"), p.get("simple_sent_to_small"), p.get("category_accuracy")]
            for name, p in policies.items()]
    costs = "; ".join(f"`{n}`: " + ", ".join(f"{m} {c:g}" for m, c in p["costs"].items())
                      for n, p in policies.items())
    return ("\n\n### Static vs cost-optimised policy\n\nThe same prompts replayed through the static config "
            "(`static`, config/config.yaml) and the cost-optimised example (`cost-fleet`, "
            "config/examples/cost-fleet.yaml), each costed by its own `models[].cost` (" + costs + ").\n\n"
            + _table(["policy", "cost / 1k requests", "always largest", "always smallest", "share per model",
                      "complex on smallest", "complex on largest", "simple on smallest", "category accuracy"],
                     rows))


def section_peers() -> str:
    d = load("peers")
    if not d:
        return "Not run."
    body = "```json\n" + json.dumps({k: v for k, v in d.items() if k != "machine"}, indent=1)[:5000] + "\n```"
    return _stamp(d) + "\n\n![peers](img/peers.png)\n\n" + body


def section_scale() -> str:
    d = load("scale")
    if not d:
        return "Not run."
    parts = [_stamp(d)]
    w = d.get("workers", [])
    if w and "workers" in w[0]:
        parts.append("Throughput vs router processes (the overhead section's miss path: all signals, in-memory "
                     "cache, jailbreak guard off, every prompt new; concurrency 32):\n\n" + _table(
            ["router processes", "req/s", "p50 ms", "p99 ms", "errors", "HTTP statuses"],
            [[r["workers"], r["rps"], r["p50_ms"], r["p99_ms"], r["errors"], r.get("statuses")] for r in w]))
    rows = []
    for backend, results in d.get("cache", {}).items():
        for r in results:
            rows.append([backend, r.get("entries"), r.get("p50_ms"), r.get("p99_ms"), r.get("insert_rows_per_s"),
                         r.get("skipped", "")])
    parts.append("Cache lookup latency vs entries (top-4, filtered by tenant and request filter key):\n\n" + _table(
        ["backend", "entries", "p50 ms", "p99 ms", "insert rows/s", "note"], rows))
    return "\n\n".join(parts)


def section_gpu() -> str:
    d = load("gpu")
    if not d:
        return ("GPU figures are pending: no NVIDIA GPU was available to this run. "
                "`tests/bench/gpu_signals.sh` measures signal latency and throughput on CUDA "
                "(onnxruntime-gpu) at 50/512 tokens and batch 1/16 when one is.")
    cpu = load("signals") or {}
    head = (f"_Measured {d.get('date', '?')} on an {d.get('gpu_name', 'NVIDIA GPU')} (driver {d.get('driver', '?')}, "
            f"{d.get('host_cpus', '?')}-core host) with onnxruntime-gpu {d.get('onnxruntime', '?')}, CUDA provider, "
            f"`{d.get('model', '?')}` of model recipe `{d.get('model_recipe', '?')}`, "
            f"{d.get('threads', '?')} CPU threads for the host-side work, by `tests/bench/gpu_signals.sh`._ "
            "The CPU column is this document's own signals run on this machine: two machines, so read it as "
            "context, not as a same-run ratio.")
    current = (load("signals") or {}).get("model_recipe")
    if current and d.get("model_recipe") and current != d["model_recipe"]:
        head += (f"\n\n**Not re-measured for the current model recipe `{current}`**: no GPU was lent to the session "
                 f"that built it. The figures below are of recipe `{d['model_recipe']}`, which has the same frozen "
                 "encoder; the heads may differ in data and in form (later additions: the domain head's "
                 "nearest-neighbour vote, models/heads.py: NeighbourBlend, a 256 x 9,868 MatMul and a top-25 per "
                 "row; the jailbreak span head, SpanHead, an MLP over 12-token span means; git log -- models/).")

    def row(name: str, get) -> list[Any]:
        vals = []
        for src in (cpu, d):
            try:
                vals.append(get(src))
            except (KeyError, TypeError):
                vals.append("")
        return [name, *vals]

    t = _table(["all signals, one request", "CPU int8, this machine", "GPU fp16"], [
        row("50 tokens p50 / p99 ms", lambda s: f"{s['latency']['50_tokens']['p50_ms']} / {s['latency']['50_tokens']['p99_ms']}"),
        row("512 tokens p50 / p99 ms", lambda s: f"{s['latency']['512_tokens']['p50_ms']} / {s['latency']['512_tokens']['p99_ms']}"),
        row("batch 16, texts/s", lambda s: s["batch16"]["texts_per_s"]),
        row("64 concurrent callers (micro-batched), texts/s", lambda s: s["concurrent"]["texts_per_s"]),
        row("cache verifier: 1 query x 4 candidate pair rows, p50 ms",
            lambda s: s["latency"]["verifier_pairs_4"]["p50_ms"]),
    ])
    parts = [head, t]
    ab = d.get("same_host_ab")
    if ab:
        parts.append(
            "At batch 1 the GPU waits on the host (tokenizer, Python, kernel launches), so its latency moves with "
            "the host: on one H100 host, interleaved, the previous recipe's graph (no seq_feat output) measured "
            + ", ".join(f"{x[0]} / {x[1]} ms" for x in ab["old"]) + " (50 / 512 tokens, p50) in two runs, and "
            "this recipe's graph " + ", ".join(f"{x[0]} / {x[1]} ms" for x in ab["new"])
            + f"; a run on another H100 host gave {ab['previous_run_other_host_old_graph'][0]} / "
            f"{ab['previous_run_other_host_old_graph'][1]} ms.")
    c = load("gpu_check")
    if c:
        n = c["n"]
        rows = [[k, c["cpu"][k], c["gpu"][k]] for k in
                ("mmlu_accuracy", "jailbreak_tpr", "jailbreak_fpr", "pii_precision", "pii_recall")]
        parts.append(
            f"Same held-out texts through both paths (`tests/bench/gpu_check.py`: {n['mmlu']} MMLU test questions, "
            f"{n['jailbreak']} jailbreak-test prompts, {n['pii']} PII-test sentences; jailbreak at the shipped "
            "threshold). The GPU runs the fp16 graph, the CPU the per-channel int8 one; the heads are the same. "
            "These are the data packages' test splits alone; the build's own jailbreak figures (Targets) also "
            "count synthetic, PII and out-of-domain benign prompts, so their FPR differs.\n\n"
            + _table(["held-out figure", f"CPU ({c['cpu']['model']})", f"GPU ({c['gpu']['model']})"], rows)
            + "\n\nAgreement request by request: " + ", ".join(f"{k} {v}" for k, v in c["agreement"].items()) + ".")
    return "\n\n".join(parts)


def section_live() -> str:
    from .bench_live import section   # live: the same table as docs/reliability.md's

    d = load("live")
    return section(d) if d else "Not run."


def render(quick: bool) -> str:
    m = machine()
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    return "\n".join([
        "# Benchmarks",
        "",
        f"Generated by `make bench{'-quick' if quick else ''}` on {m['date']}: {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}; {versions}. Comparisons are ratios measured in the same run. "
        "Raw figures: `docs/bench/*.json`.",
        "", "## Targets", "", section_targets(),
        "", "## Router overhead (Envoy alone vs Envoy + router)", "", section_overhead(),
        "", "## Signals (one ONNX pass)", "", section_signals(),
        "", "## Semantic cache", "", section_cache(),
        "", "## Routing savings", "", section_savings(),
        "", "## Peers: GPTCache and semantic-router", "", section_peers(),
        "", "## Scaling", "", section_scale(),
        "", "## Live routing (faults, bookkeeping, tracing)", "", section_live(),
        "", "## GPU", "", section_gpu(), "",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated steps; default all")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        for step in (args.only.split(",") if args.only else QUICK_STEPS if args.quick else STEPS):
            run_step(step, args.quick)
    (DOCS / "benchmarks.md").write_text(render(args.quick))
    progress(f"wrote {DOCS / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
