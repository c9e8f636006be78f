"""Generic asyncio micro-batcher: concurrent callers are grouped into one call of a synchronous batch
function that runs in a thread executor, so the event loop never blocks on inference."""
from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Callable, Generic, Sequence, TypeVar

from ..errors import Overloaded

T = TypeVar("T")
R = TypeVar("R")


class BatcherClosed(RuntimeError):
    pass


class BatcherBusy(Overloaded):
    """`max_queue` items already wait: a burst beyond what the executor can drain gets a fast refusal
    instead of an ever-growing wait (Envoy's message_timeout would end it as a 500 anyway)."""


class MicroBatcher(Generic[T, R]):
    """`await submit(item)` -> result of `fn([.., item, ..])[i]` for that caller.

    A batch is dispatched as soon as `max_batch_size` items are queued, or `max_wait_ms` after the first
    item of the batch arrived. While one batch runs, the next one accumulates (throughput grows with load).
    If `fn` raises for a batch of several items, each item is retried alone so the exception reaches only
    the caller(s) whose input caused it. At most `max_queue` items wait (None: unbounded); `submit` raises
    BatcherBusy beyond that.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch_size: int = 16,
                 max_wait_ms: float = 2.0, executor: concurrent.futures.Executor | None = None,
                 max_queue: int | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        if max_queue is not None and max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self.max_queue = max_queue
        self._fn = fn
        self.max_batch_size = max_batch_size
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self._own_executor = executor is None
        self._executor = executor or concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="signals")
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.batches = 0          # number of fn calls (for metrics/tests)
        self.items = 0
        self.refused = 0          # submits refused by max_queue

    @property
    def executor(self) -> concurrent.futures.Executor:
        """The thread the batch function runs on, for other work that must not run beside it."""
        return self._executor

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(), name="micro-batcher")

    async def submit(self, item: T) -> R:
        if self._closed:
            raise BatcherClosed("batcher is closed")
        self._ensure_worker()
        if self.max_queue is not None and self._queue.qsize() >= self.max_queue:  # type: ignore[union-attr]
            self.refused += 1
            raise BatcherBusy(f"{self.max_queue} items already wait for the batch function")
        fut: asyncio.Future[R] = self._loop.create_future()  # type: ignore[union-attr]
        self._queue.put_nowait((item, fut))  # type: ignore[union-attr]
        return await fut

    async def _run(self) -> None:
        q = self._queue
        assert q is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await q.get()
            batch = [first]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch_size:
                try:
                    batch.append(q.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(q.get(), left))
                except asyncio.TimeoutError:
                    break
            live = [(x, f) for x, f in batch if not f.done()]
            if live:
                await self._dispatch(live)

    async def _dispatch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        loop = asyncio.get_running_loop()
        items = [x for x, _ in batch]
        self.batches += 1
        self.items += len(items)
        try:
            results = await loop.run_in_executor(self._executor, self._fn, items)
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
        except Exception as exc:  # noqa: BLE001
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            for one in batch:  # isolate the failing item(s)
                await self._dispatch([one])
            return
        for (_, f), r in zip(batch, results):
            if not f.done():
                f.set_result(r)

    async def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        if self._queue is not None:
            while not self._queue.empty():
                _, f = self._queue.get_nowait()
                if not f.done():
                    f.set_exception(BatcherClosed("batcher closed before the item ran"))
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
