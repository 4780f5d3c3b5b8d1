"""Steady demo traffic for deploy/compose.yaml, so every dashboard panel that the mock setup can feed has data.

Runs in the gateway image (`docker compose -f deploy/compose.yaml --profile loadgen up`) or anywhere with
httpx installed: `python deploy/loadgen.py`. Settings from the environment:

    SWITCHYARD_URL      gateway base URL (default http://127.0.0.1:8080)
    LOADGEN_RPS         requests per second (default 2)
    LOADGEN_KEYS        comma-separated tenant keys (default the compose config's demo and acme keys)
    LOADGEN_DURATION    seconds to run, 0 = until stopped (default 0)

Each request picks a key and a kind: chat on `mock`, a streamed chat on `mock` (time to first token),
chat on `chat-failover` (errors, failovers, circuit states) or an embedding. Once a tenant's daily budget
is spent its requests get 429 budget_exceeded, which the admission panel shows.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter

import httpx

KINDS = ("chat", "stream", "failover", "embedding")
WEIGHTS = (4, 4, 2, 1)


def _body(kind: str, n: int) -> tuple[str, dict[str, object]]:
    words = " ".join(random.choice(("route", "token", "budget", "stream", "cache", "gpu")) for _ in range(8))
    if kind == "embedding":
        return "/v1/embeddings", {"model": "mock-embedding", "input": f"{n} {words}"}
    body: dict[str, object] = {
        "model": "chat-failover" if kind == "failover" else "mock",
        "messages": [{"role": "user", "content": f"Request {n}: {words}"}],
        "max_tokens": 64,
    }
    if kind == "stream":
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return "/v1/chat/completions", body


async def _one(client: httpx.AsyncClient, key: str, n: int, tally: Counter[str]) -> None:
    kind = random.choices(KINDS, WEIGHTS)[0]
    path, body = _body(kind, n)
    headers = {"Authorization": f"Bearer {key}", "x-switchyard-tags": f"feature=loadgen,kind={kind}"}
    try:
        if body.get("stream"):
            async with client.stream("POST", path, json=body, headers=headers) as response:
                async for _ in response.aiter_bytes():
                    pass
                status = response.status_code
        else:
            status = (await client.post(path, json=body, headers=headers)).status_code
        tally[f"{kind}:{status}"] += 1
    except httpx.HTTPError as exc:
        tally[f"{kind}:{type(exc).__name__}"] += 1


async def main() -> None:
    url = os.environ.get("SWITCHYARD_URL", "http://127.0.0.1:8080")
    rps = float(os.environ.get("LOADGEN_RPS", "2"))
    keys = os.environ.get("LOADGEN_KEYS", "sk-switchyard-demo,sk-switchyard-acme").split(",")
    duration = float(os.environ.get("LOADGEN_DURATION", "0"))
    tally: Counter[str] = Counter()
    tasks: set[asyncio.Task[None]] = set()
    started = last_report = time.monotonic()
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        n = 0
        while not duration or time.monotonic() - started < duration:
            n += 1
            task = asyncio.create_task(_one(client, random.choice(keys).strip(), n, tally))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await asyncio.sleep(random.expovariate(rps))
            if time.monotonic() - last_report >= 30:
                last_report = time.monotonic()
                print(f"loadgen: {n} sent; " + ", ".join(f"{k}={v}" for k, v in sorted(tally.items())), flush=True)
        await asyncio.gather(*tasks)
    print(f"loadgen: done; {n} sent; " + ", ".join(f"{k}={v}" for k, v in sorted(tally.items())), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
