"""Coarse deadlines: one loop timer for all the attempts' first-byte and total deadlines, not one each.

`asyncio.timeout_at` arms a loop timer per deadline and re-arms it on `reschedule`: per request two
timer creations and cancellations, a few microseconds each on uvloop. A `DeadlineWheel` files deadlines
in `TICK`-wide slots and wakes once per slot while any is pending, so a deadline fires at most one tick
(and a millisecond) late and never early. Like `asyncio.timeout`, it cancels the task inside the scope and turns that
cancellation into `TimeoutError` when the scope exits; a cancellation from outside (the client left)
that arrives as well still propagates as `CancelledError`.

    with wheel.at(deadlines.first_byte_at) as deadline:
        response = await post(...)
        deadline.reschedule(deadlines.total_at)
        body = await response.read()
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType

TICK = 0.01
"""Seconds per slot: how late a deadline may fire (plus `MIN_WAKE` at most)."""
MIN_WAKE = 0.001
"""The shortest timer the wheel arms (uvloop's timer resolution)."""


class DeadlineWheel:
    """Deadlines of the tasks of one event loop (the first that uses it)."""

    __slots__ = ("_cursor", "_handle", "_loop", "_slots")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[int, set[Deadline]] = {}
        self._cursor = 0
        """Every slot up to this one has fired."""
        self._handle: asyncio.TimerHandle | None = None
        """Armed exactly while some slot holds a deadline."""

    def at(self, when: float) -> Deadline:
        """A scope whose task is cancelled once `loop.time()` passes `when` (use it with `with`)."""
        return Deadline(self, when)

    def _add(self, deadline: Deadline) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if self._handle is None:  # idle until now: nothing is due before the current slot
            time = loop.time()
            self._cursor = math.floor(time / TICK)
            self._arm(loop, time)
        slot = max(math.ceil(deadline.when / TICK), self._cursor + 1)
        deadline.slot = slot
        bucket = self._slots.get(slot)
        if bucket is None:
            self._slots[slot] = {deadline}
        else:
            bucket.add(deadline)

    def _remove(self, deadline: Deadline) -> None:
        bucket = self._slots.get(deadline.slot)
        if bucket is not None:
            bucket.discard(deadline)
            if not bucket:
                del self._slots[deadline.slot]

    def _tick(self) -> None:
        assert self._loop is not None
        time = self._loop.time()
        now = math.floor(time / TICK)
        for slot in range(self._cursor + 1, now + 1):
            for deadline in self._slots.pop(slot, ()):
                if deadline.when <= time:
                    deadline.expire()
                else:  # slot arithmetic in floating point can round a hair early: never fire early
                    deadline.slot = now + 1
                    self._slots.setdefault(now + 1, set()).add(deadline)
        self._cursor = now
        if self._slots:
            self._arm(self._loop, time)
        else:
            self._handle = None

    def _arm(self, loop: asyncio.AbstractEventLoop, time: float) -> None:
        """Wake at the end of the cursor's slot, and not less than `MIN_WAKE` from now: a loop rounds a
        timer to its clock's resolution (uvloop: 1 ms) and may run it that much early, and a wake-up that
        finds the slot not yet over would otherwise re-arm for the same instant, again and again (4,500
        wake-ups a second on an idle uvloop, 11,000 on a busy one, instead of 100)."""
        self._handle = loop.call_later(max((self._cursor + 1) * TICK - time, MIN_WAKE), self._tick)


class Deadline:
    __slots__ = ("_cancelling", "_task", "_wheel", "expired", "slot", "when")

    def __init__(self, wheel: DeadlineWheel, when: float) -> None:
        self._wheel = wheel
        self._task: asyncio.Task[object] | None = None
        self.when = when
        self.slot = 0
        self.expired = False
        self._cancelling = 0

    def __enter__(self) -> Deadline:
        self._task = asyncio.current_task()
        if self._task is None:
            raise RuntimeError("a deadline needs a task")
        self._cancelling = self._task.cancelling()
        self._wheel._add(self)
        return self

    def reschedule(self, when: float) -> None:
        """Move the deadline (not after it fired)."""
        if not self.expired:
            self._wheel._remove(self)
            self.when = when
            self._wheel._add(self)

    def expire(self) -> None:
        self.expired = True
        assert self._task is not None
        self._task.cancel()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.expired:
            self._wheel._remove(self)
            return
        assert self._task is not None
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
