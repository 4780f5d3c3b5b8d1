"""The vLLM supervisor with a stand-in server process (tests/fixtures/local_runtime/fake_vllm.py, which
answers the same HTTP surface as `vllm serve`): start, health, restart with backoff, drain."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from local_runtime.vllm_supervisor import Phase, VLLMServerConfig, VLLMSupervisor
from tests.servers import free_port

FAKE = Path(__file__).parent.parent / "fixtures" / "local_runtime" / "fake_vllm.py"


def server(tmp_path: Path, name: str = "fake", *args: str, **settings: Any) -> VLLMServerConfig:
    defaults: dict[str, Any] = {
        "command": [sys.executable, str(FAKE), "serve"],
        "health_interval": 0.1,
        "restart_backoff": 0.3,
        "restart_backoff_max": 2.0,
        "drain_grace": 2.0,
    }
    return VLLMServerConfig(
        name=name,
        model="org/fake-model",
        port=free_port(),
        args=list(args),
        log_dir=str(tmp_path / "logs"),
        **{**defaults, **settings},
    )


@pytest.fixture
async def supervisors() -> AsyncIterator[list[VLLMSupervisor]]:
    started: list[VLLMSupervisor] = []
    yield started
    for supervisor in started:
        await supervisor.aclose()


async def start(supervisors: list[VLLMSupervisor], *configs: VLLMServerConfig) -> VLLMSupervisor:
    supervisor = VLLMSupervisor(configs)
    supervisors.append(supervisor)
    await supervisor.start()
    return supervisor


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(condition: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_starts_serves_and_drains_on_shutdown(tmp_path: Path, supervisors: list[VLLMSupervisor]) -> None:
    config = server(tmp_path, "llama", "--max-model-len", "4096", gpu_ids=[0, 1], api_key="sk-local")
    supervisor = await start(supervisors, config)
    state = await supervisor.wait_healthy("llama", 15)
    assert state.pid is not None and state.restarts == 0 and state.url == config.root_url
    provider = supervisor.provider_configs()["llama"]
    async with aiohttp.ClientSession(headers={"authorization": "Bearer sk-local"}) as session:
        async with session.get(f"{provider.base_url}/models") as response:
            assert (await response.json())["data"][0]["id"] == "org/fake-model"
        async with session.post(f"{provider.base_url}/chat/completions", json={"model": "org/fake-model"}) as response:
            assert response.status == 200 and (await response.json())["usage"]["total_tokens"] == 9
    await supervisor.aclose()
    assert not alive(state.pid)
    assert supervisor.state()["llama"].phase is Phase.STOPPED
    log = (tmp_path / "logs" / "llama.log").read_text()
    assert "switchyard starts:" in log and "--port" in log and "ignored: ['--max-model-len', '4096']" in log
    assert "CUDA_VISIBLE_DEVICES=0,1" in log
    assert "SIGTERM, shutting down" in log  # drained with SIGTERM, not killed


async def test_a_killed_server_is_restarted_with_backoff(tmp_path: Path, supervisors: list[VLLMSupervisor]) -> None:
    supervisor = await start(supervisors, server(tmp_path))
    first = await supervisor.wait_healthy("fake", 15)
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    await until(lambda: supervisor.state()["fake"].phase is Phase.BACKOFF)
    backoff = supervisor.state()["fake"]
    assert backoff.last_exit_code == -signal.SIGKILL and backoff.error == f"exited with code {-signal.SIGKILL}"
    assert backoff.next_start_at is not None and 0.2 < backoff.next_start_at - backoff.since < 0.4
    second = await supervisor.wait_healthy("fake", 15)
    assert second.pid != first.pid and second.restarts == 1 and second.error is None


async def test_a_crash_looping_server_backs_off_exponentially(
    tmp_path: Path, supervisors: list[VLLMSupervisor]
) -> None:
    supervisor = await start(supervisors, server(tmp_path, "flaky", "--crash-after", "0.3", restart_backoff=0.2))
    delays: list[float] = []
    seen: set[float] = set()

    def record() -> bool:
        state = supervisor.state()["flaky"]
        if state.phase is Phase.BACKOFF and state.next_start_at is not None and state.since not in seen:
            seen.add(state.since)
            delays.append(state.next_start_at - state.since)
        return len(delays) >= 3

    await until(record, timeout=30)
    assert [round(d, 1) for d in delays] == [0.2, 0.4, 0.8]
    assert supervisor.state()["flaky"].last_exit_code == 3


async def test_a_server_that_never_gets_healthy_is_restarted(tmp_path: Path, supervisors: list[VLLMSupervisor]) -> None:
    config = server(tmp_path, "slow", "--startup-delay", "60", startup_timeout=0.5, drain_grace=0.5)
    supervisor = await start(supervisors, config)
    await until(lambda: supervisor.state()["slow"].restarts >= 1)
    assert "not healthy 0.5s after start" in (supervisor.state()["slow"].error or "")


async def test_sigkill_after_the_drain_grace(tmp_path: Path, supervisors: list[VLLMSupervisor]) -> None:
    supervisor = await start(supervisors, server(tmp_path, "stubborn", "--ignore-sigterm", drain_grace=0.5))
    state = await supervisor.wait_healthy("stubborn", 15)
    assert state.pid is not None
    started = time.perf_counter()
    await supervisor.aclose()
    assert 0.4 < time.perf_counter() - started < 5
    assert not alive(state.pid)
    assert "ignoring SIGTERM" in (tmp_path / "logs" / "stubborn.log").read_text()


async def test_a_missing_command_is_reported_and_retried(tmp_path: Path, supervisors: list[VLLMSupervisor]) -> None:
    config = server(tmp_path, "absent", command=["/nonexistent/vllm", "serve"])
    supervisor = await start(supervisors, config)
    await until(lambda: supervisor.state()["absent"].restarts >= 1)
    assert "cannot start /nonexistent/vllm" in (supervisor.state()["absent"].error or "")


async def test_reconcile_starts_new_and_stops_removed_servers(
    tmp_path: Path, supervisors: list[VLLMSupervisor]
) -> None:
    a = server(tmp_path, "a")
    supervisor = await start(supervisors, a)
    first = await supervisor.wait_healthy("a", 15)
    b = server(tmp_path, "b")
    await supervisor.reconcile([a, b])
    await supervisor.wait_healthy("b", 15)
    assert supervisor.state()["a"].pid == first.pid  # unchanged: not restarted
    await supervisor.reconcile([b])
    assert set(supervisor.state()) == {"b"}
    assert first.pid is not None and not alive(first.pid)
    assert supervisor.state()["b"].to_dict()["phase"] == "healthy"
