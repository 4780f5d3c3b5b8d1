"""One Lua script called by many concurrent requests, sent to Redis as one pipeline per loop turn.

redis-py spends far more CPU per command on its connection checkout and retry wrapper than on the
command itself; calls made in the same event-loop iteration (concurrent requests under load) share one
pipeline round trip instead. A lone call still goes out on the next loop turn, so nothing waits for a
batch to fill.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

_MAX_BATCH = 256


class ScriptBatcher:
    def __init__(self, client: aioredis.Redis, script: str) -> None:
        self._redis = client
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._scheduled = False

    async def call(self, *args: Any) -> Any:
        """EVALSHA with `args` (numkeys, keys..., argv...); raises what Redis or the connection raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((args, future))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
        if self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._execute([args for args, _ in batch])
            retry = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if retry:  # the script cache is empty (a Redis restart): load it, run only those again
                await self._redis.script_load(self._script)
                again = await self._execute([batch[i][0] for i in retry])
                for i, reply in zip(retry, again, strict=True):
                    replies[i] = reply
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue  # its caller was cancelled
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        if len(calls) == 1:
            try:
                return [await self._redis.execute_command("EVALSHA", self._sha, *calls[0])]
            except NoScriptError as exc:
                return [exc]
        async with self._redis.pipeline(transaction=False) as pipe:
            for args in calls:
                pipe.execute_command("EVALSHA", self._sha, *args)
            return list(await pipe.execute(raise_on_error=False))
