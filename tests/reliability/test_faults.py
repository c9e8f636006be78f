"""Faults injected into a running stack (real Envoy, router, demo upstreams, Milvus server): for each, what the
client sees, asserted, and that nothing wrong is cached.

The cache-related checks need the signal engine (embeddings); without it the stack runs with the cache off, the
client-side assertions still hold, and the recorded row says `cache: off`.
"""

from __future__ import annotations

import copy
import signal
import time

import httpx
import pytest
import yaml

from .conftest import (BACKBONE, CACHED, Load, cached_config, chat, client, eventually, scrape, total,
                       value)

pytestmark = pytest.mark.reliability

CHAT = "/v1/chat/completions"


def _post(c: httpx.Client, content: str, **headers: str) -> httpx.Response:
    return c.post(CHAT, json=chat("large", content, temperature=0.2), headers={"authorization": "Bearer t1",
                                                                               **headers})


def _is_openai_error(r: httpx.Response, status: int, kind: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    err = r.json()["error"]
    assert err["type"] == kind and err["message"], err


def _cache_state(stack, model: str, c: httpx.Client, content: str) -> tuple[str, int]:
    """(x-router-cache, upstream requests it cost) of a clean repeat of `content`."""
    before = stack.upstream_requests(model)
    r = _post(c, content)
    assert r.status_code == 200, r.text
    return r.headers.get("x-router-cache", ""), stack.upstream_requests(model) - before


@pytest.fixture(scope="module")
def cstack(make_stack):
    cfg, cache_on = cached_config()
    stack = make_stack(cfg)
    stack.cache_on = cache_on
    return stack


def test_upstream_5xx_reaches_the_client_and_is_not_cached(cstack, record):
    """Client sees: the upstream's own status (503) and its OpenAI-shaped error body, with the router's headers.
    Nothing is cached: the same prompt afterwards goes upstream again (miss), and only a 200 becomes a hit."""
    prompt = "Explain the difference between TCP and UDP (5xx scenario)"
    with client(cstack) as c:
        before = cstack.upstream_requests("large")
        r = _post(c, prompt, **{"x-demo-status": "503"})
        assert r.status_code == 503
        assert r.json()["error"]["message"] == "demo upstream forced status 503"
        assert r.headers["x-router-model"] == "large"
        r2 = _post(c, prompt, **{"x-demo-status": "500"})
        assert r2.status_code == 500
        # live: Envoy retries a 503 (gateway-error): 1 + retries.attempts tries; a 500 is not retried
        tries_503 = 1 + cstack.config.envoy.resilience.retries.attempts
        assert cstack.upstream_requests("large") - before == tries_503 + 1, "each failing request reached the upstream"
        state, cost = _cache_state(cstack, "large", c, prompt)
        assert cost == 1, "after a 5xx the prompt must go upstream again"
        if cstack.cache_on:
            assert state == "miss"
            # positive control: a 200 *is* cached, so the misses above mean "not stored", not "cache off"
            assert eventually(lambda: _cache_state(cstack, "large", c, prompt) == ("hit", 0), 5)
    record("upstream 5xx", injected="upstream answers 503 then 500 (x-demo-status)",
           client_saw="503 / 500 with the upstream's OpenAI-shaped error body; repeat = miss, upstream called again",
           sent=3, errors=0, lost=0, cache="on" if cstack.cache_on else "off")


@pytest.fixture(scope="module")
def short_timeout_stack(make_stack):
    cfg, cache_on = cached_config(envoy={"upstream_timeout_s": 1})
    stack = make_stack(cfg)
    stack.cache_on = cache_on
    return stack


def test_upstream_timeout_is_a_clean_openai_504(short_timeout_stack, record):
    """Client sees: after the 1 s route timeout, HTTP 504 with JSON {"error": {"type": "upstream_timeout", ...}},
    not Envoy's plain-text reply. Nothing is cached: the same prompt (fast this time) goes upstream."""
    stack = short_timeout_stack
    prompt = "Summarize the plot of Hamlet (timeout scenario)"
    with client(stack) as c:
        t0 = time.monotonic()
        r = _post(c, prompt, **{"x-demo-latency-ms": "3000"})
        took = time.monotonic() - t0
        _is_openai_error(r, 504, "upstream_timeout")
        assert took < 2.9, f"the client waited {took:.1f}s: the route timeout did not fire"
        time.sleep(2.5)  # let the slow upstream handler finish so its count is settled
        state, cost = _cache_state(stack, "large", c, prompt)
        assert cost == 1
        if stack.cache_on:
            assert state == "miss"
    record("upstream timeout", injected="upstream sleeps 3 s, route timeout 1 s",
           client_saw=f"504 OpenAI-shaped JSON (type upstream_timeout) after {took:.1f} s; repeat = miss",
           sent=2, errors=0, lost=0, cache="on" if stack.cache_on else "off")


def test_dead_upstream_is_a_clean_openai_502_and_recovers(make_stack, record):
    """Client sees: HTTP 502 with JSON {"error": {"type": "upstream_error"}} while the model's server is down;
    200 again as soon as it is back (no router or Envoy restart)."""
    stack = make_stack(copy.deepcopy(BACKBONE))
    stack.stop_process("upstream-large", signal.SIGKILL)
    with client(stack) as c:
        r = _post(c, "Hello while the upstream is dead")
        _is_openai_error(r, 502, "upstream_error")
        small = c.post(CHAT, json=chat("small"))
        assert small.status_code == 200, "the other model keeps serving"
        stack.start_upstream("large")
        assert eventually(lambda: _post(c, "Hello again").status_code == 200, 10)
    record("upstream dead", injected="kill -9 the large model's server, later restart it",
           client_saw="502 OpenAI-shaped JSON (type upstream_error); other model 200; 200 after restart",
           sent=3, errors=0, lost=0)


def test_upstream_drop_mid_stream_truncates_and_is_not_cached(cstack, record):
    """The upstream closes the SSE stream after its first content chunk, without `data: [DONE]`.
    Client sees, when the drop comes after the response headers reached it (chunks paced 150 ms): 200 and the
    first SSE events, then the body ends early (httpx raises RemoteProtocolError: incomplete chunked read).
    When the drop comes before Envoy sent the headers on (no pacing): a clean OpenAI-shaped 502 JSON.
    Nothing is cached in either case: the same prompt afterwards goes upstream again."""
    prompt = "Stream me a short poem about the sea (drop scenario)"
    body = chat("large", prompt, temperature=0.2, stream=True)
    auth = {"authorization": "Bearer t1"}
    events: list[str] = []
    transport_error = None
    with client(cstack) as c:
        before = cstack.upstream_requests("large")
        try:
            with c.stream("POST", CHAT, json=body,
                          headers={**auth, "x-demo-drop": "1", "x-demo-chunk-delay-ms": "150"}) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("data: "):
                        events.append(line)
        except httpx.HTTPError as exc:  # RemoteProtocolError: incomplete chunked read
            transport_error = type(exc).__name__
        assert events, "the client saw the first chunks"
        assert "data: [DONE]" not in events
        assert transport_error is not None, "the truncation must be visible to the client"
        early = c.post(CHAT, json=body, headers={**auth, "x-demo-drop": "1"})
        _is_openai_error(early, 502, "upstream_error")
        assert cstack.upstream_requests("large") - before == 2
        # a clean repeat (streamed) must reach the upstream again
        time.sleep(0.3)
        before = cstack.upstream_requests("large")
        r = c.post(CHAT, json=body, headers=auth)
        assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
        assert cstack.upstream_requests("large") - before == 1, "a truncated stream must not have been cached"
        if cstack.cache_on:
            assert r.headers["x-router-cache"] == "miss"
    record("upstream drops mid-stream", injected="upstream closes the SSE stream after the first chunk (x-demo-drop),"
           " once after the headers reached the client, once before",
           client_saw=f"200 + {len(events)} SSE events, no [DONE], {transport_error}; early drop: 502 OpenAI JSON; "
           "repeat = miss", sent=3, errors=0, lost=0, cache="on" if cstack.cache_on else "off")


def test_identical_concurrent_misses_are_coalesced_not_failed(cstack, needs_cache, record):
    """8 clients send the same new prompt at once to a slow (500 ms) upstream. Client sees: 8 × 200 with the same
    answer; one went upstream (x-router-cache: miss), the others waited for it (hit). Regression: the followers
    used to get HTTP 500 (the router's cache-metrics adapter lacked `coalesced`)."""
    import threading

    prompt = "A brand-new question asked by eight clients at once"
    results: list[tuple[int, str, str]] = []
    before = cstack.upstream_requests("large")

    def go() -> None:
        with client(cstack) as c:
            r = _post(c, prompt, **{"x-demo-latency-ms": "500"})
            text = r.json()["choices"][0]["message"]["content"] if r.status_code == 200 else r.text
            results.append((r.status_code, r.headers.get("x-router-cache", ""), text))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    statuses = sorted(r[0] for r in results)
    assert statuses == [200] * 8, results
    assert len({r[2] for r in results}) == 1, "every client got the same answer"
    upstream = cstack.upstream_requests("large") - before
    assert upstream < 8 and sorted(r[1] for r in results).count("miss") == upstream
    record("identical concurrent misses", injected="8 clients send the same new prompt at once (500 ms upstream)",
           client_saw=f"8 × 200, same answer; {upstream} upstream call(s), the rest served by coalescing",
           sent=8, errors=0, lost=0, cache="on")


@pytest.mark.parametrize("allow", [False, True])
def test_router_killed_and_restarted_under_load(make_stack, record, allow):
    """kill -9 the ext_proc router under load, restart it after ~1.5 s.
    failure_mode_allow=false (fail closed): clients see 500 only for requests in the gap (between the kill and
    shortly after the new router is ready), 200 before and after; a request already in flight at the instant of
    the kill may instead have its connection closed without a body (it cannot get an answer any more).
    failure_mode_allow=true (fail open): every request is 200 (in the gap it goes to the default model
    unrouted: no x-router-model header)."""
    cfg = copy.deepcopy(BACKBONE)
    cfg["envoy"] = {"failure_mode_allow": allow, "message_timeout_ms": 1000}
    stack = make_stack(cfg)
    load = Load(stack.url, body=lambda i: chat("large", f"load {i}"), threads=4, max_requests=3000,
                max_seconds=60).start()
    try:
        assert eventually(lambda: len(load.samples) >= 40, 15)
        t_kill = time.monotonic()
        stack.stop_process("router", signal.SIGKILL)
        time.sleep(1.5)
        stack.start_router()
        t_ready = time.monotonic()
        assert eventually(lambda: sum(1 for s in list(load.samples) if s.started >= t_ready + 2.0) >= 40, 30)
    finally:
        load.stop()
    before = load.statuses(lambda s: s.ended < t_kill)
    gap = load.statuses(lambda s: s.ended >= t_kill and s.started < t_ready + 2.0)
    after = load.statuses(lambda s: s.started >= t_ready + 2.0)
    all_st = load.statuses()
    assert set(before) == {200}, before
    assert set(after) == {200} and after[200] >= 40, after
    if allow:
        assert set(all_st) == {200}, all_st
    else:
        # A request already in flight when the router dies (its ext_proc stream breaks mid-exchange) can instead
        # see its connection closed without a body, about message_timeout later. Only those may; every request
        # that starts after the kill gets a proper HTTP answer (500 or 200).
        resets = [(round(s.started - t_kill, 3), round(s.ended - t_kill, 3), s.error)
                  for s in load.samples if s.status == 0]
        assert set(gap) <= {200, 500, 0}, gap
        assert all(started < 0 for started, _, _ in resets), f"reset of a request started after the kill: {resets}"
        assert gap.get(500, 0) >= 1, f"no request fell in the gap: {gap}"
    errors = sum(n for st, n in all_st.items() if st != 200)
    in_flight_cut = all_st.get(0, 0)
    record(f"router kill -9 + restart (failure_mode_allow={str(allow).lower()})",
           injected="kill -9 the router under 4-client load; restart after 1.5 s",
           client_saw=(f"before {before}, gap {gap}, after {after}"
                       + (f" (0 = {in_flight_cut} request(s) in flight at the kill, connection closed)"
                          if in_flight_cut else "") if not allow else f"all {all_st}"),
           sent=len(load.samples), errors=errors, expected_errors=0 if allow else errors,
           unexpected_errors=0, lost=0, gap_s=round(t_ready - t_kill, 2))


def test_corrupt_config_keeps_the_old_one_serving(make_stack, record):
    """The config file is overwritten with garbage, then with a semantically invalid config, while under load.
    Client sees: every request 200, still routed by the old config (x-router-model unchanged);
    router_config_reloads_total{result="failure"} counts both rejections."""
    stack = make_stack(copy.deepcopy(BACKBONE))
    original = stack.config_path.read_text()
    fails = lambda: value(scrape(stack.metrics_url), "router_config_reloads_total", result="failure")  # noqa: E731
    f0 = fails()
    models: list[str] = []

    load = Load(stack.url, body=lambda i: chat("auto", f"config {i}"), threads=3, max_requests=2000,
                max_seconds=60)
    load.start()
    try:
        assert eventually(lambda: len(load.samples) >= 20, 15)
        stack.config_path.write_text("models: [unclosed\n\x00\xff garbage")
        assert eventually(lambda: fails() == f0 + 1, 10), "garbage config not rejected"
        bad = yaml.safe_load(original)
        bad["default_model"] = "no-such-model"
        stack.config_path.write_text(yaml.safe_dump(bad))
        assert eventually(lambda: fails() == f0 + 2, 10), "invalid config not rejected"
        n = len(load.samples)
        assert eventually(lambda: len(load.samples) >= n + 30, 15)
        with client(stack) as c:
            for _ in range(5):
                r = c.post(CHAT, json=chat("auto"))
                assert r.status_code == 200
                models.append(r.headers["x-router-model"])
    finally:
        load.stop()
        stack.config_path.write_text(original)
    assert set(models) == {"large"}, "the old config (default_model: large) keeps serving"
    st = load.statuses()
    assert set(st) == {200}, st
    assert value(scrape(stack.metrics_url), "router_config_last_reload_successful") in (0, 1)
    record("config corrupted while running", injected="config file overwritten with non-YAML, then with an "
           "unknown default_model, under 3-client load",
           client_saw=f"all {st}; still routed to the old default (large); reload failures +{int(fails() - f0)}",
           sent=len(load.samples) + 5, errors=sum(n for s, n in st.items() if s != 200), lost=0)


# ── Milvus server killed and restarted under load ───────────────────────────────────────────────
def _milvus_stack(make_stack, milvus_server, tmp_path):
    backend = tmp_path / "milvus-server.yaml"
    backend.write_text(yaml.safe_dump({
        "uri": milvus_server.uri, "consistency_level": "Session",
        "connection": {"timeout": 2},
        "collection": {"name": f"rel_{int(time.time())}"},
        "performance": {"batch": {"insert_batch_size": 16}},
    }))
    cfg = copy.deepcopy(CACHED)
    cfg["semantic_cache"] = {**cfg["semantic_cache"], "backend_type": "milvus",
                             "backend_config_path": str(backend)}
    return make_stack(cfg)


def test_milvus_killed_and_restarted_under_load(make_stack, milvus_server, needs_cache, tmp_path, record):
    """kill -9 the Milvus server under load, restart it.
    Client sees: every request 200 throughout (served uncached while Milvus is down; hot-tier hits continue).
    Metrics: router_cache_backend_up goes 1 → 0 → 1; after the restart new answers are stored in Milvus again,
    hits continue, and no queued entry is dropped (stores "dropped" stays 0; every queued entry is written)."""
    stack = _milvus_stack(make_stack, milvus_server, tmp_path)
    up = lambda: value(scrape(stack.metrics_url), "router_cache_backend_up")  # noqa: E731
    assert eventually(lambda: up() == 1, 30), "router never connected to milvus-server"
    hot = [f"What is the capital of country number {k}?" for k in range(20)]

    def body(i: int) -> dict:
        # 1 in 2 repeats a hot prompt (hits), the rest are new prompts (misses that queue inserts)
        content = hot[i % len(hot)] if i % 2 == 0 else f"Unique question {i} about the milvus fault test"
        return chat("large", content, temperature=0.2)

    # bounded by time: the load must still be running after the restart (4,000 requests were done before it)
    load = Load(stack.url, body=body, headers=lambda i: {"authorization": "Bearer milvus-tenant"}, threads=3,
                max_requests=40000, max_seconds=240, timeout=30).start()
    timeline = {}
    try:
        assert eventually(lambda: len(load.samples) >= 60, 60)
        s0 = scrape(stack.metrics_url)
        assert value(s0, "router_cache_stores_total", result="stored") >= 1, "nothing reached milvus before"
        timeline["kill"] = time.monotonic()
        milvus_server.kill()
        assert eventually(lambda: up() == 0, 30), "router_cache_backend_up did not drop to 0"
        timeline["down_seen"] = time.monotonic()
        n = len(load.samples)
        assert eventually(lambda: len(load.samples) >= n + 30, 30)
        queued_down = value(scrape(stack.metrics_url), "router_cache_stores_total", result="queued")
        milvus_server.start()
        timeline["restarted"] = time.monotonic()
        assert eventually(lambda: up() == 1, 60), "router did not reconnect to milvus-server"
        timeline["up_seen"] = time.monotonic()
        hits_at_up = total(scrape(stack.metrics_url), "router_cache_lookups_total", result="exact_hit") + \
            total(scrape(stack.metrics_url), "router_cache_lookups_total", result="hit")
        n = len(load.samples)
        assert eventually(lambda: len(load.samples) >= n + 60, 60)
    finally:
        load.stop()

    def settled():
        s = scrape(stack.metrics_url)
        return value(s, "router_cache_stores_total", result="stored") >= \
            value(s, "router_cache_stores_total", result="queued")
    if not eventually(settled, 60):
        s = scrape(stack.metrics_url)
        pytest.fail("queued entries were not all written to milvus after it came back: " + str(
            {k[1]: v for k, v in s.items() if k[0] in ("router_cache_stores_total", "router_cache_errors_total",
                                                       "router_cache_backend_up")}))
    s = scrape(stack.metrics_url)
    hits_end = total(s, "router_cache_lookups_total", result="exact_hit") + total(s, "router_cache_lookups_total",
                                                                                  result="hit")
    st = load.statuses()
    assert set(st) == {200}, st
    assert hits_end > hits_at_up, "cache hits did not resume after the restart"
    assert value(s, "router_cache_stores_total", result="dropped") == 0
    queued, stored = (value(s, "router_cache_stores_total", result=r) for r in ("queued", "stored"))
    record("Milvus server kill -9 + restart", injected="kill -9 milvus-server under 3-client load (50% repeats), "
           "restart it (same data dir, same port)",
           client_saw=f"all {st}; router_cache_backend_up 1→0→1; hits resumed ({int(hits_at_up)}→{int(hits_end)})",
           sent=len(load.samples), errors=sum(n for k, n in st.items() if k != 200),
           lost=int(max(0, queued - stored)), queued=int(queued), stored=int(stored),
           queued_while_down=int(queued_down),
           outage_s=round(timeline["up_seen"] - timeline["kill"], 1))
