"""The store's Redis client encodes commands with hiredis: the same bytes as redis-py, against a real Redis."""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from gateway.store import DRIVER_INFO, _client, hiredis_packing

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "k", 1),
    ("SET", b"k", -5),
    ("INCRBYFLOAT", "k", 0.1),
    ("ZADD", "z", 1e20, "a", 1.5e-7, "b"),
    ("SET", "ключ", "värde ✓"),
    ("SET", b"k", memoryview(b"abc")),
    ("CONFIG GET", "maxmemory"),  # a command name holding its first argument
    ("EVALSHA", "ab" * 20, 2, "k1", "k2", 2**70, b"\x00\xff" * 5000),  # a value past redis-py's buffer cutoff
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: str(c[0]))
def test_the_same_bytes_as_redis_py(command: tuple[Any, ...]) -> None:
    for base in (Connection, UnixDomainSocketConnection):
        ours = hiredis_packing(base)()
        assert b"".join(bytes(part) for part in ours.pack_command(*command)) == b"".join(
            bytes(part) for part in base().pack_command(*command)
        )


def test_values_redis_py_refuses_raise_its_error() -> None:
    bad_values: list[Any] = [None, True]
    for bad in bad_values:
        with pytest.raises(DataError):
            hiredis_packing(Connection)().pack_command("SET", "k", bad)


def test_round_trips_through_a_real_redis(redis_url: str) -> None:
    async def main() -> None:
        client = _client(redis_url)
        try:
            await client.delete("packing:k", "packing:h")
            await client.set("packing:k", "värde ✓")
            assert await client.get("packing:k") == "värde ✓".encode()
            assert await client.incrbyfloat("packing:n", 0.5) == 0.5
            async with client.pipeline(transaction=True) as pipe:
                pipe.hset("packing:h", mapping={"a": 1, "b": b"\x00\xff" * 5000})
                pipe.hgetall("packing:h")
                _, values = await pipe.execute()
            assert values == {b"a": b"1", b"b": b"\x00\xff" * 5000}
            reply = await client.eval("return {KEYS[1], ARGV[1]}", 1, "packing:k", 42)
            assert reply == [b"packing:k", b"42"]
            connection = await client.connection_pool.get_connection()
            assert connection.__class__.__name__.startswith("Hiredis")
            await client.connection_pool.release(connection)
            await client.delete("packing:k", "packing:h", "packing:n")
        finally:
            await client.aclose()

    asyncio.run(main())


def test_new_connections_share_the_driver_info_looked_up_once(redis_url: str) -> None:
    """Every connection of the store's pool carries the one DriverInfo built at import (redis-py would
    otherwise ask importlib.metadata for its version per connection), and still tells Redis who it is."""

    async def main() -> None:
        client = _client(redis_url)
        try:
            first, second = [await client.connection_pool.get_connection() for _ in range(2)]
            assert first is not second
            assert first.driver_info is DRIVER_INFO and second.driver_info is DRIVER_INFO
            assert DRIVER_INFO.lib_version == importlib.metadata.version("redis")
            info = await client.client_info()  # LIB-VER is sent only to Redis 7.2 and later, which keeps it
            if "lib-ver" in info:
                assert info["lib-ver"] == DRIVER_INFO.lib_version and info["lib-name"] == "redis-py"
            for connection in (first, second):
                await client.connection_pool.release(connection)
        finally:
            await client.aclose()

    asyncio.run(main())
