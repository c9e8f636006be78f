"""The generic micro-batcher, exercised with a fake batch function (no model needed)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from router_extproc.signals.batcher import BatcherBusy, BatcherClosed, MicroBatcher


async def test_each_caller_gets_its_own_result_and_calls_are_batched():
    calls: list[list[int]] = []

    def fn(xs: list[int]) -> list[int]:
        calls.append(list(xs))
        time.sleep(0.005)
        return [x * 10 for x in xs]

    b = MicroBatcher(fn, max_batch_size=8, max_wait_ms=5)
    res = await asyncio.gather(*(b.submit(i) for i in range(50)))
    assert res == [i * 10 for i in range(50)]
    assert max(len(c) for c in calls) <= 8
    assert len(calls) < 50  # concurrent callers really were grouped
    await b.close()


async def test_inference_runs_off_the_event_loop_thread():
    loop_thread = threading.get_ident()
    seen = []

    def fn(xs):
        seen.append(threading.get_ident())
        return xs

    b = MicroBatcher(fn, max_batch_size=4, max_wait_ms=1)
    assert await b.submit("a") == "a"
    assert seen and seen[0] != loop_thread
    await b.close()


async def test_an_exception_reaches_only_the_caller_that_caused_it():
    def fn(xs):
        if any(x == "bad" for x in xs):
            raise ValueError("bad input")
        return [x.upper() for x in xs]

    b = MicroBatcher(fn, max_batch_size=16, max_wait_ms=5)
    items = ["a", "b", "bad", "c"]
    res = await asyncio.gather(*(b.submit(x) for x in items), return_exceptions=True)
    assert res[0] == "A" and res[1] == "B" and res[3] == "C"
    assert isinstance(res[2], ValueError)
    await b.close()


async def test_a_lone_request_is_not_held_longer_than_max_wait():
    b = MicroBatcher(lambda xs: xs, max_batch_size=16, max_wait_ms=2)
    t = time.perf_counter()
    await b.submit(1)
    assert time.perf_counter() - t < 0.5
    await b.close()


async def test_submit_after_close_raises():
    b = MicroBatcher(lambda xs: xs, max_batch_size=2, max_wait_ms=1)
    await b.submit(1)
    await b.close()
    with pytest.raises(BatcherClosed):
        await b.submit(2)


def test_rejects_a_zero_batch_size():
    with pytest.raises(ValueError):
        MicroBatcher(lambda xs: xs, max_batch_size=0)


async def test_a_full_queue_refuses_at_once_instead_of_growing_the_wait():
    gate = threading.Event()

    def fn(xs):
        gate.wait(5)
        return xs

    b = MicroBatcher(fn, max_batch_size=1, max_wait_ms=0, max_queue=2)
    running = asyncio.ensure_future(b.submit(0))
    await asyncio.sleep(0.05)                     # item 0 is in the executor, the queue is empty again
    waiting = [asyncio.ensure_future(b.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    with pytest.raises(BatcherBusy):
        await b.submit(3)
    assert b.refused == 1
    gate.set()
    assert await asyncio.gather(running, *waiting) == [0, 1, 2]
    assert await b.submit(4) == 4                 # room again once the queue drained
    await b.close()


def test_max_queue_must_be_positive():
    with pytest.raises(ValueError):
        MicroBatcher(lambda xs: xs, max_queue=0)
