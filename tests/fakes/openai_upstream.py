"""A fake OpenAI upstream: a real HTTP server on 127.0.0.1 speaking OpenAI's JSON and SSE wire format.

It runs ``aiohttp.web`` on its own event loop in a background thread, so synchronous tests can point a
gateway subprocess (or an SDK) at ``base_url``. Faults are selected per request through the model name,
e.g. ``gpt-fake+status-500`` or ``gpt-fake+slow-50+drop-after-3``; see ``openai_payloads.Behaviors``.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from . import openai_extra_endpoints as extra_endpoints
from . import openai_payloads as payloads
from .openai_payloads import Behaviors

HANG_SECONDS = 300.0
AZURE_PREFIX = "/openai/deployments/"
STARTUP_TIMEOUT = 10.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased keys
    body: Any  # parsed JSON, raw bytes if not JSON, None if empty
    query: dict[str, str]


Route = Callable[[web.Request, dict[str, Any], Behaviors], Awaitable[web.StreamResponse]]


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


def _error_response(status: int, message: str, code: str | None = None) -> web.Response:
    headers = {"Retry-After": "1"} if status == 429 else None
    return _json_response(payloads.error_body(status, message, code), status=status, headers=headers)


def _parse_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def _sse(event: Any) -> bytes:
    return b"data: " + orjson.dumps(event) + b"\n\n"


class FakeOpenAI:
    """Fake OpenAI server. Use as ``with FakeOpenAI() as upstream: ...`` or ``start()``/``stop()``."""

    def __init__(self, *, api_key: str | None = "sk-upstream") -> None:
        self.api_key = api_key
        self.port = 0
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._counters_changed = threading.Condition(self._lock)
        self._open_streams = 0
        self._cancelled_streams = 0
        self._open_requests = 0
        self._cancelled_requests = 0
        self._fail_remaining = 0
        self._fail_status = 500
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._handler_tasks: set[asyncio.Task[Any]] = set()
        self._routes: dict[tuple[str, str], Route] = {
            ("POST", "/v1/chat/completions"): self._chat_completions,
            ("POST", "/v1/completions"): self._completions,
            ("POST", "/v1/embeddings"): self._embeddings,
            **extra_endpoints.ROUTES,
        }

    # ----------------------------------------------------------------- lifecycle (called from test thread)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        if self._thread is not None:
            raise RuntimeError("FakeOpenAI already started")
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(target=self._thread_main, name="fake-openai-upstream", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise RuntimeError("fake OpenAI upstream did not start in time")
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError("fake OpenAI upstream failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop, stop_requested = self._thread, self._loop, self._stop_requested
        if thread is None:
            return
        if loop is not None and stop_requested is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stop_requested.set)
            except RuntimeError:  # loop closed between the check and the call
                pass
        thread.join(timeout=15)
        if thread.is_alive():
            raise RuntimeError("fake OpenAI upstream thread did not stop")
        self._thread = None
        self._loop = None
        self._stop_requested = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------------- test-facing state

    def clear(self) -> None:
        """Forget recorded requests and counters (does not touch streams still in progress)."""
        with self._lock:
            self.requests.clear()
            self._cancelled_streams = 0
            self._cancelled_requests = 0
            self._fail_remaining = 0

    def fail_next(self, count: int, status: int = 500) -> None:
        """Make the next ``count`` requests (any path, any model) fail with ``status``."""
        with self._lock:
            self._fail_remaining = count
            self._fail_status = status

    @property
    def open_streams(self) -> int:
        """Streaming requests (``"stream": true``) whose handler is still running, including delays/hangs."""
        with self._lock:
            return self._open_streams

    @property
    def cancelled_streams(self) -> int:
        """Streams that ended because the client went away before the fake finished sending."""
        with self._lock:
            return self._cancelled_streams

    @property
    def open_requests(self) -> int:
        """All requests (streaming or not) whose handler is still running."""
        with self._lock:
            return self._open_requests

    @property
    def cancelled_requests(self) -> int:
        """Requests of any kind abandoned by the client before the fake finished responding."""
        with self._lock:
            return self._cancelled_requests

    def wait_streams_closed(self, timeout: float = 5.0) -> bool:
        with self._counters_changed:
            return self._counters_changed.wait_for(lambda: self._open_streams == 0, timeout)

    def wait_requests_closed(self, timeout: float = 5.0) -> bool:
        with self._counters_changed:
            return self._counters_changed.wait_for(lambda: self._open_requests == 0, timeout)

    # ------------------------------------------------------------------------- server thread

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # surfaced to start() if it happened during startup
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                raise

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: cancel the handler task as soon as the client disconnects, so that
        # `hang` ends and streams notice the gateway going away even while sleeping between events.
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            await self._stop_requested.wait()
            # Cancel hung/slow handlers first; otherwise runner.cleanup() waits for them to finish.
            tasks = list(self._handler_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await runner.cleanup()

    def _record(self, request: web.Request, body: Any) -> None:
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={key.lower(): value for key, value in request.headers.items()},
            body=body,
            query=dict(request.query),
        )
        with self._lock:
            self.requests.append(recorded)

    def _take_forced_failure(self) -> int | None:
        with self._lock:
            if self._fail_remaining <= 0:
                return None
            self._fail_remaining -= 1
            return self._fail_status

    def _track(self, is_stream: bool, delta: int, cancelled: bool = False) -> None:
        with self._counters_changed:
            self._open_requests += delta
            self._cancelled_requests += int(cancelled)
            if is_stream:
                self._open_streams += delta
                self._cancelled_streams += int(cancelled)
            self._counters_changed.notify_all()

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        if request.path.startswith(AZURE_PREFIX):  # Azure OpenAI authenticates with an api-key header
            return request.headers.get("api-key") == self.api_key and "api-version" in request.query
        return request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._handler_tasks.add(task)
        try:
            raw = await request.read()
            if request.content_type == "multipart/form-data":
                body = extra_endpoints.parse_multipart(request.headers["Content-Type"], raw)
            else:
                body = _parse_body(raw)
            self._record(request, body)
            forced_status = self._take_forced_failure()
            if forced_status is not None:
                return _error_response(forced_status, f"fake upstream error {forced_status}")
            if not self._authorized(request):
                return _error_response(401, "Incorrect API key provided.", code="invalid_api_key")
            if request.method == "GET" and request.path == "/v1/models":
                return _json_response(payloads.models_list(int(time.time())))
            path = request.path
            if path.startswith(AZURE_PREFIX):  # /openai/deployments/<name>/<endpoint> serves /v1/<endpoint>
                deployment, _, endpoint = path[len(AZURE_PREFIX) :].partition("/")
                path = f"/v1/{endpoint}"
                if isinstance(body, dict):
                    body.setdefault("model", deployment)
            route = self._routes.get((request.method, path))
            if route is None:
                return _error_response(404, f"Invalid URL ({request.method} {request.path})", "unknown_url")
            if not isinstance(body, dict):
                return _error_response(400, "We could not parse the JSON body of your request.")
            try:
                behaviors = Behaviors.from_model(body.get("model"))
            except ValueError as exc:
                return _error_response(400, str(exc))
            return await self._run_tracked(route, request, body, behaviors)
        finally:
            self._handler_tasks.discard(task)

    async def _run_tracked(
        self, route: Route, request: web.Request, body: dict[str, Any], behaviors: Behaviors
    ) -> web.StreamResponse:
        is_stream = body.get("stream") is True
        self._track(is_stream, +1)
        finished = False
        try:
            if behaviors.delay_first_ms:
                await asyncio.sleep(behaviors.delay_first_ms / 1000)
            if behaviors.status is not None:
                response: web.StreamResponse = _error_response(
                    behaviors.status, f"fake upstream error {behaviors.status}"
                )
            elif behaviors.hang:
                await asyncio.sleep(HANG_SECONDS)
                response = _error_response(504, "fake upstream hang expired")
            else:
                response = await route(request, body, behaviors)
            finished = True
            return response
        except ConnectionError:  # aiohttp raises ClientConnectionResetError (a ConnectionResetError)
            # The client went away while we were writing (before aiohttp's cancellation reached us).
            # Returning normally keeps aiohttp from logging an "Error handling request" traceback.
            return web.Response(status=499)
        finally:
            self._track(is_stream, -1, cancelled=not finished)

    # ------------------------------------------------------------------------- endpoints

    async def _chat_completions(
        self, request: web.Request, body: dict[str, Any], behaviors: Behaviors
    ) -> web.StreamResponse:
        completion_id, created = f"chatcmpl-fake-{next(self._ids)}", int(time.time())
        reply = payloads.chat_reply(body, behaviors)
        if body.get("stream") is True:
            content, closing = payloads.chat_stream(completion_id, created, body.get("model"), body, reply)
            return await self._stream(request, behaviors, content, closing)
        payload = payloads.chat_completion(completion_id, created, body.get("model"), body, reply)
        return await self._respond(request, behaviors, payload)

    async def _completions(
        self, request: web.Request, body: dict[str, Any], behaviors: Behaviors
    ) -> web.StreamResponse:
        completion_id, created = f"cmpl-fake-{next(self._ids)}", int(time.time())
        if body.get("stream") is True:
            content, closing = payloads.completion_stream(completion_id, created, body.get("model"), body, behaviors)
            return await self._stream(request, behaviors, content, closing)
        payload = payloads.completion(completion_id, created, body.get("model"), body, behaviors)
        return await self._respond(request, behaviors, payload)

    async def _embeddings(self, request: web.Request, body: dict[str, Any], behaviors: Behaviors) -> web.StreamResponse:
        items = payloads.embedding_inputs(body)
        if items is None:
            return _error_response(400, "'input' must be a non-empty string, list of strings or token arrays")
        dimensions = body.get("dimensions")
        if isinstance(dimensions, int) and dimensions > payloads.MAX_EMBEDDING_DIMENSIONS:
            # As OpenAI (3,072 at most); hashing out a fuzzed 10**12 dimensions hung the fake.
            return _error_response(400, f"'dimensions' must be at most {payloads.MAX_EMBEDDING_DIMENSIONS}")
        return await self._respond(request, behaviors, payloads.embeddings(body.get("model"), body, items))

    # ------------------------------------------------------------------------- response writers

    async def _respond(self, request: web.Request, behaviors: Behaviors, payload: Any) -> web.StreamResponse:
        """Send a non-streaming JSON payload, applying slow/hang-body/malformed/drop-after."""
        if behaviors.slow_ms:
            await asyncio.sleep(behaviors.slow_ms / 1000)
        if behaviors.malformed:
            return web.Response(body=b"{not json", content_type="application/json")
        if behaviors.no_usage and isinstance(payload, dict):
            payload = {k: v for k, v in payload.items() if k != "usage"}
        encoded = orjson.dumps(payload)
        if behaviors.hang_body:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await asyncio.sleep(HANG_SECONDS)
            return response
        if behaviors.drop_after is not None:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = len(encoded) + 100
            await response.prepare(request)
            await response.write(encoded[: len(encoded) // 2])
            self._abort(request)
            return response
        return web.Response(body=encoded, content_type="application/json")

    async def _stream(
        self,
        request: web.Request,
        behaviors: Behaviors,
        content_chunks: list[dict[str, Any]],
        closing_chunks: list[dict[str, Any]],
    ) -> web.StreamResponse:
        """Send an SSE stream, applying slow/hang-body/malformed/drop-after/no-done/late-end. The last event
        goes out with the end of the body in one write (as servers that flush on close do), unless
        late-end asks for the end apart. A drop-after at or past the number of events sends them all, then
        breaks the body off where its end would be."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if behaviors.hang_body:
            await asyncio.sleep(HANG_SECONDS)
            return response
        if behaviors.malformed:
            await response.write(b"data: {this is not json\n\n")
            await response.write_eof()
            return response
        if behaviors.no_usage:
            closing_chunks = [c for c in closing_chunks if not c.get("usage")]
            content_chunks = [{k: v for k, v in c.items() if k != "usage"} for c in content_chunks]
        events = [_sse(chunk) for chunk in content_chunks]
        if not behaviors.no_done:
            events += [_sse(chunk) for chunk in closing_chunks] + [b"data: [DONE]\n\n"]
        tail = b""
        for sent, event in enumerate(events):
            if behaviors.drop_after is not None and sent >= behaviors.drop_after:
                self._abort(request)
                return response
            if behaviors.slow_ms and sent:
                await asyncio.sleep(behaviors.slow_ms / 1000)
            if sent == len(events) - 1 and not behaviors.late_end_ms and behaviors.drop_after is None:
                tail = event
            else:
                await response.write(event)
        if behaviors.late_end_ms:
            await asyncio.sleep(behaviors.late_end_ms / 1000)
        if behaviors.drop_after is not None:  # every event sent: the body breaks off instead of ending
            self._abort(request)
            return response
        await response.write_eof(tail)
        return response

    @staticmethod
    def _abort(request: web.Request) -> None:
        """Close the connection mid-body; the client sees an incomplete chunked/content-length body."""
        if request.transport is not None:
            request.transport.close()
