"""Hostile input through a real Stack: what the router answers to each class of bad or extreme request, and how
long the answer takes, for bodies up to the router's 8 MiB limit.

    python -m tests.bench.bench_hostile [--reps N] [--quick]      (a step of `make bench`)

One Stack: Envoy + router (real signal models, all signals and guards on, in-memory cache) + zero-latency demo
upstreams, so the time is the router's and Envoy's. Each class is sent `reps` times (fewer for the largest
bodies), one at a time. A *defined* answer is a status the router means to give (200, 400, 403, 404, 405, 413,
503) with an OpenAI-shaped JSON error body when it is not 200; anything else (Envoy's 500 for a broken ext_proc
stream, a reset connection, a timeout) counts against the 100 % target. Writes docs/bench/hostile.json and the
table of the "Hostile input" section of docs/reliability.md (between its table markers; the prose around it is
written by hand).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from router_extproc.dev.stack import Stack

from .common import DOCS, bench_config, progress, save

MIB = 1024 * 1024
LIMIT = 8 * MIB
DEFINED = {200, 400, 403, 404, 405, 413, 503}
TIMEOUT_S = 30.0
NO_CACHE = {"cache-control": "no-cache, no-store"}
BEGIN, END = "<!-- hostile-input-table:start -->", "<!-- hostile-input-table:end -->"
WORDS = ("the river carries silt from the mountains to the delta where farmers plant rice in the spring and "
         "harvest it before the monsoon returns ").split()


def prose(words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(words))


def chat(content: Any, **extra: Any) -> dict:
    return {"model": "auto", "messages": [{"role": "user", "content": content}], **extra}


def padded(prefix: bytes, filler: bytes, suffix: bytes, size: int) -> bytes:
    return prefix + filler * max(0, (size - len(prefix) - len(suffix)) // len(filler)) + suffix


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# (class, what it is, path, body factory, repetitions factor)
Case = tuple[str, str, str, Callable[[], bytes], float]
CASES: list[Case] = [
    ("lone surrogate escape", "`\\ud800` in a message", "/v1/chat/completions",
     lambda: b'{"model":"auto","messages":[{"role":"user","content":"a\\ud800"}]}', 1),
    ("integer of 4,301 digits", "`seed` of 4,301 digits", "/v1/chat/completions",
     lambda: b'{"model":"auto","messages":[{"role":"user","content":"x"}],"seed":' + b"7" * 4301 + b"}", 1),
    ("nested 950 deep", "`metadata` 950 arrays deep", "/v1/chat/completions",
     lambda: raw(chat("x"))[:-1] + b',"metadata":' + b"[" * 950 + b"]" * 950 + b"}", 1),
    ("nested to the limit", "8 MiB of `[`", "/v1/chat/completions",
     lambda: b"[" * (LIMIT - 1024), 0.25),
    ("invalid UTF-8", "8 MiB of 0xff", "/v1/chat/completions", lambda: b"\xff" * (LIMIT - 1024), 0.25),
    ("not JSON", "8 MiB of text", "/v1/chat/completions", lambda: b"x" * (LIMIT - 1024), 0.25),
    ("NaN / Infinity", "`temperature: NaN`", "/v1/chat/completions",
     lambda: raw(chat("x"))[:-1] + b',"temperature":NaN}', 1),
    ("4 M values", "8 MiB array of zeros in `metadata`", "/v1/chat/completions",
     lambda: padded(raw(chat("x"))[:-1] + b',"metadata":[0', b",0", b"]}", LIMIT - 1024), 0.25),
    ("surrogate at the end of 8 MiB", "8 MiB message, `\\udc00` last", "/v1/chat/completions",
     lambda: padded(b'{"model":"auto","messages":[{"role":"user","content":"', b"a", b'\\udc00"}]}', LIMIT - 1024),
     0.25),
    ("over the limit", "9 MiB body", "/v1/chat/completions",
     lambda: padded(b'{"model":"auto","messages":[{"role":"user","content":"', b"a", b'"}]}', 9 * MIB), 0.25),
    ("only a system prompt", "one system message", "/v1/chat/completions",
     lambda: raw({"model": "auto", "messages": [{"role": "system", "content": "You are a helpful assistant."}]}), 1),
    ("an empty user turn", "`content: \"\"`", "/v1/chat/completions", lambda: raw(chat("")), 1),
    ("200-turn conversation", "alternating user/assistant, 200 turns", "/v1/chat/completions",
     lambda: raw({"model": "auto", "messages": [{"role": ("user", "assistant")[i % 2], "content": f"turn {i} " + prose(20)}
                                                for i in range(200)]}), 1),
    ("image and audio parts, 8 MiB", "base64 image + audio parts and a question", "/v1/chat/completions",
     lambda: raw(chat([{"type": "text", "text": "What is in this picture?"},
                       {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * (6 * MIB)}},
                       {"type": "input_audio", "input_audio": {"data": "U" * MIB, "format": "wav"}},
                       {"type": "hologram", "x": 1}])), 0.25),
    ("tool result of 50k tokens", "user turn + a 200 KB tool message", "/v1/chat/completions",
     lambda: raw({"model": "auto", "messages": [
         {"role": "user", "content": "Summarise what the tool returned."},
         {"role": "assistant", "content": None, "tool_calls": [
             {"id": "c1", "type": "function", "function": {"name": "fetch", "arguments": "{}"}}]},
         {"role": "tool", "tool_call_id": "c1", "content": prose(37_000)}]}), 0.5),
    ("pasted document, 1k words", "one user turn", "/v1/chat/completions", lambda: raw(chat(prose(1000))), 0.5),
    ("pasted document, 4k words", "one user turn", "/v1/chat/completions", lambda: raw(chat(prose(4000))), 0.25),
    ("pasted document, 8k words", "one user turn", "/v1/chat/completions", lambda: raw(chat(prose(8000))), 0.25),
    ("legacy completions", "`prompt` list of 2 strings", "/v1/completions",
     lambda: raw({"model": "auto", "prompt": ["Say hi.", "Say bye."]}), 1),
    ("completions token ids", "`prompt: [101, 2023]`", "/v1/completions",
     lambda: raw({"model": "auto", "prompt": [101, 2023, 102]}), 1),
    ("Responses API items", "instructions, input_text, function_call_output", "/v1/responses",
     lambda: raw({"model": "auto", "instructions": "Be brief.", "input": [
         {"role": "user", "content": [{"type": "input_text", "text": "What did the tool say?"}]},
         {"type": "function_call_output", "call_id": "c1", "output": "It is sunny."}]}), 1),
    ("Responses previous_response_id", "no input, stored history", "/v1/responses",
     lambda: raw({"model": "auto", "previous_response_id": "resp_123"}), 1),
    ("path: trailing slash", "`/v1/chat/completions/`", "/v1/chat/completions/", lambda: raw(chat("hi")), 1),
    ("path: merged slashes", "`//v1/chat/completions`", "//v1/chat/completions", lambda: raw(chat("hi")), 1),
    ("path: percent-encoded", "`/v1/chat%2Fcompletions`", "/v1/chat%2Fcompletions", lambda: raw(chat("hi")), 1),
    ("path: unknown API", "`/v1/embeddings`", "/v1/embeddings", lambda: raw({"model": "auto", "input": "hi"}), 1),
]
STREAM_CASE = ("upstream SSE chunk with bad `choices`", "stream; one chunk `choices: [\"...\", 7]`")


def defined(r: httpx.Response | None) -> bool:
    if r is None or r.status_code not in DEFINED:
        return False
    if r.status_code == 200:
        return True
    try:
        err = r.json()["error"]
        return isinstance(err["message"], str) and bool(err["type"])
    except (ValueError, KeyError, TypeError):
        return False


def send(client: httpx.Client, url: str, path: str, body: bytes, headers: dict | None = None,
         ) -> tuple[httpx.Response | None, float]:
    req = client.build_request("POST", url, content=body, headers={"content-type": "application/json",
                                                                     **(headers or {})})
    req.url = req.url.copy_with(raw_path=path.encode())
    t0 = time.perf_counter()
    try:
        r = client.send(req)
    except httpx.HTTPError:
        r = None
    return r, time.perf_counter() - t0


def summarise(name: str, what: str, results: list[tuple[httpx.Response | None, float]], size: int) -> dict:
    times = sorted(t for _, t in results)
    statuses: dict[str, int] = {}
    for r, _ in results:
        key = str(r.status_code) if r is not None else "transport error"
        if r is not None and r.status_code != 200:
            try:
                key += f" {r.json()['error'].get('code') or r.json()['error']['type']}"
            except (ValueError, KeyError, TypeError):
                key += " (not OpenAI-shaped)"
        statuses[key] = statuses.get(key, 0) + 1
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return {"class": name, "what": what, "bytes": size, "n": len(results), "statuses": statuses,
            "defined": sum(defined(r) for r, _ in results), "p50_ms": statistics.median(times) * 1000,
            "p99_ms": p99 * 1000}


def run(reps: int) -> list[dict]:
    cfg = bench_config(signals=True, cache=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Stack(cfg, workdir=Path(tmp), demo_latency_ms=0) as stack, \
            httpx.Client(timeout=TIMEOUT_S) as client:
        send(client, stack.url, "/v1/chat/completions", raw(chat("warm up")))
        for name, what, path, make, factor in CASES:
            body = make()
            n = max(3, int(reps * factor))
            progress(f"{name}: {n} x {len(body)} bytes")
            # no-store/no-cache: every repeat takes the full path (the cache key is still built), never a hit
            rows.append(summarise(name, what, [send(client, stack.url, path, body, NO_CACHE) for _ in range(n)],
                                  len(body)))
        results = []
        for i in range(reps):
            body = raw(chat(f"Tell me a story about lighthouse {i}.", stream=True))
            results.append(send(client, stack.url, "/v1/chat/completions", body, {"x-demo-bad-chunk": "1"}))
        for r, _ in results:   # the client must get the whole stream, bad chunk and [DONE] included
            if r is not None and not r.text.rstrip().endswith("data: [DONE]"):
                r.status_code = 599
        rows.append(summarise(*STREAM_CASE, results, len(body)))
    return rows


def table(rows: list[dict], when: str) -> str:
    n = sum(r["n"] for r in rows)
    ok = sum(r["defined"] for r in rows)
    worst = max(rows, key=lambda r: r["p99_ms"])
    lines = [
        BEGIN,
        f"Generated by `python -m tests.bench.bench_hostile` on {when}: one request at a time through Envoy to the router "
        "(real signal models, all guards on, in-memory cache) and a zero-latency demo upstream. "
        f"Defined answers: {ok} of {n} ({100 * ok / n:.0f} %; target 100 %). Slowest class p99: "
        f"{worst['p99_ms']:.0f} ms ({worst['class']}; target ≤ 1,000 ms for any body up to the 8 MiB limit). "
        "With a handful of samples per class, p99 is the slowest sample.",
        "",
        "| Class | Request | Body | The router answers | Defined | p50 ms | p99 ms |",
        "|---|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        size = f"{r['bytes'] / MIB:.1f} MiB" if r["bytes"] >= MIB / 4 else f"{r['bytes'] / 1024:.1f} KiB"
        answers = ", ".join(f"{k} ×{v}" for k, v in r["statuses"].items())
        lines.append(f"| {r['class']} | {r['what']} | {size} | {answers} | {r['defined']}/{r['n']} "
                     f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")
    lines += ["", END]
    return "\n".join(lines)


def write_section(section: str, path: Path = DOCS / "reliability.md") -> None:
    text = path.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path} has no {BEGIN} ... {END} block for the table")
    path.write_text(pattern.sub(lambda _: section, text))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="5 repetitions per class")
    ap.add_argument("--no-docs", action="store_true", help="print the table instead of writing docs/")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps = 5
    rows = run(args.reps)
    section = table(rows, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    if args.no_docs:
        print(section)
    else:
        save("hostile", {"reps": args.reps, "rows": rows})
        write_section(section)
    return 0 if all(r["defined"] == r["n"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
