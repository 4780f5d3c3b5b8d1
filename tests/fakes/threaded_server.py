"""The lifecycle the fake provider upstreams share: an aiohttp app on 127.0.0.1, on its own event loop
in a daemon thread, so synchronous tests and gateway subprocesses can reach it at `base_url`."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Generic, Self, TypeVar

from aiohttp import web

R = TypeVar("R")


class ThreadedUpstream(Generic[R]):
    """Subclasses set `label` and `base_path` and implement `_handle`; requests land in `requests`."""

    label = "fake"
    base_path = ""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.port = 0
        self.requests: list[R] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def start(self) -> Self:
        name = f"fake-{self.label.lower()}"
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name=name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or not self.port:
            raise RuntimeError(f"fake {self.label} upstream did not start")
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    @property
    def last(self) -> R:
        with self._lock:
            return self.requests[-1]

    def _record(self, request: R) -> None:
        with self._lock:
            self.requests.append(request)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop.wait()
        finally:
            self._ready.set()
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError
