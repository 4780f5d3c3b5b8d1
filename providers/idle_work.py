"""Work that can wait until the process waits: run while an upstream request is in flight, or soon after.

A request's accounting (usage record, metrics, ledger, request log) runs after its last byte went out.
At concurrency 1 the client's next request arrived ~10 µs after a response, while that accounting (~80 µs
on the 2-core development machine) still held the event loop: every next request waited behind it.
Deferred here, it runs once the gateway has written a request upstream and has nothing to do until the
answer comes (`providers/upstream_post.py` calls `run()` there), or `MAX_DELAY` seconds after it was
deferred if no upstream request is written first (the mock and local providers, idle traffic). Reads of
what it writes (`/metrics`, the admin API) call `run()` first, and so does shutdown: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("switchyard.idle_work")

MAX_DELAY = 0.001
"""Seconds a deferred call waits at most, when no upstream request is written in the meantime."""


class IdleWork:
    """Calls deferred in order, run by `run()` or by a timer on the loop that deferred them."""

    __slots__ = ("_armed", "_pending")

    def __init__(self) -> None:
        self._pending: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
        self._armed: asyncio.AbstractEventLoop | None = None
        """The loop whose timer will run what is pending."""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def defer(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call `fn(*args)` soon, after the response in hand (at once when no event loop runs)."""
        self._pending.append((fn, args))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.run()
            return
        if self._armed is not loop:
            self._armed = loop
            loop.call_later(MAX_DELAY, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._armed is loop:
            self._armed = None
            self.run()

    def run(self) -> None:
        """Make every deferred call now, in the order deferred; one that raises is logged, not re-raised."""
        while self._pending:  # a call may defer another
            pending, self._pending = self._pending, []
            for fn, args in pending:
                try:
                    fn(*args)
                except Exception:
                    log.exception("deferred %s failed", getattr(fn, "__qualname__", fn))


idle_work = IdleWork()
"""The process's one queue: whatever writes an upstream request runs it, whichever request deferred it."""
