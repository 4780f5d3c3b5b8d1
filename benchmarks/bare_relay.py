"""The smallest proxy on the gateway's stack (uvicorn + httptools + uvloop, aiohttp client, orjson).

It only calibrates the benchmarks: the gateway's cost on top of this relay is what its features
(auth, validation, routing, metrics, usage ledger) cost. No auth, no validation, no metrics.

    python -m benchmarks.bare_relay --port 9001 --upstream http://127.0.0.1:9000/v1
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import orjson
import uvicorn
from providers.aiohttp_connector import upstream_session

from benchmarks.services import FAST_UPSTREAM_MODEL, SLOW_UPSTREAM_MODEL, UPSTREAM_KEY

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MODELS = {"bench": FAST_UPSTREAM_MODEL, "bench-slow": SLOW_UPSTREAM_MODEL}  # as in the gateway config
_JSON = [(b"content-type", b"application/json")]
_SSE = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class BareRelay:
    def __init__(self, upstream: str) -> None:
        self.url = upstream.rstrip("/") + "/chat/completions"
        self.headers = {"Content-Type": "application/json", "Authorization": f"Bearer {UPSTREAM_KEY}"}
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["path"] == "/v1/chat/completions" and scope["method"] == "POST":
            await self.chat(receive, send)
        else:  # GET /healthz and anything else: 200, so the runner can wait for it
            await send({"type": "http.response.start", "status": 200, "headers": _JSON})
            await send({"type": "http.response.body", "body": b"{}"})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        self.session = upstream_session(limit=0)  # the gateway's: see providers/aiohttp_connector.py
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self.session.close()
        await send({"type": "lifespan.shutdown.complete"})

    async def chat(self, receive: Receive, send: Send) -> None:
        assert self.session is not None
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        request = orjson.loads(body)
        request["model"] = MODELS.get(request.get("model"), request.get("model"))
        async with self.session.post(self.url, data=orjson.dumps(request), headers=self.headers) as resp:
            if not request.get("stream"):
                data = await resp.read()
                headers = [*_JSON, (b"content-length", b"%d" % len(data))]
                await send({"type": "http.response.start", "status": resp.status, "headers": headers})
                await send({"type": "http.response.body", "body": data})
                return
            await send({"type": "http.response.start", "status": resp.status, "headers": _SSE})
            async for chunk in resp.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            resp.release()
        await send({"type": "http.response.body", "body": b""})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bare_relay", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000/v1")
    args = p.parse_args(argv)
    uvicorn.run(
        BareRelay(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        proxy_headers=False,
        # The rest as in gateway/server.py, so both accept 1,000 connections at once the same way.
        backlog=4096,
        server_header=False,
        date_header=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
