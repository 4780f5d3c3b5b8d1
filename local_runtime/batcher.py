"""Dynamic batching (Triton's dynamic batcher, on asyncio).

Callers `submit()` an item (one request: `rows` rows of input) and await its result. A scheduler
task forms batches from the queue in arrival order: it waits for an idle instance, then gathers
requests until the batch holds `max_batch_size` rows or the oldest request has waited
`max_queue_delay`; the batch runs in the instance's worker thread (onnxruntime releases the GIL)
and each caller gets its own part back. Requests with different `key`s (e.g. different non-batch
shapes) never share a batch.

One departure from Triton: a request that arrives at an idle model (nothing queued, nothing running)
does not wait for the delay; it leaves with whatever is queued when the scheduler runs. So a lone
caller pays no batching latency, while under load the delay still fills batches.

The queue is bounded: past `max_queue_size` waiting requests `submit()` raises `QueueFull` (503)
at once instead of letting memory grow.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from local_runtime.errors import InferenceFailed, ModelNotReady, QueueFull

log = logging.getLogger("switchyard.local_runtime")

T = TypeVar("T")
R = TypeVar("R")

Runner = Callable[[list[T]], Sequence[R]]
"""Runs one batch in a worker thread: one result per item, in order."""


@dataclass(frozen=True, slots=True)
class BatcherStats:
    queued: int
    running: int
    batches: int
    requests: int
    rows: int
    largest_batch: int
    """Most requests ever run in one batch."""
    rejected: int
    queue_seconds: float = 0.0
    """Time requests spent queued before their batch started, summed over all requests."""

    @property
    def mean_batch(self) -> float:
        return self.requests / self.batches if self.batches else 0.0


class _Pending(Generic[T, R]):
    __slots__ = ("enqueued", "future", "item", "key", "rows", "urgent")

    def __init__(self, item: T, rows: int, key: Hashable, future: asyncio.Future[R], enqueued: float, urgent: bool):
        self.item = item
        self.rows = rows
        self.key = key
        self.future = future
        self.enqueued = enqueued
        self.urgent = urgent


class Batcher(Generic[T, R]):
    def __init__(
        self,
        name: str,
        runners: Sequence[Runner[T, R]],
        *,
        max_batch_size: int,
        max_queue_delay: float,
        max_queue_size: int,
    ) -> None:
        if not runners:
            raise ValueError("a batcher needs at least one runner (instance)")
        self.name = name
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue_size = max_queue_size
        self._runners = list(runners)
        self._queue: collections.deque[_Pending[T, R]] = collections.deque()
        self._arrived = asyncio.Event()
        self._idle: asyncio.Queue[Runner[T, R]] = asyncio.Queue()
        for runner in self._runners:
            self._idle.put_nowait(runner)
        self._executor = ThreadPoolExecutor(max_workers=len(self._runners), thread_name_prefix=f"onnx-{name}")
        self._running = 0
        self._batches = self._requests = self._rows = self._largest = self._rejected = 0
        self._accepting = True
        self._drained = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._queue_seconds = 0.0
        self._scheduler = asyncio.get_running_loop().create_task(self._schedule(), name=f"batcher-{name}")

    def stats(self) -> BatcherStats:
        return BatcherStats(
            queued=len(self._queue),
            running=self._running,
            batches=self._batches,
            requests=self._requests,
            rows=self._rows,
            largest_batch=self._largest,
            rejected=self._rejected,
            queue_seconds=self._queue_seconds,
        )

    def submit(self, item: T, *, rows: int = 1, key: Hashable = None) -> asyncio.Future[R]:
        """Queue `item` and return the future of its result. Raises `QueueFull` or `ModelNotReady` at
        once; the future raises `InferenceFailed` if the batch fails. Cancelling the future drops the
        request if it has not run yet."""
        if not self._accepting:
            raise ModelNotReady(f"model {self.name} is being unloaded; retry")
        if rows < 1 or rows > self.max_batch_size:
            raise ValueError(f"rows must be 1..{self.max_batch_size}, got {rows}")
        if len(self._queue) >= self.max_queue_size:
            self._rejected += 1
            raise QueueFull(
                f"model {self.name} is overloaded: {self.max_queue_size} requests are already waiting "
                "(max_queue_size in its model.yaml); retry later",
                retry_after=1.0,
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        urgent = not self._queue and self._running == 0
        self._queue.append(_Pending(item, rows, key, future, loop.time(), urgent))
        self._arrived.set()
        return future

    async def __call__(self, item: T, *, rows: int = 1, key: Hashable = None) -> R:
        return await self.submit(item, rows=rows, key=key)

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            runner = await self._idle.get()
            while not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            first = self._queue[0]
            if not first.urgent and self.max_queue_delay > 0 and loop.time() < first.enqueued + self.max_queue_delay:
                # The timer's own flag, not loop.time(): event loops may run a timer a little early.
                expired = asyncio.Event()
                timer = loop.call_at(first.enqueued + self.max_queue_delay, self._expire, expired)
                try:
                    while not expired.is_set() and self._queued_rows(first.key) < self.max_batch_size:
                        self._arrived.clear()
                        await self._arrived.wait()
                finally:
                    timer.cancel()
            batch = self._take()
            if not batch:
                self._idle.put_nowait(runner)
                self._check_drained()
                continue
            # Counted as running from now, so a request arriving before the batch starts still queues.
            self._running += 1
            self._batches += 1
            self._requests += len(batch)
            self._rows += sum(p.rows for p in batch)
            self._largest = max(self._largest, len(batch))
            task = loop.create_task(self._run(runner, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _expire(self, expired: asyncio.Event) -> None:
        expired.set()
        self._arrived.set()

    def _queued_rows(self, key: Hashable) -> int:
        total = 0
        for pending in self._queue:
            if pending.key == key and not pending.future.done():
                total += pending.rows
                if total >= self.max_batch_size:
                    break
        return total

    def _take(self) -> list[_Pending[T, R]]:
        """The oldest live request and, in order, every following one with its key that still fits."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()  # cancelled by its caller while waiting
        if not self._queue:
            return []
        key = self._queue[0].key
        batch: list[_Pending[T, R]] = []
        rows = 0
        kept: list[_Pending[T, R]] = []
        while self._queue:
            pending = self._queue.popleft()
            if pending.future.done():
                continue
            if pending.key != key or rows + pending.rows > self.max_batch_size:
                kept.append(pending)
                if rows >= self.max_batch_size:
                    break
                continue
            batch.append(pending)
            rows += pending.rows
        self._queue.extendleft(reversed(kept))
        return batch

    async def _run(self, runner: Runner[T, R], batch: list[_Pending[T, R]]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        self._queue_seconds += sum(started - p.enqueued for p in batch)
        try:
            results = await loop.run_in_executor(self._executor, runner, [p.item for p in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"runner returned {len(results)} results for {len(batch)} requests")
        except Exception as exc:
            log.exception("model %s: a batch of %d requests failed", self.name, len(batch))
            error = InferenceFailed(f"model {self.name} failed to run the batch: {exc}")
            self._finish(runner)
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        self._finish(runner)
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

    def _finish(self, runner: Runner[T, R]) -> None:
        # The instance is free before the callers wake, so their next requests see an idle model.
        self._running -= 1
        self._idle.put_nowait(runner)
        self._check_drained()

    def _check_drained(self) -> None:
        if not self._accepting and self._running == 0 and all(p.future.done() for p in self._queue):
            self._drained.set()

    async def drain(self) -> None:
        """Stop accepting, let every queued and running request finish, then stop the threads."""
        self._accepting = False
        self._check_drained()
        await self._drained.wait()
        await self._stop()

    async def aclose(self) -> None:
        """Stop at once: queued requests fail with `ModelNotReady`, running batches finish."""
        self._accepting = False
        while self._queue:
            pending = self._queue.popleft()
            if not pending.future.done():
                pending.future.set_exception(ModelNotReady(f"model {self.name} was unloaded"))
        self._check_drained()
        await self._drained.wait()
        await self._stop()

    async def _stop(self) -> None:
        self._scheduler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._scheduler
        self._executor.shutdown(wait=False)
