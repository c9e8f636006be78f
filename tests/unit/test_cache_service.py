"""The SemanticCache facade on the memory backend: what the server sees."""

import asyncio
import dataclasses

import numpy as np

from router_extproc.cache import SemanticCache
from router_extproc.cache.base import NoopMetrics
from router_extproc.config_cache import SemanticCacheConfig
from tests.fakes import CACHE_DIM as DIM, cache_key, cached_completion as completion
from tests import fakes

CFG = SemanticCacheConfig(enabled=True, backend_type="memory", similarity_threshold=0.9, max_entries=100,
                          ttl_seconds=3600)
TENANT_B = {"authorization": "Bearer b"}


def vec(seed, noise=0.0, base=None):
    return fakes.vec(seed, noise, base, noise_seed=1000)


class Recorder(NoopMetrics):
    def __init__(self):
        self.lookups, self.stores, self.errors = [], [], []

    def lookup(self, result, seconds):
        self.lookups.append(result)

    def store(self, result):
        self.stores.append(result)

    def error(self, op):
        self.errors.append(op)


def tenant_keys(q: str):
    """The same request from tenant A and from tenant B."""
    return cache_key(q, CFG), cache_key(q, CFG, TENANT_B)


async def make(cfg=CFG, metrics=None):
    c = SemanticCache.from_config(cfg, dimension=DIM, verifier_path=None, metrics=metrics)
    await c.start()
    return c


async def test_a_literal_repeat_is_an_exact_hit_with_a_fresh_id():
    c = await make()
    k = cache_key("What is the capital of France?", CFG)
    assert c.exact_lookup(k) is None
    c.store(k, vec(1), completion())
    hit = c.exact_lookup(k)
    assert hit.exact and hit.similarity == 1.0 and hit.completion["choices"][0]["message"]["content"] == "Paris."
    assert hit.completion["id"] != "chatcmpl-1"
    assert c.exact_lookup(k).completion["id"] != hit.completion["id"]
    await c.close()


async def test_a_close_paraphrase_is_a_semantic_hit():
    c = await make()
    k1 = cache_key("What is the capital of France?", CFG)
    k2 = cache_key("what's France's capital city", CFG)
    c.store(k1, vec(1), completion())
    hit = await c.lookup(k2, vec(1, 0.05), k2.text)
    assert hit is not None and not hit.exact and hit.similarity > 0.9
    await c.close()


async def test_a_far_question_is_refused_and_counted():
    m = Recorder()
    c = await make(metrics=m)
    k1 = cache_key("What is the capital of France?", CFG)
    c.store(k1, vec(1), completion())
    k2 = cache_key("What is the capital of Peru?", CFG)
    assert await c.lookup(k2, vec(1, 0.6), k2.text) is None
    assert m.lookups[-1] in ("refused", "miss")
    await c.close()


async def test_one_tenant_is_never_served_anothers_entry():
    c = await make()
    ka, kb = tenant_keys("What is the capital of France?")
    c.store(ka, vec(1), completion())
    assert c.exact_lookup(kb) is None
    assert await c.lookup(kb, vec(1), kb.text) is None
    await c.close()


async def test_a_different_model_is_never_served_the_entry():
    c = await make()
    k1 = cache_key("Hi", CFG)
    k2 = cache_key("Hi", CFG, model="m2")
    c.store(k1, vec(1), completion())
    assert await c.lookup(k2, vec(1), k2.text) is None
    await c.close()


async def test_entries_expire_after_the_ttl():
    cfg = dataclasses.replace(CFG, ttl_seconds=0.05)
    c = await make(cfg)
    k = cache_key("Hi", cfg)
    c.store(k, vec(1), completion())
    assert c.exact_lookup(k) is not None
    await asyncio.sleep(0.1)
    assert c.exact_lookup(k) is None and await c.lookup(k, vec(1), k.text) is None
    assert await c.expire() == 1
    await c.close()


async def test_incomplete_and_oversized_answers_are_not_stored():
    m = Recorder()
    cfg = dataclasses.replace(CFG, max_response_bytes=300)
    c = await make(cfg, m)
    k = cache_key("Hi", cfg)
    bad = completion()
    bad["choices"][0]["finish_reason"] = "length"
    c.store(k, vec(1), bad)
    c.store(k, vec(1), completion("x" * 1000))
    assert c.exact_lookup(k) is None and m.stores == ["not_cacheable", "too_large"]
    await c.close()


async def test_store_returns_at_once_and_never_raises():
    m = Recorder()
    c = await make(metrics=m)
    k = cache_key("Hi", CFG)
    c.store(k, np.ones(DIM + 3, np.float32), completion())  # wrong dimension
    assert m.errors == ["store"]
    await c.close()


async def test_a_broken_embedding_makes_a_lookup_miss_not_an_exception():
    m = Recorder()
    c = await make(metrics=m)
    k = cache_key("Hi", CFG)
    assert await c.lookup(k, np.ones(3, np.float32), k.text) is None
    assert m.lookups == ["error"] and m.errors == ["lookup"]
    await c.close()


async def test_concurrent_identical_misses_share_the_leaders_answer():
    c = await make()
    k = cache_key("Hi", CFG)
    assert c.claim(k) and not c.claim(k)
    followers = [asyncio.create_task(c.wait_for_leader(k, 5)) for _ in range(4)]
    await asyncio.sleep(0.01)
    c.release(k, completion())
    hits = await asyncio.gather(*followers)
    assert all(h is not None and h.completion["choices"][0]["message"]["content"] == "Paris." for h in hits)
    assert len({h.completion["id"] for h in hits}) == 4
    await c.close()


async def test_followers_go_upstream_when_the_leader_fails():
    c = await make()
    k = cache_key("Hi", CFG)
    c.claim(k)
    w = asyncio.create_task(c.wait_for_leader(k, 5))
    await asyncio.sleep(0.01)
    c.release(k, None)
    assert await w is None
    await c.close()


async def test_with_coalescing_off_every_request_leads():
    cfg = dataclasses.replace(CFG, coalesce=False)
    c = await make(cfg)
    k = cache_key("Hi", cfg)
    assert c.claim(k) and c.claim(k)
    await c.close()


async def test_stats_and_clear_by_tenant():
    c = await make()
    ka, kb = tenant_keys("Hi")
    c.store(ka, vec(1), completion())
    c.store(kb, vec(1), completion())
    s = await c.stats()
    assert s["entries"] == 2 and s["available"] and s["backend"] == "memory"
    assert await c.clear(ka.scope) == 1
    assert c.exact_lookup(ka) is None and c.exact_lookup(kb) is not None
    assert await c.clear() == 1
    await c.close()


async def test_max_entries_bounds_the_memory_cache():
    cfg = dataclasses.replace(CFG, max_entries=5)
    c = await make(cfg)
    for i in range(20):
        k = cache_key(f"question {i}", cfg)
        c.store(k, vec(i), completion())
    assert (await c.stats())["entries"] == 5
    await c.close()


# ---------------------------------------------------------------- a verifier that reads pair rows

def write_cross_verifier(path, *, accept: bool, pair_dim=3, gate: bool | None = None):
    """A verifier file whose scores ignore their input: it accepts (or refuses) every candidate. With ``gate``
    it is a cascade whose first stage lets every candidate through to the pair row (True) or none (False)."""
    import json

    from router_extproc.cache.verify import N_LEXICAL

    d_base = 2 * DIM + 2 + N_LEXICAL
    w = dict(w1_0=np.zeros((pair_dim + d_base, 4), np.float32), b1_0=np.zeros(4, np.float32),
             w2_0=np.zeros(4, np.float32), b2_0=np.array([5.0 if accept else -5.0], np.float32),
             cross_mu=np.zeros(pair_dim, np.float32), cross_sd=np.ones(pair_dim, np.float32))
    meta = {"dimension": DIM, "members": 1, "floor": 0.7, "threshold": 0.5, "idf": {}, "unk": 3.0,
            "cross": {"dim": pair_dim, "output": "seq_feat", "tokens": 128}}
    if gate is not None:
        w.update(gate_w1_0=np.zeros((d_base, 4), np.float32), gate_b1_0=np.zeros(4, np.float32),
                 gate_w2_0=np.zeros(4, np.float32), gate_b2_0=np.array([5.0 if gate else -5.0], np.float32))
        meta["gate"] = {"threshold": 0.2, "members": 1}
    np.savez(path / "verifier.npz", **w)
    (path / "verifier.json").write_text(json.dumps(meta))
    return path / "verifier.json"


class PairEncoderSpy:
    def __init__(self, dim=3):
        self.dim, self.calls = dim, []

    async def __call__(self, pairs):
        self.calls.append(list(pairs))
        return np.zeros((len(pairs), self.dim), np.float32)


async def test_the_pair_encoder_runs_only_when_the_search_found_a_candidate(tmp_path):
    spy = PairEncoderSpy()
    c = SemanticCache.from_config(CFG, dimension=DIM, verifier_path=write_cross_verifier(tmp_path, accept=True),
                                  pair_encoder=spy, pair_dim=3)
    await c.start()
    assert c.verifier.needs_pairs
    k1 = cache_key("What is the capital of France?", CFG)
    k2 = cache_key("what's France's capital city", CFG)
    k3 = cache_key("How do magnets work?", CFG)
    c.store(k1, vec(1), completion())
    assert c.exact_lookup(k1) is not None
    assert await c.lookup(k3, vec(2), k3.text) is None  # nothing above the floor: no pair row to read
    assert spy.calls == []
    assert await c.lookup(k2, vec(1, 0.05), k2.text) is not None
    assert spy.calls == [[(k2.text, k1.text)]]  # (query, candidate), in that order
    await c.close()


async def test_a_candidate_the_pair_verifier_refuses_is_a_miss(tmp_path):
    spy = PairEncoderSpy()
    c = SemanticCache.from_config(CFG, dimension=DIM, verifier_path=write_cross_verifier(tmp_path, accept=False),
                                  pair_encoder=spy, pair_dim=3)
    await c.start()
    k1 = cache_key("What is the capital of France?", CFG)
    k2 = cache_key("What is the capital of Germany?", CFG)
    c.store(k1, vec(1), completion())
    assert await c.lookup(k2, vec(1, 0.05), k2.text) is None
    assert len(spy.calls) == 1
    await c.close()


async def test_a_cascade_reads_a_pair_row_only_for_a_candidate_its_first_stage_finds_plausible(tmp_path):
    k1 = cache_key("What is the capital of France?", CFG)
    k2 = cache_key("what's France's capital city", CFG)
    for plausible in (False, True):
        spy = PairEncoderSpy()
        d = tmp_path / str(plausible)
        d.mkdir()
        c = SemanticCache.from_config(CFG, dimension=DIM, pair_encoder=spy, pair_dim=3,
                                      verifier_path=write_cross_verifier(d, accept=True, gate=plausible))
        await c.start()
        assert c.verifier.kind == "mlp-cascade"
        c.store(k1, vec(1), completion())
        hit = await c.lookup(k2, vec(1, 0.05), k2.text)
        # refused by the first stage: a miss that cost no encoder pass; let through: the pair row decides
        assert (hit is not None) == plausible
        assert spy.calls == ([[(k2.text, k1.text)]] if plausible else [])
        await c.close()


async def test_without_the_pair_features_it_reads_the_cache_falls_back_to_plain_cosine(tmp_path):
    path = write_cross_verifier(tmp_path, accept=True)
    no_encoder = SemanticCache.from_config(CFG, dimension=DIM, verifier_path=path)
    other_width = SemanticCache.from_config(CFG, dimension=DIM, verifier_path=path, pair_encoder=PairEncoderSpy(5),
                                            pair_dim=5)
    assert no_encoder.verifier.kind == other_width.verifier.kind == "cosine"
    assert no_encoder.floor == other_width.floor == CFG.similarity_threshold == 0.9


async def test_a_floor_meant_for_the_verifier_is_not_used_as_a_plain_cosine_threshold(tmp_path):
    low = dataclasses.replace(CFG, similarity_threshold=0.7)
    missing = SemanticCache.from_config(low, dimension=DIM, verifier_path=tmp_path / "verifier.json")
    no_path = SemanticCache.from_config(low, dimension=DIM, verifier_path=None)
    assert missing.verifier.threshold == no_path.verifier.threshold == missing.floor == 0.9
    chosen = SemanticCache.from_config(dataclasses.replace(low, verifier=False), dimension=DIM, verifier_path=None)
    assert chosen.verifier.threshold == chosen.floor == 0.7  # verifier: false is an explicit choice



async def test_under_the_floor_only_another_form_of_the_same_request_is_served():
    from router_extproc.cache.verify import Verifier

    class Rules(Verifier):
        floor, threshold, rule_floor = 0.9, 0.5, 0.3

        def same_form(self, text, other):
            return text.replace("waht", "what") == other

        def scores(self, query, text, cands, pair_feats=None):
            return np.ones(len(cands), np.float32)  # the models would accept anything: they must not be asked

    c = await make()
    c.verifier, c.floor, c.candidate_floor = Rules(), 0.9, 0.3
    k1 = cache_key("what is osmosis", CFG)
    c.store(k1, np.array([1.0] + [0.0] * (DIM - 1), np.float32), completion("Osmosis is ..."))
    near = np.array([0.6, 0.8] + [0.0] * (DIM - 2), np.float32)  # cosine 0.6: under the floor, over the rule floor
    typo = cache_key("waht is osmosis", CFG)
    other = cache_key("what is diffusion", CFG)
    hit = await c.lookup(typo, near, typo.text)
    assert hit is not None and not hit.exact and hit.completion["choices"][0]["message"]["content"] == "Osmosis is ..."
    assert await c.lookup(other, near, other.text) is None
