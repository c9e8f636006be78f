"""Concurrent identical misses go upstream once; the others wait, bounded, for the leader's answer."""

import asyncio

from router_extproc.cache.inflight import Inflight


async def test_the_first_claim_leads_and_equal_requests_follow():
    f = Inflight()
    assert f.claim("s", "fp") is True
    assert f.claim("s", "fp") is False
    assert f.claim("s", "other") is True
    assert f.claim("t", "fp") is True  # another tenant never waits on this one


async def test_followers_receive_the_leaders_answer():
    f = Inflight()
    f.claim("s", "fp")
    waiters = [asyncio.create_task(f.wait("s", "fp", 5)) for _ in range(3)]
    await asyncio.sleep(0)
    assert f.release("s", "fp", {"answer": 42}) == 3
    assert await asyncio.gather(*waiters) == [{"answer": 42}] * 3


async def test_a_failed_leader_sends_followers_upstream():
    f = Inflight()
    f.claim("s", "fp")
    w = asyncio.create_task(f.wait("s", "fp", 5))
    await asyncio.sleep(0)
    f.release("s", "fp", None)
    assert await w is None
    assert f.claim("s", "fp") is True  # the next request leads again


async def test_followers_stop_waiting_after_the_timeout():
    f = Inflight()
    f.claim("s", "fp")
    t0 = asyncio.get_running_loop().time()
    assert await f.wait("s", "fp", 0.05) is None
    assert asyncio.get_running_loop().time() - t0 < 1


async def test_waiting_without_a_leader_returns_at_once():
    assert await Inflight().wait("s", "fp", 5) is None


async def test_a_leader_that_never_releases_is_forgotten():
    f = Inflight(max_age_s=0.0)
    f.claim("s", "fp")
    assert f.claim("s", "fp") is True
