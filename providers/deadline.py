"""Coarse deadlines: one loop timer for all the attempts' first-byte and total deadlines, not one each.

`asyncio.timeout_at` arms a loop timer per deadline and re-arms it on `reschedule`: per request two
timer creations and cancellations, a few microseconds each on uvloop. A `DeadlineWheel` files deadlines
in `TICK`-wide slots and wakes only when a slot that holds one is over (not every tick: a wake-up of an
otherwise idle process cost ~0.1 ms of CPU on the 2-core VM), so a deadline fires at most one tick (and
a millisecond) late and never early. Like `asyncio.timeout`, it cancels the task inside the scope and
turns that cancellation into `TimeoutError` when the scope exits; a cancellation from outside (the
client left) that arrives as well still propagates as `CancelledError`.

    with wheel.at(deadlines.first_byte_at) as deadline:
        response = await post(...)
        deadline.reschedule(deadlines.total_at)
        body = await response.read()
"""

from __future__ import annotations

import asyncio
import heapq
import math
from types import TracebackType

TICK = 0.01
"""Seconds per slot: how late a deadline may fire (plus `MIN_WAKE` at most)."""
MIN_WAKE = 0.001
"""The shortest timer the wheel arms (uvloop's timer resolution)."""


class DeadlineWheel:
    """Deadlines of the tasks of one event loop (the first that uses it)."""

    __slots__ = ("_armed", "_due", "_handle", "_loop", "_slots", "wakeups")

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[int, set[Deadline]] = {}
        self._due: list[int] = []
        """A heap of the slots that got a bucket; a slot whose bucket emptied since stays until popped."""
        self._handle: asyncio.TimerHandle | None = None
        """Armed while some slot holds a deadline, for `_armed` or an earlier slot."""
        self._armed = 0
        self.wakeups = 0
        """Timer wake-ups so far (each looks at the due slots once)."""

    def at(self, when: float) -> Deadline:
        """A scope whose task is cancelled once `loop.time()` passes `when` (use it with `with`)."""
        return Deadline(self, when)

    def _add(self, deadline: Deadline) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        slot = math.ceil(deadline.when / TICK)
        deadline.slot = slot
        bucket = self._slots.get(slot)
        if bucket is not None:
            bucket.add(deadline)
            return
        self._slots[slot] = {deadline}
        heapq.heappush(self._due, slot)
        if self._handle is None or slot < self._armed:
            self._arm(loop, slot)

    def _remove(self, deadline: Deadline) -> None:
        # The timer stays armed: re-arming costs more than one wake-up that finds an empty slot.
        bucket = self._slots.get(deadline.slot)
        if bucket is not None:
            bucket.discard(deadline)
            if not bucket:
                del self._slots[deadline.slot]

    def _arm(self, loop: asyncio.AbstractEventLoop, slot: int) -> None:
        """Wake when `slot` is over, and not less than `MIN_WAKE` from now: a loop rounds a timer to its
        clock's resolution (uvloop: 1 ms) and may run it that much early; a wake-up that finds its slot not
        over yet and re-armed for the same instant would spin."""
        if self._handle is not None:
            self._handle.cancel()
        self._armed = slot
        self._handle = loop.call_later(max(slot * TICK - loop.time(), MIN_WAKE), self._tick)

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        self._handle = None
        self.wakeups += 1
        time = loop.time()
        due, slots = self._due, self._slots
        early: list[Deadline] = []
        while due and due[0] * TICK <= time:
            for deadline in slots.pop(heapq.heappop(due), ()):
                if deadline.when <= time:
                    deadline.expire()
                else:  # slot arithmetic in floating point can round a hair early: never fire early
                    early.append(deadline)
        for deadline in early:  # back into its slot, for a wake-up `MIN_WAKE` from now
            self._add(deadline)
        while due and due[0] not in slots:
            heapq.heappop(due)
        if due and self._handle is None:
            self._arm(loop, due[0])


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
