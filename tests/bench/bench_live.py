"""Live routing under faults, and what its bookkeeping costs (issue #25). Writes docs/bench/live.json and the
`bench_live` section of docs/reliability.md.

1. A replica of a two-replica model is SIGKILLed under closed-loop load (c=32 by default): failed requests over the
   window, after ejection, and how long the restarted replica takes to get traffic again.
2. A one-replica model dies under auto traffic: what the clients see while Envoy and the router notice (Envoy's
   last attempt to the next candidate, then the router skipping the model), and how the answers were produced.
3. The live bookkeeping per request (reroute, next candidate, in-flight and answer accounting), in process: CPU
   time per request over many iterations; and end to end through Envoy, live on vs off (p50, same run).

Run: `python -m tests.bench.bench_live [--quick]`. Timings on a shared machine are inflated by contention.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from router_extproc.config import parse_config
from router_extproc.decision import Decision
from router_extproc.live import LiveState, next_candidate
from router_extproc.dev.stack import Stack

from .common import DOCS, load, progress, save
from .loadgen import closed_loop_with_events

START, END = "<!-- bench_live:start -->", "<!-- bench_live:end -->"
TIMINGS = {
    "resilience": {
        "outlier_detection": {"interval_s": 0.5, "base_ejection_s": 3, "consecutive_gateway_failure": 2},
        "health_check": {"interval_s": 0.5, "timeout_s": 0.5, "unhealthy_threshold": 2, "healthy_threshold": 1},
    }
}


def config(replicas: int = 2, live: bool = True) -> dict[str, Any]:
    large: dict[str, Any] = {"name": "large", "served_name": "demo/large-8b", "family": "qwen3", "cost": 8}
    if replicas > 1:
        large["endpoints"] = [f"127.0.0.1:{i + 1}" for i in range(replicas)]
    else:
        large["endpoint"] = "127.0.0.1:1"
    return {
        "models": [{"name": "small", "served_name": "demo/small-0.6b", "endpoint": "127.0.0.1:1", "family": "qwen3"},
                   large],
        "default_model": "large",
        "signals": {"category": False, "complexity": False, "jailbreak": False, "pii": False},
        "semantic_cache": {"enabled": False},
        "logging": {"level": "warning"},
        "routing": {"categories": {"other": {"model_scores": {"large": 1.0, "small": 0.5}}}},
        "envoy": copy.deepcopy(TIMINGS),
        "live": {"enabled": live, "envoy_poll_s": 0.25, "cooldown_s": 2, "min_requests": 3},
    }


async def timed_load(stack: Stack, model: str, seconds: float, concurrency: int,
                     at: list[tuple[float, Any]] = ()) -> list[tuple[float, float, int]]:
    """(start s, latency ms, status) per request of a closed loop; status 0: the connection broke."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hello"}]}).encode()
    return await closed_loop_with_events(stack.config.envoy, body, seconds, concurrency, at)


def _stats(stack: Stack) -> dict[str, float]:
    import urllib.request

    e = stack.config.envoy
    with urllib.request.urlopen(f"http://{e.admin_host}:{e.admin_port}/stats?format=json", timeout=5) as r:
        return {s["name"]: s["value"] for s in json.loads(r.read())["stats"] if "value" in s}


def replica_killed(workdir: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    kill_at = 3.0
    with Stack(config(), workdir=workdir / "killed") as stack:
        name = stack.upstream_name("large", 1)
        res = asyncio.run(timed_load(stack, "large", seconds, concurrency,
                                     [(kill_at, lambda: stack.stop_process(name, signal.SIGKILL))]))
        failed = [r for r in res if r[2] != 200]
        stats = _stats(stack)
        t0 = time.monotonic()
        stack.start_upstream("large", replica=1)
        import httpx

        with httpx.Client(base_url=stack.url, timeout=30) as c:
            while stack.upstream_requests("large", 1) == 0 and time.monotonic() - t0 < 30:
                c.post("/v1/chat/completions", json={"model": "large", "messages": [{"role": "user",
                                                                                      "content": "back?"}]})
            recovered_s = time.monotonic() - t0
    after = [r for r in failed if r[0] > kill_at + 2.0]
    return {"concurrency": concurrency, "seconds": seconds, "requests": len(res), "failed": len(failed),
            "failed_pct": round(100 * len(failed) / max(1, len(res)), 4), "failed_after_ejection": len(after),
            "statuses": sorted({r[2] for r in res}),
            "retries": stats.get("cluster.model_large.upstream_rq_retry", 0),
            "retry_overflow": stats.get("cluster.model_large.upstream_rq_retry_overflow", 0),
            "ejections": stats.get("cluster.model_large.outlier_detection.ejections_enforced_total", 0),
            "recovered_s": round(recovered_s, 2), "probe_time_s": 0.5}


def model_down(workdir: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    """The only replica of `large` dies under auto traffic; headers tell how each answer was produced."""
    import httpx

    kill_at = 2.0
    with Stack(config(replicas=1), workdir=workdir / "down") as stack:
        rows: list[tuple[float, int, str]] = []
        t0 = time.monotonic()

        async def client_loop() -> None:
            async with httpx.AsyncClient(base_url=stack.url, timeout=30) as c:
                while (start := time.monotonic() - t0) < seconds:
                    r = await c.post("/v1/chat/completions",
                                     json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]})
                    rows.append((start, r.status_code, r.headers.get("x-router-fallback", "")))

        async def main() -> None:
            loop = asyncio.get_running_loop()

            async def kill() -> None:
                await asyncio.sleep(kill_at)
                await loop.run_in_executor(None, stack.stop_process, stack.upstream_name("large"), signal.SIGKILL)
            await asyncio.gather(kill(), *(client_loop() for _ in range(concurrency)))

        asyncio.run(main())
    after = [r for r in rows if r[0] >= kill_at]
    how: dict[str, int] = {}
    for _, status, fb in after:
        key = f"{status} {fb.split(';')[-1] if fb else 'large'}"
        how[key] = how.get(key, 0) + 1
    return {"concurrency": concurrency, "requests": len(rows), "after_kill": len(after),
            "failed": sum(1 for r in rows if r[1] != 200), "answers_after_kill": how}


def bookkeeping_cpu(n: int) -> dict[str, Any]:
    """CPU per request of the live calls the pipeline makes (reroute, next candidate, start, answer, end)."""
    cfg = parse_config(config(), source=Path("bench.yaml"))
    state = LiveState()
    d = Decision(model="large", auto=True, category="other", reason="bench")
    samples = []
    for _ in range(5):
        t0 = time.process_time()
        for i in range(n):
            moved = state.reroute(cfg, d)
            decision = moved.decision if moved is not None else d
            next_candidate(state, cfg, decision)
            state.started(decision.model)
            state.answered(cfg.live, decision.model, 200, 0.05)
            state.ended(decision.model)
        samples.append((time.process_time() - t0) / n * 1e6)
    return {"iterations": n, "us_per_request_median": round(statistics.median(samples), 2),
            "us_per_request_runs": [round(s, 2) for s in samples]}


def usage_cpu(n: int) -> dict[str, Any]:
    """CPU per request of the token accounting on a Router: a JSON answer's usage read, counted, priced, budgeted;
    and a 20-chunk stream read (the usage chunk stripped)."""
    import json as _json

    from router_extproc.pipeline import Router

    data = config(replicas=1)
    data["usage"] = {"enabled": True, "budget_tokens": 10**12, "prices": {"large": {"prompt_per_1m": 1.0}}}
    router = Router(parse_config(data, source=Path("bench.yaml")))
    answer = _json.dumps({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi " * 50}}],
                          "usage": {"prompt_tokens": 20, "completion_tokens": 50}}).encode()
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":" word"}}]}\n\n'
    final = b'data: {"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":20}}\n\ndata: [DONE]\n\n'
    d = Decision(model="large", auto=False, reason="bench")
    out = {}
    for label, stream in (("json", False), ("stream_20_chunks", True)):
        t0 = time.process_time()
        for _ in range(n):
            ex = router.new_exchange()
            ex.chat, ex.decision, ex.forwarded_at, ex.strip_usage = True, d, time.perf_counter(), stream
            ex.headers = {"authorization": "Bearer bench"}
            router.on_response_headers(ex, {":status": "200", "content-type":
                                            "text/event-stream" if stream else "application/json"})
            if stream:
                for _ in range(19):
                    router.on_response_body(ex, chunk, False)
                router.on_response_body(ex, final, True)
            else:
                router.on_response_body(ex, answer, True)
        out[f"us_per_request_{label}"] = round((time.process_time() - t0) / n * 1e6, 2)
    return {"iterations": n, **out}


def tracing_cpu(n: int) -> dict[str, Any] | None:
    """CPU per request of the router's request path (headers + body phases, no signals) with tracing off, on at 1 %,
    and on at 100 % (spans to a no-op exporter). None without the SDK."""
    try:
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    except ImportError:
        return None
    from router_extproc.pipeline import Router
    from router_extproc.tracing import Tracer

    class Drop(SpanExporter):
        def export(self, spans):   # noqa: ANN001
            return SpanExportResult.SUCCESS

    body = json.dumps({"model": "auto", "messages": [{"role": "user", "content": "hello"}]}).encode()
    headers = {":method": "POST", ":path": "/v1/chat/completions",
               "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
    out: dict[str, Any] = {"iterations": n}
    for label, ratio in (("off", None), ("ratio_0.01", 0.01), ("ratio_1", 1.0)):
        data = config(replicas=1)
        if ratio is not None:
            data["tracing"] = {"enabled": True, "sample_ratio": ratio}
        cfg = parse_config(data, source=Path("bench.yaml"))
        router = Router(cfg, tracer=Tracer.from_config(cfg.tracing, exporter=Drop()))
        hdrs = dict(headers) if ratio != 1.0 else {k: v for k, v in headers.items() if k != "traceparent"}

        async def run() -> float:
            t0 = time.process_time()
            for _ in range(n):
                ex = router.new_exchange()
                router.on_request_headers(ex, hdrs, False)
                await router.on_request_body(ex, body)
                router.on_response_headers(ex, {":status": "200"})
                router.on_stream_end(ex)
            return (time.process_time() - t0) / n * 1e6
        out[f"us_per_request_{label}"] = round(min(asyncio.run(run()) for _ in range(3)), 2)
    return out


def end_to_end(workdir: Path, seconds: float) -> dict[str, Any]:
    """p50 through Envoy + router at c=4, auto requests: live off, live on, live on + token accounting (usage.enabled:
    every answer's body passes through the router). Runs alternate, twice each, in the same process."""
    # (live.enabled, usage.enabled, envoy.resilience.fallback)
    variants = {"off": (False, False, False), "live_stats": (True, False, False), "live": (True, False, True),
                "live_usage": (True, True, True)}
    out: dict[str, list[float]] = {k: [] for k in variants}
    for rnd in range(2):
        # the second round in reverse order: a drift over the run (other load on a shared machine) then weighs on
        # every variant alike
        for label, (live, usage, fallback) in (list(variants.items())[::-1] if rnd else variants.items()):
            data = config(replicas=1, live=live)
            data["envoy"]["resilience"]["fallback"] = fallback
            if usage:
                data["usage"] = {"enabled": True}
            with Stack(data, workdir=workdir / f"e2e-{label}-{len(out[label])}") as stack:
                asyncio.run(timed_load(stack, "auto", 1.0, 4))   # warm-up
                res = asyncio.run(timed_load(stack, "auto", seconds, 4))
                out[label].append(round(statistics.median(r[1] for r in res if r[2] == 200), 3))
    return {"p50_ms": out,
            "delta_ms_live_stats": round(statistics.mean(out["live_stats"]) - statistics.mean(out["off"]), 3),
            "delta_ms_live": round(statistics.mean(out["live"]) - statistics.mean(out["off"]), 3),
            "delta_ms_live_usage": round(statistics.mean(out["live_usage"]) - statistics.mean(out["off"]), 3)}


def section(d: dict[str, Any]) -> str:
    k, m, b, e = d["killed"], d["down"], d["bookkeeping"], d.get("end_to_end")
    lines = [
        f"_Measured {d['machine']['date']} on {d['machine']['cpu']} ({d['machine']['cores']} cores, shared: timings "
        "are inflated by contention). `python -m tests.bench.bench_live`._",
        "",
        "| scenario | figure |",
        "|---|---|",
        f"| replica of 2 SIGKILLed under c={k['concurrency']} ({k['seconds']:.0f} s) | **{k['failed']} failed of "
        f"{k['requests']:,}** ({k['failed_pct']} %; target ≤ 0.5 %), {k['failed_after_ejection']} after ejection "
        f"(target 0); Envoy retries {int(k['retries'])}, budget overflows {int(k['retry_overflow'])}, ejections "
        f"{int(k['ejections'])} |",
        f"| restarted replica back in rotation | {k['recovered_s']} s (health check every {k['probe_time_s']} s, "
        "healthy after 1) |",
        f"| only replica of the chosen model SIGKILLed, auto traffic c={m['concurrency']} | {m['failed']} failed of "
        f"{m['requests']:,}; answers after the kill: "
        + ", ".join(f"{v}× {key}" for key, v in sorted(m["answers_after_kill"].items())) + " |",
        f"| live bookkeeping per request, in process | {b['us_per_request_median']} µs CPU (median of 5 × "
        f"{b['iterations']:,}; target ≤ 0.3 ms) |",
    ]
    u = d.get("usage")
    if u:
        lines.append(f"| token accounting per answer, in process (whole response phase: headers, body, counters) | "
                     f"JSON {u['us_per_request_json']} µs, 20-chunk stream {u['us_per_request_stream_20_chunks']} µs "
                     "CPU (target ≤ 0.3 ms with the live bookkeeping) |")
    t = d.get("tracing")
    if t:
        lines.append(f"| router request path per request, in process (no signals): tracing off / on at 1 % (the "
                     f"incoming traceparent unsampled: parent-based) / every request traced | "
                     f"{t['us_per_request_off']} / {t['us_per_request_ratio_0.01']} / {t['us_per_request_ratio_1']} µs "
                     "CPU (target: 1 % ≤ 0.2 ms over off) |")
    if e:
        p = e["p50_ms"]
        if "live_stats" in p:
            lines.append(f"| p50 through Envoy + router, auto, c=4 (2 runs each): off / live statistics / + Envoy "
                         f"fallback route / + token accounting | {p['off']} / {p['live_stats']} / {p['live']} / "
                         f"{p['live_usage']} ms (Δ {e['delta_ms_live_stats']} / {e['delta_ms_live']} / "
                         f"{e['delta_ms_live_usage']} ms; noise where the runs overlap: the router's own share is "
                         "the in-process figures above) |")
    lines += ["", "Answers after the kill: `200 large` went to the model before the kill was noticed, `200 retry` "
              "came from Envoy's last attempt to the next candidate (x-router-fallback `large>small;retry`), "
              "`200 down` / `200 cooling` from the router skipping the model (`large>small;down|cooling`)."]
    return "\n".join(lines)


def write_doc(d: dict[str, Any]) -> None:
    path = DOCS / "reliability.md"
    text = path.read_text()
    block = f"{START}\n{section(d)}\n{END}"
    if START in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:   # the section's prose lives in docs/reliability.md between <!-- live:start --> and <!-- live:end -->
        text += f"\n<!-- live:start -->\n## Live routing under faults (issue #25)\n\n{block}\n<!-- live:end -->\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    if not args.render_only:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            progress("live: replica killed under load")
            killed = replica_killed(work, 32, 8.0 if args.quick else 15.0)
            progress(f"live: {killed}")
            down = model_down(work, 4, 6.0 if args.quick else 10.0)
            progress(f"live: {down}")
            book = bookkeeping_cpu(20_000 if args.quick else 100_000)
            progress(f"live: {book}")
            usage = usage_cpu(2_000 if args.quick else 10_000)
            progress(f"live: {usage}")
            tracing = tracing_cpu(2_000 if args.quick else 10_000)
            progress(f"live: tracing {tracing}")
            e2e = None if args.quick else end_to_end(work, 5.0)
            progress(f"live: {e2e}")
        save("live", {"killed": killed, "down": down, "bookkeeping": book, "usage": usage, "tracing": tracing,
                      "end_to_end": e2e})
    d = load("live")
    if d:
        write_doc(d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
