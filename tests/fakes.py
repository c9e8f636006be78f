"""Test doubles for the request path's two collaborators (stages/contracts.py): a deterministic signal source
(hash embeddings, regex PII) and an in-memory cache, plus a config and one in-process HTTP exchange through the
Router's phases. The tests that use them are about the router's handling, not about the classifiers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from router_extproc.cache import SemanticCache, build_key, render_sse
from router_extproc.config import parse_config
from router_extproc.pipeline import Continue, Respond, Router
from router_extproc.signals.types import PIIEntity, Signals

DIM = 32

PII_PATTERNS = {
    "EMAIL_ADDRESS": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+"),
    "US_SSN": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "PHONE_NUMBER": re.compile(r"\+?\d[\d ()-]{8,}\d"),
}


def embed(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeSignals:
    """The SignalEngine surface the Router uses: `analyze(text) -> Signals`, `labels`, `dimension`."""

    labels: dict = {"thresholds": {"jailbreak": 0.5}}
    dimension = DIM

    async def analyze(self, text: str, budget: int | None = None) -> Signals:
        pii = tuple(PIIEntity(kind, m.start(), m.end(), 0.99)
                    for kind, rx in PII_PATTERNS.items() for m in rx.finditer(text))
        return Signals(embedding=embed(text), category="other", category_confidence=0.9, complexity=0.1,
                       jailbreak=0.99 if "IGNORE ALL PREVIOUS" in text else 0.0, pii=pii, tokens=len(text.split()))

    def analyze_batch(self, texts: list[str]) -> list[Signals]:
        """The engine's offline view: here only the embedding is read (custom routes embed their examples)."""
        return [Signals(embedding=embed(t), category="other", category_confidence=0.9, complexity=0.1,
                        jailbreak=0.0, pii=(), tokens=len(t.split())) for t in texts]

    async def analyze_reads(self, reads, budget) -> Signals:
        # one text for the fake (the role rule is tested against the real engine in test_signals_inputs.py);
        # PII offsets point into each Read's own text, as the engine's do
        s = await self.analyze("\n".join(r.text for r in reads))
        pii = tuple(PIIEntity(kind, m.start(), m.end(), 0.99, j) for j, r in enumerate(reads)
                    for kind, rx in PII_PATTERNS.items() for m in rx.finditer(r.text))
        return dataclasses.replace(s, pii=pii)

    async def close(self) -> None:
        pass


@dataclasses.dataclass(kw_only=True)
class SignalValues:
    """One signal pass's result set by hand, for the pure decision (the SignalsLike contract of stages/contracts.py).
    A test module subclasses it with the defaults its scenarios start from (keyword-only, so a subclass may add a
    positional field)."""

    category: str = "other"
    category_confidence: float = 0.9
    complexity: float = 0.1
    jailbreak: float = 0.0
    injection: float = 0.0
    pii: frozenset = dataclasses.field(default_factory=frozenset)

    @property
    def pii_types(self):
        return self.pii


def router_config(**logging_cfg):
    return parse_config({
        "models": [
            {"name": "small", "served_name": "demo/small", "endpoint": "127.0.0.1:1", "pii_allow": ["*"]},
            {"name": "large", "served_name": "demo/large", "endpoint": "127.0.0.1:2", "pii_allow": ["*"]},
        ],
        "default_model": "large",
        "signals": {"category": False, "complexity": False, "jailbreak": True, "pii": True},
        "guards": {"jailbreak": True, "pii": True},
        "semantic_cache": {"enabled": True, "backend_type": "memory", "similarity_threshold": 0.9,
                           "cache_anonymous": True},   # these tests send no scope header unless about tenants
        "logging": {"level": "info", **logging_cfg},
    }, source=Path("privacy-test.yaml"))


def memory_cache(cfg) -> SemanticCache:
    return SemanticCache.from_config(cfg.semantic_cache, dimension=DIM, verifier_path=None)


def chat(content: str, model: str = "large", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], "temperature": 0.2, **extra}


def upstream_answer(body: dict, model: str) -> bytes:
    """Like the demo upstream: the answer quotes the prompt (so a stored answer would leak it too); SSE when the
    request asked for a stream."""
    last = body["messages"][-1]["content"]
    comp = {"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"re: {last}"},
                         "finish_reason": "stop"}]}
    return render_sse(comp) if body.get("stream") else json.dumps(comp).encode()


async def exchange(router: Router, body: dict | bytes, headers: dict | None = None):
    """One HTTP exchange through the router's phases, the upstream answering 200 when asked.
    Returns (answer of the body phase, response headers the router adds or None)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ex = router.new_exchange()
    h = {":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json",
         "content-length": str(len(raw)), "x-request-id": "req-1", **(headers or {})}
    first = router.on_request_headers(ex, h, False)
    if isinstance(first, Respond):
        router.on_stream_end(ex)
        return first, None
    answer = await router.on_request_body(ex, raw)
    out = None
    if isinstance(answer, Continue):
        plan = router.on_response_headers(ex, {":status": "200", "content-type": "application/json"})
        out = dict(plan.set_headers)
        if plan.tap_body:
            router.on_response_body(ex, upstream_answer(json.loads(raw), ex.decision.model), True)
    router.on_stream_end(ex)
    return answer, out


@dataclasses.dataclass
class FakeHit:
    completion: dict
    similarity: float = 1.0
    exact: bool = True


class FakeCache:
    """The Cache contract with exact lookups only, and a record of what the router asked for."""

    def __init__(self) -> None:
        self.entries: dict[Any, dict] = {}
        self.claimed: set[Any] = set()
        self.released: list[tuple[Any, dict | None]] = []

    @staticmethod
    def _id(key: Any) -> tuple[str, str]:
        return key.scope, key.fingerprint

    def exact_lookup(self, key: Any) -> FakeHit | None:
        comp = self.entries.get(self._id(key))
        return None if comp is None else FakeHit(dict(comp))

    async def lookup(self, key: Any, embedding: Any, text: str) -> FakeHit | None:
        return self.exact_lookup(key)

    def claim(self, key: Any) -> bool:
        if self._id(key) in self.claimed:
            return False
        self.claimed.add(self._id(key))
        return True

    async def wait_for_leader(self, key: Any, timeout_s: float | None = None) -> FakeHit | None:
        return None

    def release(self, key: Any, completion: dict | None) -> None:
        self.claimed.discard(self._id(key))
        self.released.append((self._id(key), completion))

    def store(self, key: Any, embedding: Any, completion: dict) -> None:
        self.entries[self._id(key)] = completion


# ── cache test data: the cache suites (service, Milvus Lite, Milvus server) share these ─────────────────────────
CACHE_DIM = 16


def vec(seed: int, noise: float = 0.0, base: np.ndarray | None = None, *, noise_seed: int = 99) -> np.ndarray:
    """A unit vector fixed by `seed` (or `base`), moved by `noise` in a direction fixed by `seed + noise_seed`."""
    v = np.random.default_rng(seed).normal(size=CACHE_DIM).astype(np.float32) if base is None else base.copy()
    if noise:
        v = v + noise * np.random.default_rng(seed + noise_seed).normal(size=CACHE_DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def cache_request(q: str, **kw: Any) -> dict:
    return {"messages": [{"role": "user", "content": q}], "temperature": 0.7, **kw}


CACHE_TENANT = {"authorization": "Bearer a"}


def cache_key(q: str, cfg: Any, tenant: dict = CACHE_TENANT, model: str = "m1"):
    """The cache key (cache/keys.py) of a one-message request `q` for `model`, from the tenant's headers."""
    return build_key(cache_request(q), model, tenant, cfg)


def cached_completion(text: str = "Paris.") -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m1",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
