"""`router-extproc cache stats|clear [--scope S]` on a Milvus Lite file."""

import numpy as np

from router_extproc.cache import SemanticCache, build_key
from router_extproc.cache.admin import cache_clear, cache_stats, resolve_scope
from router_extproc.config_cache import MilvusConfig, SemanticCacheConfig

DIM = 8


def cfg_for(tmp_path):
    return SemanticCacheConfig(enabled=True, backend_type="milvus",
                               milvus=MilvusConfig(uri=str(tmp_path / "c.db"), flush_interval_ms=10))


def completion():
    return {"object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}


def test_a_scope_is_given_as_an_id_or_as_the_raw_header_value():
    cfg = SemanticCacheConfig()
    key = build_key({"messages": [{"role": "user", "content": "hi"}]}, "m", {"authorization": "Bearer t"}, cfg)
    assert resolve_scope("Bearer t", cfg) == key.scope
    assert resolve_scope(key.scope, cfg) == key.scope
    assert resolve_scope("anon", cfg) == "anon" and resolve_scope(None, cfg) is None


async def test_stats_and_clear_by_tenant_on_a_stopped_routers_file(tmp_path):
    cfg = cfg_for(tmp_path)
    c = SemanticCache.from_config(cfg, dimension=DIM, verifier_path=None)
    await c.start()
    for i, tenant in enumerate(["Bearer a", "Bearer b", "Bearer b"]):
        k = build_key({"messages": [{"role": "user", "content": f"q{i}"}]}, "m", {"authorization": tenant}, cfg)
        c.store(k, np.eye(DIM, dtype=np.float32)[i], completion())
    await c.close()

    s = await cache_stats(cfg, dimension=DIM)
    assert s["entries"] == 3 and s["available"] and s["backend"] == "milvus"
    assert await cache_clear(cfg, "Bearer b", dimension=DIM) == 2
    assert (await cache_stats(cfg, dimension=DIM))["entries"] == 1
    assert await cache_clear(cfg, dimension=DIM) == 1


# ---------------------------------------------------------------- through the CLI, as an operator runs it

import dataclasses  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

from router_extproc.cache.admin import handle_admin  # noqa: E402
from router_extproc.dev.stack import free_port  # noqa: E402

CLI_DIM = 384  # what the CLI gives the backend without a model dir (a Milvus collection is checked against it)


def cli(*args, cwd, env=None):
    proc = subprocess.run([sys.executable, "-m", "router_extproc.cli", "cache", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def router_yaml(tmp_path, scope_headers=("authorization",)):
    (tmp_path / "milvus.yaml").write_text(f"uri: {tmp_path / 'c.db'}\n")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "models": [{"name": "m", "endpoint": "127.0.0.1:9"}],
        "server": {"metrics_listen": f"127.0.0.1:{free_port()}"},  # no router there: the CLI opens the file
        "signals": {"model_dir": str(tmp_path / "no-models")},
        "semantic_cache": {"enabled": True, "backend_type": "milvus", "backend_config_path": "milvus.yaml",
                           "scope_headers": list(scope_headers)}}))
    return path


FILL = """
import asyncio, sys, json
import numpy as np
from router_extproc.cache import SemanticCache, build_key
from router_extproc.config import load_config

async def main(path, tenants):
    cfg = load_config(path).semantic_cache
    c = SemanticCache.from_config(cfg, dimension={dim}, verifier_path=None)
    await c.start()
    for i, headers in enumerate(tenants):
        k = build_key({{"messages": [{{"role": "user", "content": f"q{{i}}"}}]}}, "m", headers, cfg)
        c.store(k, np.eye({dim}, dtype=np.float32)[i], {completion!r})
    await c.close()

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""


def fill(path, tenants):
    # In its own process, like the router whose file the CLI opens: Milvus Lite holds the file while its
    # process lives.
    script = FILL.format(dim=CLI_DIM, completion=completion())
    subprocess.run([sys.executable, "-c", script, str(path), json.dumps(tenants)], check=True, timeout=120)


def test_the_cli_reads_and_clears_a_stopped_routers_backend(tmp_path):
    # `router-extproc cache stats` and `cache clear` used to fail with ImportError (run_admin did not exist).
    path = router_yaml(tmp_path, scope_headers=("authorization", "x-api-key"))
    fill(path, [{"authorization": "Bearer a"}, {"x-api-key": "k-b"}, {"x-api-key": "k-b"},
                     {"authorization": "Bearer a", "x-api-key": "k-b"}])

    rc, out, err = cli("stats", "--config", str(path), cwd=tmp_path)
    assert rc == 0, err
    stats = json.loads(out)
    assert stats["via"] == "backend" and stats["entries"] == 4
    # With several scope headers the tenant is named by its headers, hashed exactly as the router hashes them.
    rc, out, err = cli("clear", "--config", str(path), "--header", "x-api-key: k-b", cwd=tmp_path)
    assert rc == 0, err
    assert json.loads(out)["cleared"] == 2
    rc, out, err = cli("clear", "--config", str(path), "--header", "Authorization: Bearer a",
                       "--header", "x-api-key: k-b", cwd=tmp_path)
    assert json.loads(out)["cleared"] == 1
    rc, out, err = cli("stats", "--config", str(path), cwd=tmp_path)
    assert json.loads(out)["entries"] == 1


def test_several_scope_headers_resolve_like_the_router():
    cfg = dataclasses.replace(SemanticCacheConfig(), scope_headers=("authorization", "x-api-key"))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    both = build_key(body, "m", {"authorization": "Bearer t", "x-api-key": "k"}, cfg).scope
    only_key = build_key(body, "m", {"x-api-key": "k"}, cfg).scope
    assert resolve_scope(None, cfg, ["Authorization: Bearer t", "X-Api-Key: k"]) == both
    assert resolve_scope(None, cfg, ["x-api-key: k"]) == only_key != both
    with pytest.raises(ValueError):
        resolve_scope(None, cfg, ["no colon"])


class FakeCache:
    def __init__(self):
        self.cleared = []

    async def stats(self):
        return {"entries": 1}

    async def clear(self, scope=None):
        self.cleared.append(scope)
        return 1


@pytest.mark.parametrize("peer, headers, token, status", [
    ("127.0.0.1", {}, None, 200),
    ("::1", {}, None, 200),
    ("10.1.2.3", {}, None, 403),                                   # no token: loopback peers only
    ("10.1.2.3", {"authorization": "Bearer s3cret"}, "s3cret", 200),
    ("127.0.0.1", {}, "s3cret", 403),                              # a token, once set, is always required
    ("10.1.2.3", {"authorization": "Bearer wrong"}, "s3cret", 403),
])
async def test_admin_endpoints_need_a_loopback_peer_or_the_token(peer, headers, token, status):
    cache = FakeCache()
    got, body = await handle_admin(cache, "POST", "/admin/cache/clear?scope=anon", peer, headers, token)
    assert got == status
    assert cache.cleared == (["anon"] if status == 200 else [])


async def test_admin_refuses_a_malformed_scope_and_unknown_actions():
    cache = FakeCache()
    assert (await handle_admin(cache, "POST", "/admin/cache/clear?scope=x'or'1", "127.0.0.1", {}, None))[0] == 400
    assert (await handle_admin(cache, "GET", "/admin/cache/clear", "127.0.0.1", {}, None))[0] == 404
    assert (await handle_admin(None, "GET", "/admin/cache/stats", "127.0.0.1", {}, None))[0] == 404
    assert (await handle_admin(cache, "GET", "/admin/cache/stats", "127.0.0.1", {}, None)) == (200, {"entries": 1})


def test_the_admin_token_comes_from_the_environment_or_a_file(tmp_path, monkeypatch):
    from router_extproc.cache.admin import TOKEN_ENV, admin_token
    from router_extproc.config import parse_config
    from router_extproc.errors import ConfigError

    def cfg(**server):
        return parse_config({"models": [{"name": "m", "endpoint": "127.0.0.1:9"}], "server": server},
                            source=tmp_path / "c.yaml")

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert admin_token(cfg()) is None
    (tmp_path / "token").write_text("from-file\n")
    assert admin_token(cfg(admin_token_file=str(tmp_path / "token"))) == "from-file"
    monkeypatch.setenv(TOKEN_ENV, "from-env")
    assert admin_token(cfg(admin_token_file=str(tmp_path / "token"))) == "from-env"
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(ConfigError, match=r"c.yaml: server.admin_token_file: cannot read"):
        admin_token(cfg(admin_token_file=str(tmp_path / "missing")))
