"""The hit audit: a share of semantic hits is re-asked off the client's path, and disagreements become a live
false-hit estimate per category."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from router_extproc.cache.audit import AuditConfig, HitAudit, answer_text


def completion(text):
    return {"object": "chat.completion", "choices": [{"message": {"role": "assistant", "content": text},
                                                      "finish_reason": "stop"}]}


def audit(share=1.0, fresh="Paris", **kw):
    calls = []

    async def fetch(body):
        calls.append(body)
        return completion(fresh) if fresh is not None else None

    async def similarity(a, b):
        return 1.0 if a == b else 0.0

    reg = CollectorRegistry()
    return HitAudit(AuditConfig(share=share, **kw), fetch=fetch, similarity=similarity, registry=reg, seed=0), \
        calls, reg


def run(coro):
    return asyncio.run(coro)


def test_an_agreeing_answer_is_not_a_false_hit():
    async def go():
        a, calls, reg = audit(fresh="Paris")
        assert a.submit("geography", {"messages": []}, completion("Paris"))
        await a.drain()
        assert calls and a.estimate("geography") == (0.0, 1)
        assert reg.get_sample_value("router_cache_audit_false_hit_ratio", {"category": "geography"}) == 0.0
    run(go())


def test_a_disagreeing_answer_is_a_false_hit_of_its_category():
    async def go():
        a, _, reg = audit(fresh="Madrid")
        a.submit("geography", {}, completion("Paris"))
        a.submit("math", {}, completion("Madrid"))
        await a.drain()
        assert a.estimate("geography") == (1.0, 1) and a.estimate("math") == (0.0, 1)
        assert reg.get_sample_value("router_cache_audit_total",
                                    {"category": "geography", "outcome": "false_hit"}) == 1.0
    run(go())


def test_only_the_configured_share_is_audited():
    async def go():
        a, calls, _ = audit(share=0.25, max_inflight=1000)
        n = sum(a.submit("c", {}, completion("Paris")) for _ in range(400))
        await a.drain()
        assert 60 < n < 140 and len(calls) == n
    run(go())


def test_share_zero_is_off_and_never_calls_the_upstream():
    async def go():
        a, calls, _ = audit(share=0.0)
        assert not a.enabled and not a.submit("c", {}, completion("x"))
        await a.drain()
        assert calls == []
    run(go())


def test_audits_beyond_the_inflight_limit_are_dropped_not_queued():
    async def go():
        gate = asyncio.Event()

        async def fetch(body):
            await gate.wait()
            return completion("x")

        async def sim(a, b):
            return 1.0

        reg = CollectorRegistry()
        a = HitAudit(AuditConfig(share=1.0, max_inflight=2), fetch=fetch, similarity=sim, registry=reg)
        assert [a.submit("c", {}, completion("x")) for _ in range(3)] == [True, True, False]
        assert reg.get_sample_value("router_cache_audit_total", {"category": "c", "outcome": "dropped"}) == 1.0
        gate.set()
        await a.drain()
    run(go())


def test_an_upstream_failure_is_counted_and_never_raised():
    async def go():
        async def fetch(body):
            raise OSError("connection refused")

        async def sim(a, b):
            return 1.0

        reg = CollectorRegistry()
        a = HitAudit(AuditConfig(share=1.0), fetch=fetch, similarity=sim, registry=reg)
        a.submit("c", {}, completion("x"))
        await a.drain()
        assert a.estimate("c") == (None, 0)
        assert reg.get_sample_value("router_cache_audit_total", {"category": "c", "outcome": "error"}) == 1.0
    run(go())


def test_a_category_over_its_bound_gets_a_stricter_threshold_after_enough_samples():
    async def go():
        a, _, _ = audit(fresh="Madrid", max_false_hits=0.1, min_samples=3, raise_by=0.05, max_inflight=10)
        a.submit("geo", {}, completion("Paris"))
        await a.drain()
        assert a.threshold_raise("geo") == 0.0  # one sample is not enough
        for _ in range(2):
            a.submit("geo", {}, completion("Paris"))
        await a.drain()
        assert a.threshold_raise("geo") == pytest.approx(0.05) and a.threshold_raise("other") == 0.0
    run(go())


def test_the_answer_text_joins_the_choices():
    assert answer_text(completion("a")) == "a" and answer_text(None) == ""


def test_a_share_outside_0_1_is_refused():
    with pytest.raises(ValueError, match="share"):
        AuditConfig(share=1.5)


# ── the router's hook (pipeline.py, "# audit:") ─────────────────────────────────────────────────────────────
class RecordingAudit:
    def __init__(self):
        self.submitted = []

    def submit(self, category, body, served):
        self.submitted.append((category, body, served))
        return True

    def threshold_raise(self, category):
        return 0.0


def test_the_router_submits_semantic_hits_and_never_exact_ones():
    from router_extproc.pipeline import Respond, Router
    from tests.fakes import FakeSignals, chat, exchange, memory_cache, router_config

    class SameMeaning(FakeSignals):
        async def analyze(self, text, budget=None):
            # " really" changes no meaning here: equal embeddings, different fingerprints
            return await super().analyze(text.replace(" really", ""), budget)

    async def go():
        cfg = router_config()
        router = Router(cfg, signals=SameMeaning(), cache=memory_cache(cfg))
        router.cache_stage.audit = rec = RecordingAudit()
        await exchange(router, chat("What is the boiling point of water?"))
        exact, _ = await exchange(router, chat("What is the boiling point of water?"))
        assert isinstance(exact, Respond) and rec.submitted == []
        semantic, _ = await exchange(router, chat("What is really the boiling point of water?"))
        assert isinstance(semantic, Respond) and semantic.headers["x-router-cache"] == "hit"
        [(category, body, served)] = rec.submitted
        assert category == "none" and body["model"] == "large" and served["choices"]  # a named model: no category
    run(go())


def test_a_config_with_an_audit_share_builds_an_audit_that_asks_the_model_s_upstream():
    import dataclasses
    import json

    import httpx

    from router_extproc.cache.audit import build_audit
    from tests.fakes import FakeSignals, router_config

    cfg = router_config()
    assert build_audit(cfg, FakeSignals()) is None  # audit_share 0: off
    cfg = dataclasses.replace(cfg, semantic_cache=dataclasses.replace(cfg.semantic_cache, audit_share=1.0))
    seen = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), json.loads(request.content)))
        return httpx.Response(200, json=completion("Madrid"))

    async def go():
        a = build_audit(cfg, FakeSignals(), CollectorRegistry(), transport=httpx.MockTransport(upstream))
        m = cfg.models[0]
        assert a.submit("geo", {"model": m.name, "messages": [], "stream": True}, completion("Paris"))
        await a.drain()
        (url, body), = seen
        assert url == f"http://{m.host}:{m.port}/v1/chat/completions"
        assert body["model"] == m.served_name and body["stream"] is False
        assert a.estimate("geo") == (1.0, 1)  # FakeSignals embeds two different answers far apart
    run(go())


def test_a_category_over_its_bound_is_served_no_more_semantic_hits_below_the_raised_threshold():
    # End to end from the config: semantic_cache.audit_max_false_hits / audit_min_samples / audit_raise_by build an
    # audit whose raise the cache stage passes to the lookup. The upstream answers the audit with another answer,
    # so the one audited semantic hit is a false hit, the category goes over its bound, and the same kind of
    # rewording is then refused (threshold + raise_by > 1); exact repeats still hit.
    import dataclasses

    import httpx

    from router_extproc.cache.audit import build_audit
    from router_extproc.pipeline import Respond, Router
    from tests.fakes import FakeSignals, chat, exchange, memory_cache, router_config

    class SameMeaning(FakeSignals):
        async def analyze(self, text, budget=None):
            return await super().analyze(text.replace(" really", ""), budget)

    cfg = router_config()
    cfg = dataclasses.replace(cfg, semantic_cache=dataclasses.replace(
        cfg.semantic_cache, audit_share=1.0, audit_max_false_hits=0.5, audit_min_samples=1, audit_raise_by=0.5))

    async def go():
        signals = SameMeaning()
        router = Router(cfg, signals=signals, cache=memory_cache(cfg))
        router.cache_stage.audit = a = build_audit(
            cfg, signals, CollectorRegistry(),
            transport=httpx.MockTransport(lambda r: httpx.Response(200, json=completion("something else"))))
        await exchange(router, chat("What is the boiling point of water?"))
        first, _ = await exchange(router, chat("What is really the boiling point of water?"))
        assert isinstance(first, Respond) and first.headers["x-router-cache"] == "hit"
        await a.drain()
        assert a.estimate("none") == (1.0, 1) and a.threshold_raise("none") == pytest.approx(0.5)
        second, _ = await exchange(router, chat("What is really really the boiling point of water?"))
        assert not (isinstance(second, Respond) and second.headers.get("x-router-cache") == "hit")
        exact, _ = await exchange(router, chat("What is the boiling point of water?"))
        assert isinstance(exact, Respond) and exact.headers["x-router-cache"] == "hit"
    run(go())


@pytest.mark.parametrize("key,value", [("audit_max_false_hits", 1.5), ("audit_raise_by", -0.1),
                                       ("audit_min_samples", 0)])
def test_the_audit_bound_settings_are_validated_at_load(key, value):
    from pathlib import Path

    from router_extproc.config import parse_config
    from router_extproc.errors import ConfigError
    from tests.unit.test_config import minimal

    with pytest.raises(ConfigError, match=f"semantic_cache.{key}: must be"):
        parse_config(minimal(semantic_cache={"enabled": True, key: value}), source=Path("conf/router.yaml"))
