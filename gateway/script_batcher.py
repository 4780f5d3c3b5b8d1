"""One Lua script called by many concurrent requests, with group commit: while one call is in flight,
the calls that arrive queue up and go out together as one pipeline when it returns.

redis-py spends far more CPU per command on its connection checkout and retry wrapper than on the
command itself. A lone call (light load) goes straight out, with nothing added; under load, calls share
pipelines, so the per-command overhead is paid once per batch.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

_MAX_BATCH = 512


class ScriptBatcher:
    def __init__(self, client: aioredis.Redis, script: str) -> None:
        self._redis = client
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._busy = False

    async def call(self, *args: Any) -> Any:
        """EVALSHA with `args` (numkeys, keys..., argv...); raises what Redis or the connection raised."""
        if self._busy:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending.append((args, future))
            return await future
        self._busy = True
        try:
            (reply,) = await self._execute([args])
        finally:
            self._next()
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _next(self) -> None:
        if not self._pending:
            self._busy = False
            return
        batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._execute([args for args, _ in batch])
        except Exception as exc:
            replies = [exc] * len(batch)
        finally:
            self._next()
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue  # its caller was cancelled
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        """Replies in order, errors as exception objects; reloads the script once if Redis lost it."""
        replies = await self._run(calls)
        retry = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if retry:  # the script cache is empty (a Redis restart): load it, run only those again
            await self._redis.script_load(self._script)
            again = await self._run([calls[i] for i in retry])
            for i, reply in zip(retry, again, strict=True):
                replies[i] = reply
        return replies

    async def _run(self, calls: list[tuple[Any, ...]]) -> list[Any]:
        if len(calls) == 1:
            try:
                return [await self._redis.execute_command("EVALSHA", self._sha, *calls[0])]
            except NoScriptError as exc:
                return [exc]
        async with self._redis.pipeline(transaction=False) as pipe:
            for args in calls:
                pipe.execute_command("EVALSHA", self._sha, *args)
            return list(await pipe.execute(raise_on_error=False))
