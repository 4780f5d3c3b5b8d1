"""Coarse deadlines: never early, at most a tick late, and a cancellation from outside still wins."""

from __future__ import annotations

import asyncio
import random

import pytest
import uvloop

from providers.deadline import TICK, DeadlineWheel


def run(coro: object) -> object:
    return uvloop.run(coro)  # type: ignore[arg-type]


def test_a_deadline_fires_not_early_and_at_most_a_tick_late() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        wheel = DeadlineWheel()
        start = loop.time()
        with pytest.raises(TimeoutError):
            with wheel.at(start + 0.05):
                await asyncio.sleep(1)
        return loop.time() - start

    elapsed = run(main())
    assert 0.05 <= elapsed < 0.05 + TICK + 0.05  # (the margin: a busy test machine)


def test_a_scope_that_finishes_in_time_leaves_nothing_armed() -> None:
    async def main() -> None:
        wheel = DeadlineWheel()
        loop = asyncio.get_running_loop()
        for _ in range(100):
            with wheel.at(loop.time() + 0.02):
                await asyncio.sleep(0)
        assert not wheel._slots
        await asyncio.sleep(0.02 + 2 * TICK)  # the one wake-up armed finds nothing
        assert wheel._handle is None  # idle: no more wake-ups
        await asyncio.sleep(0.03)  # past the deadlines: nothing fires into this task

    run(main())


def test_reschedule_moves_the_deadline() -> None:
    async def main() -> None:
        wheel = DeadlineWheel()
        loop = asyncio.get_running_loop()
        with wheel.at(loop.time() + 0.02) as deadline:
            deadline.reschedule(loop.time() + 0.2)
            await asyncio.sleep(0.05)  # the first deadline would have fired by now
        with pytest.raises(TimeoutError):
            with wheel.at(loop.time() + 10) as deadline:
                deadline.reschedule(loop.time() + 0.02)
                await asyncio.sleep(1)

    run(main())


def test_a_cancellation_from_outside_propagates_even_when_the_deadline_also_fired() -> None:
    async def main() -> None:
        wheel = DeadlineWheel()
        loop = asyncio.get_running_loop()

        async def inner() -> None:
            with wheel.at(loop.time() + 0.02):
                await asyncio.sleep(1)

        task = asyncio.create_task(inner())
        await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async def both() -> None:
            with wheel.at(loop.time()):
                try:
                    await asyncio.sleep(1)
                finally:
                    asyncio.current_task().cancel()  # type: ignore[union-attr]  # an outside cancel arrives too

        task = asyncio.create_task(both())
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_nested_deadlines_each_raise_in_their_own_scope() -> None:
    async def main() -> str:
        wheel = DeadlineWheel()
        loop = asyncio.get_running_loop()
        with wheel.at(loop.time() + 5):
            try:
                with wheel.at(loop.time() + 0.02):
                    await asyncio.sleep(1)
            except TimeoutError:
                return "inner"
        return "none"

    assert run(main()) == "inner"


def test_a_deadline_never_fires_before_its_time_whatever_the_rounding() -> None:
    """Deadlines an instant past a slot boundary (where `ceil(when / TICK) * TICK` rounds below `when`)."""

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        wheel = DeadlineWheel()
        early: list[float] = []

        async def one(when: float) -> None:
            with pytest.raises(TimeoutError):
                with wheel.at(when):
                    await asyncio.sleep(1)
            if loop.time() < when:
                early.append(when - loop.time())

        base = (int(loop.time() / TICK) + 2) * TICK
        await asyncio.gather(*(one(base + k * TICK + 1e-12 * (k % 7)) for k in range(30)))
        return early

    assert run(main()) == []


@pytest.mark.parametrize("runner", [uvloop.run, asyncio.run], ids=["uvloop", "asyncio"])
def test_the_wheel_wakes_only_when_a_deadline_is_due_even_on_a_busy_loop(runner: object) -> None:
    """No wake-up per tick while deadlines are far away, and a timer the loop runs a hair early (uvloop
    rounds to 1 ms) does not re-arm for the same instant again and again."""
    wheel = DeadlineWheel()

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def busy(seconds: float) -> None:  # callbacks on every loop iteration
            end = loop.time() + seconds
            while loop.time() < end:
                await asyncio.sleep(0)

        with wheel.at(loop.time() + 60):  # pending all along
            with pytest.raises(TimeoutError):
                with wheel.at(loop.time() + 0.25):
                    await busy(1)
            await busy(0.25)

    runner(main())  # type: ignore[operator]
    assert 1 <= wheel.wakeups <= 3  # the near deadline's slot (and a second look if the first came a hair early)


def test_many_deadlines_added_and_removed_in_any_order_fire_exactly_when_due() -> None:
    """Later deadlines first, earlier ones after (the timer re-arms earlier), scopes that end before their
    deadline (their slots go stale in the heap): each fires iff its time came, never early."""
    rng = random.Random(7)

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        wheel = DeadlineWheel()
        wrong: list[str] = []

        async def one(delay: float, work: float) -> None:
            await asyncio.sleep(rng.uniform(0, 0.05))
            when = loop.time() + delay
            try:
                with wheel.at(when):
                    await asyncio.sleep(work)
            except TimeoutError:
                if loop.time() < when:
                    wrong.append(f"early by {when - loop.time():.4f}s")
            else:
                if work > delay + TICK + 0.1:  # (the margin: a busy test machine)
                    wrong.append(f"never fired: work {work:.3f}s, deadline {delay:.3f}s")

        cases = [(rng.uniform(0.0, 0.3), rng.uniform(0.0, 0.45)) for _ in range(300)]
        await asyncio.gather(*(one(d, w) for d, w in sorted(cases, reverse=True)))
        assert not wheel._slots
        return wrong

    assert run(main()) == []
