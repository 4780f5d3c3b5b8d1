"""Python bytecodes run per request, in-process: a measure of the gateway's work that host noise cannot move.

CPU time per request moves by ±15% between runs on a shared 2-core VM, which hides a change worth 5%.
This counts the bytecodes the interpreter runs (a `sys.settrace` opcode hook) while the gateway's ASGI app
serves N requests against the fake upstream, without uvicorn: the count changes only when the code does.
It counts Python work only; C code (orjson, pydantic-core, uvloop, httptools, the kernel) is not in it,
so it ranks the gateway's Python layers, and the benchmark (`python -m benchmarks.run`) stays the judge
of speed.

    python -m benchmarks.opcount                   # non-streaming chat, gateway and bare relay
    python -m benchmarks.opcount --stream --top 40 # streaming, with the 40 costliest functions
    python -m benchmarks.opcount --accounting      # with a tenant budget and limits, as the benchmark's
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvloop

from benchmarks.services import GATEWAY_KEY, Service, free_port, gateway_config

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
_SITE = "site-packages/"
DEFERRED_SECONDS = 2.5
"""Seconds for deferred work to run: the usage archive reads the ledger's records every 2 s."""


# What the openai Python SDK sends with a chat request, besides its key and the body's length.
_SDK_HEADERS = [
    ("host", "127.0.0.1:8080"),
    ("accept-encoding", "gzip, deflate"),
    ("connection", "keep-alive"),
    ("accept", "application/json"),
    ("content-type", "application/json"),
    ("user-agent", "AsyncOpenAI/Python 3.57.0"),
    ("x-stainless-lang", "python"),
    ("x-stainless-package-version", "3.57.0"),
    ("x-stainless-os", "Linux"),
    ("x-stainless-arch", "x64"),
    ("x-stainless-runtime", "CPython"),
    ("x-stainless-runtime-version", "3.11.7"),
    ("x-stainless-async", "async:asyncio"),
    ("x-stainless-retry-count", "0"),
    ("x-stainless-read-timeout", "600"),
]


def request_scope(stream: bool) -> tuple[dict[str, Any], bytes]:
    body = b'{"model":"bench","messages":[{"role":"user","content":"hello there"}],"max_tokens":20'
    body += b',"stream":true}' if stream else b"}"
    headers = [(name.encode(), value.encode()) for name, value in _SDK_HEADERS]
    headers += [(b"authorization", f"Bearer {GATEWAY_KEY}".encode()), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    return scope, body


async def serve_one(app: App, scope: dict[str, Any], body: bytes) -> None:
    """One request as uvicorn would hand it over: the body, then `http.disconnect` once the response ends."""
    delivered = False
    ended = asyncio.Event()
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await ended.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            ended.set()

    await app(dict(scope), receive, send)
    if status != [200]:
        raise RuntimeError(f"the app answered {status}, not 200: is the fake upstream up?")


class Lifespan:
    def __init__(self, app: App) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None

    async def _phase(self, event: str) -> None:
        await self.inbox.put({"type": f"lifespan.{event}"})
        reply = await self.outbox.get()
        if not reply["type"].endswith(".complete"):
            raise RuntimeError(f"lifespan {event} failed: {reply}")

    async def start(self) -> None:
        self.task = asyncio.ensure_future(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, self.inbox.get, self.outbox.put)
        )
        await self._phase("startup")

    async def stop(self) -> None:
        await self._phase("shutdown")
        assert self.task is not None
        await self.task


def _place(filename: str, root: str) -> str:
    """A module's path in the repository, or the library it belongs to."""
    if _SITE in filename:
        return filename.split(_SITE, 1)[1].split("/", 1)[0]
    if filename.startswith(root):
        return filename[len(root) :]
    return filename.rsplit("/lib/", 1)[-1]  # the standard library


class OpcodeCounter:
    """Counts the bytecodes run per (file, function), leaving out this module's own frames."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self._skip = __file__

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if code.co_filename == self._skip:
            return None
        frame.f_trace_opcodes = True
        key = (code.co_filename, code.co_qualname)
        counts = self.counts

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[key] += 1
            return local

        return local

    def start(self) -> None:
        sys.settrace(self._global)

    def stop(self) -> None:
        sys.settrace(None)


@contextlib.contextmanager
def quiet_stderr() -> Any:
    """The gateway's request log (one JSON line per request, on fd 2) goes to /dev/null meanwhile."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


async def serve_load(
    app: App, stream: bool, requests: int, warm: int, concurrency: int, counter: OpcodeCounter | None = None
) -> None:
    """Serve `warm` requests, let their deferred work end, then serve `requests` more and wait for theirs
    (counted by `counter` when given), `concurrency` at a time, between the app's lifespan events."""
    scope, body = request_scope(stream)
    lifespan = Lifespan(app)
    await lifespan.start()

    async def run(n: int) -> None:
        async def worker(k: int) -> None:
            for _ in range(k):
                await serve_one(app, scope, body)

        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))

    try:
        await run(warm)
        await asyncio.sleep(DEFERRED_SECONDS)  # the warm-up's deferred work (ledger, archive) ends first
        if counter is not None:
            counter.start()
        try:
            await run(requests)
            await asyncio.sleep(DEFERRED_SECONDS)  # and the measured requests' deferred work runs
        finally:
            if counter is not None:
                counter.stop()
    finally:
        await lifespan.stop()


async def _measure(app: App, stream: bool, requests: int, warm: int, concurrency: int) -> OpcodeCounter:
    counter = OpcodeCounter()
    await serve_load(app, stream, requests, warm, concurrency, counter)
    return counter


@contextlib.contextmanager
def fake_upstream(log_dir: Path) -> Iterator[int]:
    """The benchmarks' fake OpenAI upstream in its own process, for the block; yields its port."""
    port = free_port()
    upstream = Service(
        "upstream",
        [sys.executable, "-m", "benchmarks.fake_upstream", "--port", str(port)],
        log_dir / "upstream.log",
    )
    upstream.start()
    try:
        upstream.wait_http(f"http://127.0.0.1:{port}/v1/models", 15)
        yield port
    finally:
        upstream.stop()


def gateway_app(data_dir: Path, upstream_port: int, accounting: bool) -> App:
    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.server import tune_gc
    from gateway.settings import Settings

    config_path = data_dir / "gateway.yaml"
    config_path.write_text(gateway_config(data_dir / "data", upstream_port, accounting))
    settings = Settings.from_environ(config_path, None, None)
    app = create_app(settings, load_config(settings.config_path, settings.env))
    tune_gc()
    return app


def _report(name: str, counter: OpcodeCounter, requests: int, top: int, root: str) -> int:
    total = sum(counter.counts.values())
    per_request = round(total / requests)
    print(f"{name}: {per_request} Python bytecodes per request")
    by_place: Counter[str] = Counter()
    for (filename, _), n in counter.counts.items():
        by_place[_place(filename, root)] += n
    if top:
        for place, n in by_place.most_common(top):
            print(f"  {n / requests:8.1f}  {place}")
        print("  costliest functions:")
        for (filename, function), n in counter.counts.most_common(top):
            print(f"  {n / requests:8.1f}  {function}  ({_place(filename, root)})")
    return per_request


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.opcount", description=__doc__.splitlines()[0])
    p.add_argument("--stream", action="store_true", help="streaming chat (20 chunks), not JSON")
    p.add_argument("--accounting", action="store_true", help="the tenant has a budget and rpm/tpm limits")
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--warm", type=int, default=1000, help="requests served before counting")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--top", type=int, default=0, help="also list the N costliest modules and functions")
    p.add_argument("--no-relay", action="store_true", help="do not count the bare relay")
    args = p.parse_args(argv)
    from benchmarks.bare_relay import BareRelay

    root = str(Path(__file__).resolve().parent.parent) + "/"
    with tempfile.TemporaryDirectory(prefix="switchyard-opcount-") as tmp, fake_upstream(Path(tmp)) as port:
        gateway = gateway_app(Path(tmp), port, args.accounting)
        load = (args.stream, args.requests, args.warm, args.concurrency)
        with quiet_stderr():
            counted = uvloop.run(_measure(gateway, *load))
        ours = _report("gateway", counted, args.requests, args.top, root)
        if not args.no_relay:
            relay = BareRelay(f"http://127.0.0.1:{port}/v1")
            counted = uvloop.run(_measure(relay, *load))
            floor = _report("bare relay", counted, args.requests, args.top, root)
            print(f"gateway / relay: {ours / floor:.2f}x")


if __name__ == "__main__":
    main()
