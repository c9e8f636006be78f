"""Bounded soak through Envoy: mixed cache hits, misses and SSE streams at concurrency 32, zero unexpected errors,
and router memory that levels off.

RELIABILITY_SOAK_REQUESTS (default 20000) sets the measured request count; RELIABILITY_SOAK_CONCURRENCY
(default 32) the number of keep-alive connections. Each half is also bounded in time (RELIABILITY_SOAK_MAX_S per
half, default 600 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from tests.bench import loadgen

from .conftest import cached_config, chat, eventually, rss_kib, scrape, total, value

pytestmark = pytest.mark.reliability

N = int(os.environ.get("RELIABILITY_SOAK_REQUESTS", "20000"))
CONCURRENCY = int(os.environ.get("RELIABILITY_SOAK_CONCURRENCY", "32"))
MAX_S = float(os.environ.get("RELIABILITY_SOAK_MAX_S", "600"))
WARMUP = 600
HOT = [f"Give me a one-line fact about topic number {k}" for k in range(64)]


def _requests(host: str, port: int, offset: int):
    """Request i (plus offset, so every phase has its own unique prompts), by i % 10:
    0-4 a hot prompt (cache hit once warm), 5-7 a unique prompt (miss, stored), 8 a hot prompt streamed (hit
    replayed as SSE), 9 a unique prompt streamed (miss, SSE tapped and stored)."""
    def pick(i: int) -> bytes:
        j = i + offset
        kind = j % 10
        if kind <= 4:
            body = chat("large", HOT[j % len(HOT)], temperature=0.2)
        elif kind <= 7:
            body = chat("large", f"Unique soak question {j}: what is {j} squared?", temperature=0.2)
        elif kind == 8:
            body = chat("large", HOT[(j // 10) % len(HOT)], temperature=0.2, stream=True)
        else:
            body = chat("large", f"Unique streamed soak question {j}", temperature=0.2, stream=True)
        return loadgen.encode_post(host, port, "/v1/chat/completions", json.dumps(body).encode(),
                                   {"authorization": "Bearer soak-tenant"})
    return pick


def _run(stack, total_n: int, offset: int) -> loadgen.Result:
    e = stack.config.envoy
    return asyncio.run(loadgen.run(e.listen_host, e.listen_port, _requests(e.listen_host, e.listen_port, offset),
                                   total=total_n, concurrency=CONCURRENCY, max_seconds=MAX_S))


def test_soak_mixed_traffic_no_errors_and_memory_levels_off(make_stack, record):
    """Client sees: every one of the N requests answered 200 (hits, misses, streams), no connection errors.
    Router: no ext_proc stream errors; RSS growth over the second half < max(20% of the first half's growth,
    2% of RSS) — i.e. memory levels off once the cache is full (max_entries 500 is reached in the first half)."""
    cfg, cache_on = cached_config()
    if cache_on:
        cfg["semantic_cache"] = {**cfg["semantic_cache"], "max_entries": 500}
    stack = make_stack(cfg)
    pid = stack.procs["router"].pid
    m0 = scrape(stack.metrics_url)

    warm = _run(stack, WARMUP, 0)
    assert warm.statuses == {200: WARMUP}, warm.statuses
    rss_start = rss_kib(pid)
    t0 = time.perf_counter()
    first = _run(stack, N // 2, WARMUP)
    rss_mid = rss_kib(pid)
    second = _run(stack, N - N // 2, WARMUP + N // 2)
    rss_end = rss_kib(pid)
    wall = time.perf_counter() - t0
    assert eventually(lambda: value(scrape(stack.metrics_url), "router_extproc_streams_active") == 0, 10)
    m1 = scrape(stack.metrics_url)

    sent = first.n + second.n + first.errors + second.errors
    statuses: dict[int, int] = {}
    for r in (first, second):
        for k, v in r.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    transport_errors = first.errors + second.errors
    stream_errors = total(m1, "router_extproc_stream_errors_total") - total(m0, "router_extproc_stream_errors_total")
    lookups = {res: int(total(m1, "router_cache_lookups_total", result=res)
                        - total(m0, "router_cache_lookups_total", result=res))
               for res in ("exact_hit", "hit", "miss", "refused", "error")}
    coalesced = int(total(m1, "router_cache_coalesced_total") - total(m0, "router_cache_coalesced_total"))
    g1, g2 = rss_mid - rss_start, rss_end - rss_mid
    unexpected = transport_errors + sum(v for k, v in statuses.items() if k != 200) + int(stream_errors)
    record("soak", injected=f"{sent} requests at concurrency {CONCURRENCY} through Envoy (50% hot prompts, "
           "30% unique, 10% hot streamed, 10% unique streamed)",
           client_saw=f"statuses {statuses}, transport errors {transport_errors}",
           sent=sent, errors=unexpected, lost=0, rps=round(sent / wall, 1), p50_ms=round(first.p50, 1),
           p99_ms=round(max(first.p99, second.p99), 1), cache="on" if cache_on else "off", lookups=lookups,
           rss_start_mib=round(rss_start / 1024, 1), rss_mid_mib=round(rss_mid / 1024, 1),
           rss_end_mib=round(rss_end / 1024, 1), growth_first_half_mib=round(g1 / 1024, 1),
           growth_second_half_mib=round(g2 / 1024, 1), coalesced=coalesced)
    assert sent == N, f"only {sent}/{N} requests were sent within {MAX_S:.0f}s per half (machine too slow?)"
    assert statuses == {200: N}, statuses
    assert transport_errors == 0
    assert stream_errors == 0
    if cache_on:
        assert lookups["exact_hit"] + lookups["hit"] > N // 4, lookups
    assert g2 < max(0.2 * g1, 0.02 * rss_mid), (
        f"router RSS keeps growing: start {rss_start} KiB, mid {rss_mid} KiB, end {rss_end} KiB")


