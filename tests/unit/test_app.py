"""The config watcher: a reload that fails for any reason is counted and logged, the running config keeps serving
and the watcher keeps watching."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from router_extproc import app
from router_extproc.app import ConfigWatcher
from router_extproc.config import load_config
from router_extproc.metrics import Metrics
from router_extproc.pipeline import Router


def write(path: Path, default: str) -> None:
    path.write_text(yaml.safe_dump({"models": [{"name": "a", "endpoint": "127.0.0.1:9001"},
                                               {"name": "b", "endpoint": "127.0.0.1:9002"}],
                                    "default_model": default, "signals": {"category": False, "complexity": False,
                                                                          "jailbreak": False, "pii": False}}))


def failures(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("router_config_reloads_total", {"result": "failure"}) or 0.0


async def wait_until(check, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def not_utf8(path: Path, tmp: Path) -> None:
    path.write_bytes(b"default_model: caf\xe9\n")


def milvus_path_is_a_directory(path: Path, tmp: Path) -> None:
    (tmp / "milvus-dir").mkdir(exist_ok=True)
    data = yaml.safe_load(path.read_text())
    data["semantic_cache"] = {"enabled": True, "backend_type": "milvus", "backend_config_path": str(tmp / "milvus-dir")}
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize("break_it", [not_utf8, milvus_path_is_a_directory])
async def test_a_failed_reload_is_counted_and_the_watcher_survives(tmp_path, break_it):
    # Both used to raise out of the watcher task: it died silently and no later change was ever loaded.
    path = tmp_path / "config.yaml"
    write(path, "a")
    metrics = Metrics()
    router = Router(load_config(path), metrics=metrics)
    watcher = ConfigWatcher(path, router, metrics, interval_s=0.02)
    task = asyncio.create_task(watcher.run(asyncio.Event()))
    try:
        await asyncio.sleep(0.05)
        break_it(path, tmp_path)
        await wait_until(lambda: failures(metrics) >= 1)
        assert router.config.default_model == "a" and not task.done()
        write(path, "b")
        await wait_until(lambda: router.config.default_model == "b")
    finally:
        task.cancel()


async def test_an_unexpected_exception_in_a_reload_is_caught_too(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    write(path, "a")
    metrics = Metrics()
    router = Router(load_config(path), metrics=metrics)

    def boom(_path):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app, "load_config", boom)
    assert ConfigWatcher(path, router, metrics).reload() is False
    assert failures(metrics) == 1 and router.config.default_model == "a"


def test_readiness_waits_for_the_grpc_server_to_accept_streams():
    # models and cache can be ready while custom routes still embed their examples: Envoy's calls would be refused
    from router_extproc.app import Health

    h = Health(models_loaded=True, cache_ready=True)
    assert not h.ready
    h.serving = True
    assert h.ready
    h.draining = True
    assert not h.ready
