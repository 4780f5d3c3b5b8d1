"""The dynamic batcher with fake runners: gathering, splitting, limits, errors, drain."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from local_runtime.batcher import Batcher
from local_runtime.errors import InferenceFailed, LocalModelUnavailable, ModelNotReady, QueueFull
from providers.errors import ServiceUnavailable, UpstreamError


class Recorder:
    """A runner that doubles numbers and records each batch it ran (and in which thread)."""

    def __init__(self, pause: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.pause = pause
        self.gate: threading.Event | None = None

    def __call__(self, items: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        if self.pause:
            time.sleep(self.pause)
        self.batches.append(list(items))
        self.threads.add(threading.current_thread().name)
        return [item * 2 for item in items]


def make(runner: Recorder, **options: float) -> Batcher[int, int]:
    settings: dict[str, float] = {"max_batch_size": 8, "max_queue_delay": 0.01, "max_queue_size": 100, **options}
    return Batcher(
        "fake",
        [runner],
        max_batch_size=int(settings["max_batch_size"]),
        max_queue_delay=settings["max_queue_delay"],
        max_queue_size=int(settings["max_queue_size"]),
    )


async def test_concurrent_requests_are_batched_and_split_back_in_order() -> None:
    runner = Recorder(pause=0.02)
    batcher = make(runner)
    results = await asyncio.gather(*(batcher(i) for i in range(40)))
    assert results == [i * 2 for i in range(40)]
    assert max(len(b) for b in runner.batches) == 8  # never more than max_batch_size
    assert len(runner.batches) <= 7  # 40 requests, batches of up to 8, the first may leave alone
    assert all(t.startswith("onnx-fake") for t in runner.threads)
    stats = batcher.stats()
    assert stats.requests == 40 and stats.largest_batch == 8 and stats.queued == 0
    await batcher.drain()


async def test_rows_count_towards_the_batch_size_and_keys_never_mix() -> None:
    runner = Recorder()
    batcher = make(runner, max_queue_delay=0.05)
    busy = batcher(0)  # an idle model runs this one at once; the rest queue behind it
    futures = [batcher.submit(i, rows=3, key="a" if i % 2 else "b") for i in range(1, 9)]
    await busy
    assert await asyncio.gather(*futures) == [i * 2 for i in range(1, 9)]
    for batch in runner.batches[1:]:
        assert len(batch) <= 2  # 3 rows each: two fit in 8 rows
        assert len({i % 2 for i in batch}) == 1  # one key per batch
    await batcher.drain()


async def test_a_lone_request_on_an_idle_model_does_not_wait_for_the_delay() -> None:
    batcher = make(Recorder(), max_queue_delay=5.0)
    started = time.perf_counter()
    assert await asyncio.wait_for(batcher(21), 2) == 42
    assert time.perf_counter() - started < 1.0
    await batcher.drain()


async def test_requests_arriving_while_busy_wait_up_to_the_delay_to_fill_a_batch() -> None:
    runner = Recorder()
    runner.gate = threading.Event()
    batcher = make(runner, max_queue_delay=1.0, max_batch_size=4)
    first = batcher.submit(1)
    await asyncio.sleep(0.01)
    waiting = [batcher.submit(i) for i in (2, 3)]  # busy model: these wait for more company
    runner.gate.set()
    await first
    started = time.perf_counter()
    assert await asyncio.gather(*waiting) == [4, 6]
    assert runner.batches == [[1], [2, 3]]
    assert time.perf_counter() - started > 0.5  # the partial batch waited for its delay
    full = [batcher.submit(i) for i in range(4)]  # a full batch leaves without waiting
    await asyncio.wait_for(asyncio.gather(*full), 0.5)
    await batcher.drain()


async def test_a_full_queue_raises_a_retryable_503_at_once() -> None:
    runner = Recorder()
    runner.gate = threading.Event()
    batcher = make(runner, max_queue_size=3, max_batch_size=1)
    running = batcher.submit(0)
    await asyncio.sleep(0.01)
    queued = [batcher.submit(i) for i in range(1, 4)]
    with pytest.raises(QueueFull) as caught:
        batcher.submit(99)
    error = caught.value
    assert isinstance(error, ServiceUnavailable) and isinstance(error, UpstreamError)
    assert error.http_status == 503 and error.retryable and error.code == "queue_full"
    assert "3 requests are already waiting" in error.message and "max_queue_size" in error.message
    assert batcher.stats().rejected == 1
    runner.gate.set()
    assert await asyncio.gather(running, *queued) == [0, 2, 4, 6]
    await batcher.drain()


async def test_a_failing_batch_fails_each_of_its_requests() -> None:
    def broken(items: list[int]) -> list[int]:
        raise RuntimeError("kernel exploded")

    batcher: Batcher[int, int] = Batcher("broken", [broken], max_batch_size=4, max_queue_delay=0, max_queue_size=10)
    results = await asyncio.gather(*(batcher(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, InferenceFailed) for r in results)
    assert "kernel exploded" in str(results[0]) and isinstance(results[0], UpstreamError)
    with pytest.raises(InferenceFailed):  # the scheduler survives a failed batch and runs the next
        await asyncio.wait_for(batcher(1), 2)
    await batcher.aclose()


async def test_wrong_result_count_is_an_inference_failure() -> None:
    batcher: Batcher[int, int] = Batcher(
        "short", [lambda items: items[:-1]], max_batch_size=4, max_queue_delay=0, max_queue_size=10
    )
    with pytest.raises(InferenceFailed, match="1 results for 2 requests"):
        await asyncio.gather(batcher.submit(1), batcher.submit(2))
    await batcher.aclose()


async def test_a_cancelled_request_is_dropped_before_it_runs() -> None:
    runner = Recorder()
    runner.gate = threading.Event()
    batcher = make(runner, max_batch_size=1)
    first = batcher.submit(1)
    await asyncio.sleep(0.01)
    dropped = batcher.submit(2)
    kept = batcher.submit(3)
    dropped.cancel()
    runner.gate.set()
    assert await first == 2 and await kept == 6
    assert [2] not in runner.batches
    await batcher.drain()


async def test_rows_outside_the_batch_size_are_refused() -> None:
    batcher = make(Recorder(), max_batch_size=4)
    with pytest.raises(ValueError, match=r"rows must be 1\.\.4"):
        batcher.submit(1, rows=5)
    await batcher.drain()


async def test_instances_run_batches_in_parallel_threads() -> None:
    runners = [Recorder(pause=0.2), Recorder(pause=0.2)]
    batcher: Batcher[int, int] = Batcher("pair", runners, max_batch_size=1, max_queue_delay=0, max_queue_size=10)
    started = time.perf_counter()
    assert await asyncio.gather(batcher(1), batcher(2)) == [2, 4]
    assert time.perf_counter() - started < 0.35  # two 0.2 s batches side by side
    assert all(r.batches for r in runners)
    await batcher.drain()


async def test_drain_finishes_queued_work_then_refuses_new_requests() -> None:
    runner = Recorder(pause=0.02)
    batcher = make(runner, max_batch_size=2)
    futures = [batcher.submit(i) for i in range(6)]
    await batcher.drain()
    assert [f.result() for f in futures] == [0, 2, 4, 6, 8, 10]
    with pytest.raises(ModelNotReady):
        batcher.submit(1)


async def test_aclose_fails_queued_requests_but_lets_running_ones_finish() -> None:
    runner = Recorder()
    runner.gate = threading.Event()
    batcher = make(runner, max_batch_size=1)
    running = batcher.submit(1)
    await asyncio.sleep(0.01)
    queued = batcher.submit(2)
    closing = asyncio.ensure_future(batcher.aclose())
    await asyncio.sleep(0.01)
    with pytest.raises(LocalModelUnavailable, match="unloaded"):
        await queued
    runner.gate.set()
    await closing
    assert await running == 2
