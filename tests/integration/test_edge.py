"""Every way in is guarded at the edge, through a real Envoy: path spellings, spoofed routing headers with the
router up or down, slow dependencies that must not turn into 500s, and erasure from a running router."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from .conftest import BACKBONE, ROOT, chat, client, needs_models

ECHO = {"x-demo-echo": "1", "content-type": "application/json"}
TENANT = {"authorization": "Bearer edge-tenant"}


def raw_post(stack, path: str, body: dict, headers: dict) -> tuple[int, dict, bytes]:
    """POST with the path sent byte for byte (httpx would normalise it before Envoy sees it)."""
    e = stack.config.envoy
    conn = http.client.HTTPConnection(e.listen_host, e.listen_port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def upstream_calls(stack) -> int:
    return sum(stack.upstream_requests(m.name) for m in stack.config.models)


# ---------------------------------------------------------------- path spellings

@pytest.fixture(scope="module")
def backbone(make_stack):
    return make_stack()


CANONICAL = ["/v1/chat/completions", "/v1/chat/completions?api-version=1", "//v1/chat/completions",
             "/v1//chat/completions", "/v1/./chat/completions", "/v1/x/../chat/completions",
             "/v1/chat/%63ompletions"]
REFUSED = ["/v1/chat/completions/", "/V1/chat/completions", "/v1/chat/completions%2F", "/v1%2Fchat%2Fcompletions",
           "/v1/chat/completions%5C", "/v1/chat/completions;x", "/v1/embeddings", "/", "/v1/chat/completion"]


@pytest.mark.parametrize("path", CANONICAL + REFUSED)
def test_no_spelling_of_a_path_reaches_an_upstream_unguarded(backbone, path):
    # `/v1/chat/completions/` and `//v1/chat/completions` used to skip the router and reach the default model
    # with `model: auto` and no guard: 200 from the upstream.
    before = upstream_calls(backbone)
    status, headers, body = raw_post(backbone, path, chat("small"), ECHO)
    if status == 200:
        # it reached the router as the canonical path: the router chose the model and rewrote the body
        assert path in CANONICAL, f"{path} was forwarded"
        assert headers["x-router-model"] == "small"
        assert json.loads(body)["demo_received"]["model"] == "demo/small-0.6b"
    else:
        assert path in REFUSED, f"{path}: {status} {body[:200]!r}"
        assert status in (400, 404), (status, body)
        assert upstream_calls(backbone) == before
        if status == 404:
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["error"]["code"] == "unknown_url"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_on_a_guarded_path_are_refused(backbone, method):
    # The router reads bodies of POSTs only: a GET with a JSON body used to be forwarded to the model unread.
    before = upstream_calls(backbone)
    e = backbone.config.envoy
    conn = http.client.HTTPConnection(e.listen_host, e.listen_port, timeout=30)
    conn.request(method, "/v1/chat/completions", body=json.dumps(chat("small")).encode(), headers=ECHO)
    r = conn.getresponse()
    assert r.status == 404 and json.loads(r.read())["error"]["code"] == "unknown_url"
    conn.close()
    assert upstream_calls(backbone) == before


def test_the_model_list_is_answered_by_the_router(backbone):
    with client(backbone) as c:
        r = c.get("/v1/models")
    assert r.status_code == 200 and "auto" in [m["id"] for m in r.json()["data"]]


def test_a_passthrough_path_reaches_the_default_model_without_the_router(make_stack):
    config = {**BACKBONE, "envoy": {"passthrough_paths": ["/v1/embeddings", "/v1/files/*"]}}
    stack = make_stack(config)
    for path in ("/v1/embeddings", "/v1/files/abc"):
        status, headers, body = raw_post(stack, path, {"model": "small", "input": "x"}, ECHO)
        # the demo upstream has no such endpoint: its own 404 shows the request reached it, without the router
        assert json.loads(body)["error"]["message"] == f"demo upstream has no {path}"
        assert "x-router-model" not in headers and "x-router-cache" not in headers
    status, _, body = raw_post(stack, "/v1/embeddings/x", {}, ECHO)
    assert json.loads(body)["error"]["code"] == "unknown_url"


# ---------------------------------------------------------------- fail-open never hands routing to the client

def test_with_the_router_down_a_client_cannot_pick_the_model(make_stack):
    # failure_mode_allow: true and no router: the client's x-selected-model used to reach Envoy's route match,
    # so a client could pick any model, also one the PII policy forbids.
    stack = make_stack({**BACKBONE, "envoy": {"failure_mode_allow": True}})
    stack.stop_process("router")
    spoof = {**ECHO, "x-selected-model": "small", "x-router-model": "small", "x-router-cache": "hit"}
    for _ in range(3):
        status, headers, body = raw_post(stack, "/v1/chat/completions", chat("auto"), spoof)
        assert status == 200, body
        assert headers["x-demo-upstream"] == "demo/large-8b"        # the default model
        seen = json.loads(body)["demo_headers"]
        assert not any(h == "x-selected-model" or h.startswith("x-router-") for h in seen), seen


# ---------------------------------------------------------------- slow leader, slow Milvus, scopes, erasure

def cache_config(**cache) -> dict:
    data = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    data["signals"]["jailbreak"] = False
    data["semantic_cache"].update({"backend_type": "memory", "backend_config_path": None, **cache})
    return data


def post(stack, body, headers, out: list, i: int) -> None:
    with client(stack, timeout=60) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/chat/completions", json=body, headers=headers)
        out[i] = (r.status_code, r.headers.get("x-router-cache"), time.perf_counter() - t0)


@needs_models
def test_a_slow_leader_releases_its_followers_to_go_upstream(make_stack):
    # The leader's upstream answers (7 s) after Envoy's message_timeout (5 s): a follower used to wait up to 30 s for it
    # inside the body phase and got a 500 at 5 s. Now it gives up after coalesce_timeout_s (2 s) and goes itself.
    stack = make_stack(cache_config(), demo_latency_ms=7000)
    body = {"model": "auto", "messages": [{"role": "user", "content": "Explain how tides work."}],
            "temperature": 0.2}
    results: list = [None, None]
    leader = threading.Thread(target=post, args=(stack, body, TENANT, results, 0))
    leader.start()
    time.sleep(0.7)
    post(stack, body, TENANT, results, 1)
    leader.join()
    assert results[0][0] == 200 and results[1][0] == 200, results
    assert results[1][1] == "miss"   # it went upstream itself


@needs_models
def test_anonymous_requests_are_not_cached_by_default(make_stack):
    stack = make_stack(cache_config())
    body = {"model": "auto", "messages": [{"role": "user", "content": "What is a prime number?"}],
            "temperature": 0.2}
    with client(stack) as c:
        states = []
        for _ in range(2):
            states.append(c.post("/v1/chat/completions", json=body).headers["x-router-cache"])
            time.sleep(0.3)
        assert states == ["bypass", "bypass"]
        for _ in range(2):
            states.append(c.post("/v1/chat/completions", json=body, headers=TENANT).headers["x-router-cache"])
            time.sleep(0.3)
        assert states[2:] == ["miss", "hit"]


@needs_models
def test_a_tool_call_request_gets_no_semantic_hit(make_stack):
    stack = make_stack(cache_config())
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    q = {"model": "auto", "messages": [{"role": "user", "content": "What is the weather in Paris today?"}]}
    with client(stack) as c:
        def state(**extra):
            r = c.post("/v1/chat/completions", json={**q, **extra}, headers=TENANT)
            time.sleep(0.3)
            return r.headers["x-router-cache"]

        # the same text at another temperature is a semantic (not a literal) repeat
        assert [state(temperature=0.2), state(temperature=0.3)] == ["miss", "hit"]
        assert [state(temperature=0.2, tools=tools), state(temperature=0.3, tools=tools)] == ["miss", "miss"]
        assert state(temperature=0.2, tools=tools) == "hit"   # a literal repeat still is


SLOW_SEARCH = '''
import os, time
from router_extproc.cache import milvus
_search = milvus.MilvusBackend._search_sync
def _slow(self, *a, **k):
    time.sleep(float(os.environ["EDGE_SLOW_MILVUS_S"]))
    return _search(self, *a, **k)
milvus.MilvusBackend._search_sync = _slow
'''


@needs_models
def test_a_slow_milvus_serves_uncached_instead_of_failing(make_stack, tmp_path):
    # Every search sleeps 6 s (the real backend, wrapped in the router process). Before, a search was bounded at
    # 6 s, past Envoy's 5 s message_timeout: the client got a 500. Now it is given up after search.timeout (1 s)
    # and the request goes upstream uncached.
    (tmp_path / "sitecustomize.py").write_text(SLOW_SEARCH)
    (tmp_path / "milvus.yaml").write_text(f"uri: {tmp_path / 'slow.db'}\n")
    config = cache_config(backend_type="milvus", backend_config_path=str(tmp_path / "milvus.yaml"), hot_entries=0)
    stack = make_stack(config, env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "EDGE_SLOW_MILVUS_S": "6"})
    with client(stack) as c:
        for i in range(3):
            body = {"model": "auto", "messages": [{"role": "user", "content": f"Name a river in Europe ({i})."}],
                    "temperature": 0.2}
            r = c.post("/v1/chat/completions", json=body, headers=TENANT)
            assert r.status_code == 200, r.text
    assert "milvus cache backend unavailable" in stack.log("router")


def cli(stack, *args, token: str | None = "edge-admin-token", rc: int = 0) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ROUTER_EXTPROC_ADMIN_TOKEN"}
    if token:
        env["ROUTER_EXTPROC_ADMIN_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-m", "router_extproc.cli", "cache", *args, "--config",
                           str(stack.config_path)], capture_output=True, text=True, timeout=60, cwd=stack.workdir,
                          env=env)
    assert proc.returncode == rc, proc.stderr
    return json.loads(proc.stdout)


@needs_models
def test_cache_clear_reaches_the_running_routers_in_process_tiers(make_stack):
    config = cache_config(scope_headers=["authorization", "x-api-key"])
    stack = make_stack(config, env={"ROUTER_EXTPROC_ADMIN_TOKEN": "edge-admin-token"})
    tenant = {"x-api-key": "k-edge"}
    body = {"model": "auto", "messages": [{"role": "user", "content": "How far is the Moon?"}], "temperature": 0.2}
    with client(stack) as c:
        def state(headers):
            r = c.post("/v1/chat/completions", json=body, headers=headers)
            time.sleep(0.3)
            return r.headers["x-router-cache"]

        assert [state(tenant), state(tenant), state(TENANT)] == ["miss", "hit", "miss"]
        # with a token set, even a loopback caller must present it
        refused = cli(stack, "clear", token=None, rc=1)
        assert [w["status"] for w in refused["routers"].values()] == [403]
        stats = cli(stack, "stats")
        assert stats["via"] == "router"
        [worker] = stats["routers"].values()
        assert worker["hot_entries"] == 2
        cleared = cli(stack, "clear", "--header", "x-api-key: k-edge")
        assert [w["cleared"] for w in cleared["routers"].values()] == [1]
        assert state(tenant) == "miss"       # gone from the running router, not only from a backend file
        assert state(TENANT) == "hit"        # the other tenant's entry stays
