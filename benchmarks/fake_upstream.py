"""A fast fake OpenAI-compatible upstream for benchmarks.

Raw asyncio Protocol + httptools parser on uvloop, so the upstream costs far less CPU than the
gateway in front of it. Run it as its own process:

    python -m benchmarks.fake_upstream --port 9000

Streams send N `chat.completion.chunk` events D ms apart. N and D come from the request headers
`x-bench-chunks` / `x-bench-delay-ms`, else from a model name like `bench-c20-d10`, else 20 / 10.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from collections import deque
from typing import NamedTuple, cast

import httptools
import orjson
import uvloop

DEFAULT_CHUNKS = 20
DEFAULT_DELAY_MS = 10
MAX_CHUNKS = 10_000
PROMPT_TOKENS = 17
CREATED = 1_732_000_000

_MODEL_RE = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')
_BENCH_MODEL_RE = re.compile(r"-c(\d+)-d(\d+)$")
_STREAM_MARKERS = (b'"stream":true', b'"stream": true')

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
)
_LAST_CHUNK = b"0\r\n\r\n"


class Request(NamedTuple):
    method: bytes
    path: bytes
    body: bytes
    chunks: int | None
    delay_ms: int | None
    keep_alive: bool


class StreamPlan(NamedTuple):
    frames: tuple[bytes, ...]  # one chunked-encoded frame per content event
    tail: bytes  # optional usage event + [DONE] + terminating zero chunk, as one write


def _chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def _sse(obj: object) -> bytes:
    return _chunk(b"data: " + orjson.dumps(obj) + b"\n\n")


def _response(status: bytes, body: bytes, keep_alive: bool) -> bytes:
    conn = b"keep-alive" if keep_alive else b"close"
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n%s"
        % (status, len(body), conn, body)
    )


def _completion_body(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench0000000000000000000001",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "Hello! This is a canned answer from the Switchyard benchmark upstream.",
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": PROMPT_TOKENS,
                "completion_tokens": 14,
                "total_tokens": PROMPT_TOKENS + 14,
            },
        }
    )


def _stream_plan(model: str, n: int, include_usage: bool) -> StreamPlan:
    base = {
        "id": "chatcmpl-bench0000000000000000000002",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
    }
    frames = []
    for i in range(n):
        delta = {"role": "assistant", "content": "tok0 "} if i == 0 else {"content": f"tok{i} "}
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": "stop" if i == n - 1 else None,
        }
        frames.append(_sse({**base, "choices": [choice]}))
    tail = b""
    if include_usage:
        usage = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n, "total_tokens": PROMPT_TOKENS + n}
        tail += _sse({**base, "choices": [], "usage": usage})
    tail += _chunk(b"data: [DONE]\n\n") + _LAST_CHUNK
    return StreamPlan(tuple(frames), tail)


_MODELS_BODY = orjson.dumps(
    {
        "object": "list",
        "data": [{"id": "bench-c20-d10", "object": "model", "created": CREATED, "owned_by": "bench"}],
    }
)
_NOT_FOUND_BODY = orjson.dumps(
    {"error": {"message": "not found", "type": "invalid_request_error", "param": None, "code": "not_found"}}
)
_BAD_REQUEST_BODY = orjson.dumps(
    {"error": {"message": "bad request", "type": "invalid_request_error", "param": None, "code": None}}
)

# Small caches: models and (model, chunks, usage) combinations seen in a benchmark are few.
_completion_cache: dict[str, bytes] = {}
_plan_cache: dict[tuple[str, int, bool], StreamPlan] = {}
_CACHE_MAX = 256


def _cached_completion(model: str) -> bytes:
    body = _completion_cache.get(model)
    if body is None:
        if len(_completion_cache) >= _CACHE_MAX:
            _completion_cache.clear()
        body = _completion_cache[model] = _completion_body(model)
    return body


def _cached_plan(model: str, n: int, include_usage: bool) -> StreamPlan:
    key = (model, n, include_usage)
    plan = _plan_cache.get(key)
    if plan is None:
        if len(_plan_cache) >= _CACHE_MAX:
            _plan_cache.clear()
        plan = _plan_cache[key] = _stream_plan(model, n, include_usage)
    return plan


def _int_header(value: bytes) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


class _Stream:
    __slots__ = ("delay", "keep_alive", "next", "plan", "start")

    def __init__(self, plan: StreamPlan, start: float, delay: float, keep_alive: bool) -> None:
        self.plan = plan
        self.next = 1  # index of the next frame; frame 0 goes out with the headers
        self.start = start
        self.delay = delay
        self.keep_alive = keep_alive


class UpstreamProtocol(asyncio.Protocol):
    """One connection. Requests are answered in order; a stream holds back later pipelined requests.

    A stream is driven by one loop timer at a time (call_at on an absolute schedule), which is cheaper
    than a task per stream and does not drift with event-loop lag.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._body: list[bytes] = []
        self._chunks: int | None = None
        self._delay_ms: int | None = None
        self._queue: deque[Request] = deque()
        self._stream: _Stream | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._stalled = False  # a frame is due but the transport asked us to pause
        self._closed = False

    # -- asyncio.Protocol --

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail()
        except httptools.HttpParserError:
            self._fail()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._stream = None
        self._queue.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._stalled:
            self._stalled = False
            self._step()

    # -- httptools callbacks --

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._chunks = None
        self._delay_ms = None

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) > 8 and name[:8].lower() == b"x-bench-":
            lname = name.lower()
            if lname == b"x-bench-chunks":
                self._chunks = _int_header(value)
            elif lname == b"x-bench-delay-ms":
                self._delay_ms = _int_header(value)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        path = self._url.split(b"?", 1)[0]
        request = Request(
            self.parser.get_method(),
            path,
            b"".join(self._body),
            self._chunks,
            self._delay_ms,
            self.parser.should_keep_alive(),
        )
        if self._stream is None:
            self._handle(request)
        else:
            self._queue.append(request)

    # -- responses --

    def _fail(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(_response(b"400 Bad Request", _BAD_REQUEST_BODY, False))
            self.transport.close()

    def _write(self, data: bytes, keep_alive: bool) -> None:
        assert self.transport is not None
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()

    def _handle(self, req: Request) -> None:
        if self._closed:
            return
        if req.path == b"/v1/chat/completions" and req.method == b"POST":
            match = _MODEL_RE.search(req.body)
            model = match.group(1).decode() if match else "bench"
            if any(marker in req.body for marker in _STREAM_MARKERS):
                self._start_stream(req, model)
            else:
                self._write(_response(b"200 OK", _cached_completion(model), req.keep_alive), req.keep_alive)
        elif req.path == b"/v1/models" and req.method == b"GET":
            self._write(_response(b"200 OK", _MODELS_BODY, req.keep_alive), req.keep_alive)
        else:
            self._write(_response(b"404 Not Found", _NOT_FOUND_BODY, req.keep_alive), req.keep_alive)

    def _start_stream(self, req: Request, model: str) -> None:
        assert self.transport is not None
        chunks, delay_ms = req.chunks, req.delay_ms
        if chunks is None or delay_ms is None:
            m = _BENCH_MODEL_RE.search(model)
            if chunks is None:
                chunks = int(m.group(1)) if m else DEFAULT_CHUNKS
            if delay_ms is None:
                delay_ms = int(m.group(2)) if m else DEFAULT_DELAY_MS
        chunks = max(1, min(chunks, MAX_CHUNKS))
        plan = _cached_plan(model, chunks, b"include_usage" in req.body)
        self.transport.write(_SSE_HEAD + plan.frames[0])
        self._stream = _Stream(plan, self.loop.time(), max(0, delay_ms) / 1000.0, req.keep_alive)
        self._schedule()

    def _schedule(self) -> None:
        stream = self._stream
        assert stream is not None
        if stream.next < len(stream.plan.frames):
            self._timer = self.loop.call_at(stream.start + stream.next * stream.delay, self._step)
        else:
            self._finish()

    def _step(self) -> None:
        self._timer = None
        stream = self._stream
        if stream is None or self._closed:
            return
        if self._paused:
            self._stalled = True
            return
        assert self.transport is not None
        self.transport.write(stream.plan.frames[stream.next])
        stream.next += 1
        self._schedule()

    def _finish(self) -> None:
        stream = self._stream
        assert stream is not None and self.transport is not None
        self.transport.write(stream.plan.tail)
        self._stream = None
        if not stream.keep_alive:
            self.transport.close()
            return
        while self._queue and self._stream is None and not self._closed:
            self._handle(self._queue.popleft())


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
