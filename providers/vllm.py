"""`kind: vllm` — a vLLM server: the OpenAI-compatible adapter plus what routing needs to know.

A background task checks `/health` and scrapes `/metrics` (Prometheus text, parsed with
prometheus-client's parser) every `scrape_interval`, keeping the server's running and waiting
requests and KV-cache usage (`vllm:kv_cache_usage_perc`, or `vllm:gpu_cache_usage_perc` on older
servers). A failed check marks the server unhealthy; it never raises into the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Literal

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

from providers.base import Duration, EnvFlag, ServerLoad
from providers.openai_compat import OpenAICompatConfig, OpenAICompatProvider

log = logging.getLogger("switchyard.vllm")

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
_CHECK_TIMEOUT = aiohttp.ClientTimeout(total=3)


class VLLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["vllm"]
    base_url: str = Field(description="The server's OpenAI API root, e.g. http://gpu-1:8000/v1")
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: EnvFlag = True
    health_url: str | None = Field(default=None, description="Default: <server root>/health")
    metrics_url: str | None = Field(default=None, description="Default: <server root>/metrics")
    scrape_interval: Duration = 5.0


class VLLMProvider(OpenAICompatProvider):
    def __init__(self, name: str, config: VLLMConfig, session: aiohttp.ClientSession) -> None:
        super().__init__(
            name,
            OpenAICompatConfig(kind="openai", base_url=config.base_url, api_key=config.api_key, headers=config.headers),
            session,
        )
        self.kind = "vllm"  # type: ignore[assignment]
        root = server_root(config.base_url)
        self.health_url = config.health_url or f"{root}/health"
        self.metrics_url = config.metrics_url or f"{root}/metrics"
        self._interval = config.scrape_interval
        self._check_headers = {k: v for k, v in self._headers.items() if k.lower() == "authorization"}
        self._load = ServerLoad(healthy=True, error="not checked yet")
        self._task: asyncio.Task[None] | None = None

    def load(self) -> ServerLoad:
        return self._load

    async def start(self) -> None:
        if self._task is None:
            await self.check()
            self._task = asyncio.create_task(self._watch(), name=f"vllm-watch-{self.name}")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def check(self) -> ServerLoad:
        """One health check and metrics scrape; the result replaces the last one."""
        try:
            async with self._session.get(self.health_url, headers=self._check_headers, timeout=_CHECK_TIMEOUT) as r:
                if r.status != 200:
                    return self._unhealthy(f"/health answered {r.status}")
            async with self._session.get(self.metrics_url, headers=self._check_headers, timeout=_CHECK_TIMEOUT) as r:
                if r.status != 200:
                    return self._unhealthy(f"/metrics answered {r.status}")
                text = await r.text()
            load = parse_metrics(text)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return self._unhealthy(f"unreachable: {type(exc).__name__}")
        except ValueError as exc:
            return self._unhealthy(f"bad /metrics: {exc}")
        return self._set(load)

    def _unhealthy(self, reason: str) -> ServerLoad:
        return self._set(ServerLoad(healthy=False, scraped_at=time.time(), error=reason))

    def _set(self, load: ServerLoad) -> ServerLoad:
        if load.healthy != self._load.healthy:
            state = "healthy" if load.healthy else "unhealthy"
            log.warning("vLLM server %s is now %s (%s)", self.name, state, load.error)
        self._load = load
        return load


def server_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def parse_metrics(text: str) -> ServerLoad:
    """Sum running/waiting over every engine and model label; take the highest KV-cache usage."""
    running: float | None = None
    waiting: float | None = None
    kv_new: float | None = None
    kv_old: float | None = None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == RUNNING:
                running = (running or 0.0) + sample.value
            elif sample.name == WAITING:
                waiting = (waiting or 0.0) + sample.value
            elif sample.name == KV_CACHE[0]:
                kv_new = max(kv_new or 0.0, sample.value)
            elif sample.name == KV_CACHE[1]:
                kv_old = max(kv_old or 0.0, sample.value)
    if running is None and waiting is None:
        raise ValueError("no vllm:num_requests_running / vllm:num_requests_waiting in the scrape")
    return ServerLoad(
        healthy=True,
        running=running,
        waiting=waiting,
        kv_cache_usage=kv_new if kv_new is not None else kv_old,
        scraped_at=time.time(),
    )
