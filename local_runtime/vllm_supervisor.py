"""Supervision of local `vllm serve` processes.

Each configured server runs as a child process in its own process group (vLLM starts engine
processes of its own: signals go to the whole group). The supervisor polls its `/health` until it
answers 200 (within `startup_timeout`), then every `health_interval`; a child that exits, or fails
`unhealthy_after` checks in a row, is stopped and started again after an exponential backoff
(`restart_backoff` doubling up to `restart_backoff_max`, reset once a run stays healthy for
`stable_after`). Output goes to `<log_dir>/<name>.log`, rotated by size. `aclose()` drains: SIGTERM
to each group, SIGKILL after `drain_grace`.

The gateway routes to each server as a `kind: vllm` provider: `VLLMServerConfig.provider_config()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, model_validator

from local_runtime.rotating_log import RotatingLog
from providers.base import Duration
from providers.vllm import VLLMConfig

log = logging.getLogger("switchyard.vllm_supervisor")


class VLLMServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    model: str = Field(min_length=1, description="What `vllm serve` loads: a Hugging Face id or a local path.")
    port: int = Field(ge=1, le=65535)
    host: str = "127.0.0.1"
    args: list[str] = Field(default_factory=list, description="Extra `vllm serve` arguments.")
    gpu_ids: list[int] | None = Field(default=None, description="Sets CUDA_VISIBLE_DEVICES; unset: inherited.")
    api_key: str | None = Field(default=None, description="Passed as --api-key and used by the gateway.")
    command: list[str] = Field(default_factory=lambda: ["vllm", "serve"], min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    log_dir: str = ".switchyard/vllm"
    log_max_bytes: int = Field(default=50 * 2**20, ge=1024)
    log_backups: int = Field(default=5, ge=0, le=100)
    health_path: str = "/health"
    health_interval: Duration = 5.0
    health_timeout: Duration = 3.0
    unhealthy_after: int = Field(default=3, ge=1)
    startup_timeout: Duration = 900.0
    restart_backoff: Duration = 1.0
    restart_backoff_max: Duration = 60.0
    stable_after: Duration = 60.0
    drain_grace: Duration = 30.0

    def argv(self) -> list[str]:
        key = ["--api-key", self.api_key] if self.api_key else []
        return [*self.command, self.model, "--host", self.host, "--port", str(self.port), *key, *self.args]

    @property
    def root_url(self) -> str:
        host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"http://{host}:{self.port}"

    @property
    def health_url(self) -> str:
        return self.root_url + self.health_path

    def provider_config(self) -> VLLMConfig:
        """The `kind: vllm` provider that routes to this server."""
        return VLLMConfig(kind="vllm", base_url=f"{self.root_url}/v1", api_key=self.api_key, health_url=self.health_url)


class LocalRuntimeConfig(BaseModel):
    """The config file's `local_runtime:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vllm: list[VLLMServerConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> LocalRuntimeConfig:
        for attribute in ("name", "port"):
            values = [getattr(s, attribute) for s in self.vllm]
            duplicates = sorted({str(v) for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"vllm servers need distinct {attribute}s; repeated: {', '.join(duplicates)}")
        return self


class Phase(StrEnum):
    STARTING = "starting"
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ServerState:
    name: str
    phase: Phase
    url: str
    log_file: str
    pid: int | None = None
    restarts: int = 0
    last_exit_code: int | None = None
    error: str | None = None
    since: float = 0.0
    next_start_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "phase": str(self.phase),
            "url": self.url,
            "log_file": self.log_file,
            "pid": self.pid,
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "error": self.error,
            "since": self.since,
            "next_start_at": self.next_start_at,
        }


class _Server:
    def __init__(self, config: VLLMServerConfig) -> None:
        self.config = config
        self.log_path = Path(config.log_dir) / f"{config.name}.log"
        self.state = ServerState(config.name, Phase.STOPPED, config.root_url, str(self.log_path), since=time.time())
        self.process: asyncio.subprocess.Process | None = None
        self.task: asyncio.Task[None] | None = None
        self.stopping = asyncio.Event()

    def set(self, **changes: Any) -> None:
        if "phase" in changes and changes["phase"] != self.state.phase:
            changes.setdefault("since", time.time())
            log.info("vLLM server %s: %s%s", self.config.name, changes["phase"], _why(changes.get("error")))
        self.state = replace(self.state, **changes)


def _why(error: str | None) -> str:
    return f" ({error})" if error else ""


class VLLMSupervisor:
    def __init__(self, servers: Sequence[VLLMServerConfig]) -> None:
        self._servers = {s.name: _Server(s) for s in servers}
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        for server in self._servers.values():
            self._launch(server)

    def _launch(self, server: _Server) -> None:
        if server.task is None:
            server.task = asyncio.create_task(self._supervise(server), name=f"vllm-{server.config.name}")

    def state(self) -> dict[str, ServerState]:
        return {name: server.state for name, server in self._servers.items()}

    def provider_configs(self) -> dict[str, VLLMConfig]:
        return {name: server.config.provider_config() for name, server in self._servers.items()}

    async def wait_healthy(self, name: str, timeout: float) -> ServerState:
        """Wait until `name` is healthy; TimeoutError with its last state otherwise."""
        server = self._servers[name]
        async with asyncio.timeout(timeout):
            while server.state.phase is not Phase.HEALTHY:
                await asyncio.sleep(0.05)
        return server.state

    async def reconcile(self, servers: Sequence[VLLMServerConfig]) -> None:
        """Apply a new config: stop removed or changed servers, start new or changed ones."""
        wanted = {s.name: s for s in servers}
        for name in list(self._servers):
            if wanted.get(name) != self._servers[name].config:
                await self._stop(self._servers.pop(name))
        for name, config in wanted.items():
            if name not in self._servers:
                self._servers[name] = _Server(config)
                if self._session is not None:
                    self._launch(self._servers[name])

    async def aclose(self) -> None:
        """Drain every server: SIGTERM, then SIGKILL after its drain_grace."""
        await asyncio.gather(*(self._stop(s) for s in self._servers.values()))
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _stop(self, server: _Server) -> None:
        server.stopping.set()
        if server.process is not None and server.process.returncode is None:
            server.set(phase=Phase.STOPPING)
            await _terminate(server.process, server.config.drain_grace)
        if server.task is not None:
            server.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await server.task
            server.task = None
        server.set(phase=Phase.STOPPED, pid=None, next_start_at=None)

    async def _supervise(self, server: _Server) -> None:
        config = server.config
        failures = 0
        output = RotatingLog(server.log_path, max_bytes=config.log_max_bytes, backups=config.log_backups)
        try:
            while not server.stopping.is_set():
                healthy_for = await self._run_once(server, output)
                if server.stopping.is_set():
                    break
                failures = 1 if healthy_for >= config.stable_after else failures + 1
                delay = min(config.restart_backoff_max, config.restart_backoff * 2 ** (failures - 1))
                server.set(phase=Phase.BACKOFF, pid=None, next_start_at=time.time() + delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.stopping.wait(), delay)
                if not server.stopping.is_set():
                    server.set(restarts=server.state.restarts + 1, next_start_at=None)
        finally:
            output.close()

    async def _run_once(self, server: _Server, output: RotatingLog) -> float:
        """Start the child and watch it until it exits or is stopped; return how long it was healthy."""
        config = server.config
        env = {**os.environ, **config.env}
        if config.gpu_ids is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in config.gpu_ids)
        argv = config.argv()
        output.write(f"=== {time.strftime('%Y-%m-%dT%H:%M:%S')} switchyard starts: {' '.join(argv)}\n".encode())
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            server.set(phase=Phase.BACKOFF, error=f"cannot start {argv[0]}: {exc}")
            return 0.0
        server.process = process
        server.set(phase=Phase.STARTING, pid=process.pid)  # the last failure stays until healthy
        pump = asyncio.create_task(_pump(process, output))
        try:
            return await self._watch(server, process)
        finally:
            if process.returncode is None:
                await _terminate(process, config.drain_grace)
            else:
                _kill_group(process.pid)  # engine processes the leader left behind
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(pump, 5)
            server.process = None

    async def _watch(self, server: _Server, process: asyncio.subprocess.Process) -> float:
        config = server.config
        started = time.monotonic()
        healthy_since: float | None = None
        misses = 0
        exited = asyncio.ensure_future(process.wait())
        try:
            while True:
                interval = config.health_interval if healthy_since is not None else min(0.25, config.health_interval)
                done, _ = await asyncio.wait({exited}, timeout=interval)
                if done:
                    code = exited.result()
                    server.set(last_exit_code=code, error=f"exited with code {code}")
                    break
                if server.stopping.is_set():
                    break
                if await self._healthy(config):
                    misses = 0
                    if server.state.phase is not Phase.HEALTHY:
                        healthy_since = healthy_since or time.monotonic()
                        server.set(phase=Phase.HEALTHY, error=None)
                    continue
                if healthy_since is None:
                    if time.monotonic() - started > config.startup_timeout:
                        server.set(error=f"not healthy {config.startup_timeout:g}s after start")
                        break
                    continue
                misses += 1
                server.set(phase=Phase.UNHEALTHY, error=f"{misses} failed health check(s)")
                if misses >= config.unhealthy_after:
                    break
        finally:
            exited.cancel()
        return time.monotonic() - healthy_since if healthy_since is not None else 0.0

    async def _healthy(self, config: VLLMServerConfig) -> bool:
        assert self._session is not None
        try:
            timeout = aiohttp.ClientTimeout(total=config.health_timeout)
            async with self._session.get(config.health_url, timeout=timeout) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False


async def _pump(process: asyncio.subprocess.Process, output: RotatingLog) -> None:
    assert process.stdout is not None
    while chunk := await process.stdout.read(65536):
        output.write(chunk)


def _kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


async def _terminate(process: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM to the child's process group; SIGKILL to the group after `grace` seconds."""
    if process.returncode is None:
        _kill_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), grace)
        except TimeoutError:
            log.warning("process %s did not stop %gs after SIGTERM: SIGKILL", process.pid, grace)
    _kill_group(process.pid)
    await process.wait()
