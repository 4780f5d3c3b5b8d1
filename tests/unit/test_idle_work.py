"""The deferred-work queue: order, its timer, failures, and a loop that closed with its timer armed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from providers import idle_work as idle_work_module
from providers.idle_work import IdleWork


def test_run_makes_the_calls_in_order_and_a_call_may_defer_another() -> None:
    work = IdleWork()
    done: list[object] = []
    work._pending.append((done.append, ("a",)))  # queued as defer() does, without its timer
    work._pending.append((lambda: work._pending.append((done.append, ("c",))), ()))
    work._pending.append((done.append, ("b",)))
    assert work.pending == 3
    work.run()
    assert done == ["a", "b", "c"] and work.pending == 0


def test_without_an_event_loop_a_call_is_made_at_once() -> None:
    work = IdleWork()
    done: list[object] = []
    work.defer(done.append, 1)
    assert done == [1] and work.pending == 0


async def test_a_deferred_call_waits_then_runs_within_the_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idle_work_module, "MAX_DELAY", 0.01)
    work = IdleWork()
    done: list[object] = []
    work.defer(done.append, 1)
    work.defer(done.append, 2)
    assert done == [] and work.pending == 2  # not while the response is being sent
    await asyncio.sleep(0)
    assert done == []
    await asyncio.sleep(0.2)
    assert done == [1, 2]
    work.defer(done.append, 3)  # the timer fired: a new call arms a new one
    await asyncio.sleep(0.2)
    assert done == [1, 2, 3]


async def test_run_before_the_timer_leaves_nothing_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idle_work_module, "MAX_DELAY", 0.01)
    work = IdleWork()
    done: list[object] = []
    work.defer(done.append, 1)
    work.run()
    assert done == [1]
    await asyncio.sleep(0.05)
    assert done == [1]


async def test_a_call_that_raises_is_logged_and_the_next_ones_still_run(caplog: pytest.LogCaptureFixture) -> None:
    work = IdleWork()
    done: list[object] = []

    def broken() -> None:
        raise ValueError("boom")

    work.defer(done.append, 1)
    work.defer(broken)
    work.defer(done.append, 2)
    with caplog.at_level(logging.ERROR, logger="switchyard.idle_work"):
        work.run()
    assert done == [1, 2]
    assert "deferred" in caplog.text and "broken" in caplog.text and "ValueError: boom" in caplog.text


def test_a_loop_closed_with_its_timer_armed_does_not_stall_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idle_work_module, "MAX_DELAY", 0.01)
    work = IdleWork()
    done: list[object] = []

    async def defer_and_leave() -> None:
        work.defer(done.append, "first")

    asyncio.run(defer_and_leave())  # the loop ends before its timer fires
    assert done == [] and work.pending == 1

    async def defer_and_wait() -> None:
        work.defer(done.append, "second")
        await asyncio.sleep(0.2)

    asyncio.run(defer_and_wait())
    assert done == ["first", "second"]
