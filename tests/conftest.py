from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI

from tests.servers import UPSTREAM_KEY, Gateway, RedisServer, base_config, start_gateway, write_config


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: $REDIS_URL when set, otherwise a redis-server started for the session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the test Redis, to read what the gateway wrote."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[FakeOpenAI]:
    from tests.fakes.openai_upstream import FakeOpenAI

    with FakeOpenAI(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def fresh_upstream(upstream: FakeOpenAI) -> FakeOpenAI:
    upstream.clear()
    return upstream


GatewayFactory = Callable[..., Gateway]


class _Gateways:
    """Starts gateways with a config built from `base_config` plus the given sections; stops them all."""

    def __init__(self, directory: Path, redis_url: str) -> None:
        self.directory = directory
        self.redis_url = redis_url
        self.started: list[Gateway] = []

    def __call__(
        self,
        *,
        env: dict[str, str] | None = None,
        embedded_redis: bool = False,
        redis_url: str | None = None,
        wait_path: str = "/readyz",
        **sections: Any,
    ) -> Gateway:
        index = len(self.started)
        url = "" if embedded_redis else (redis_url or self.redis_url)
        config = base_config(self.directory / f"data{index}", url)
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        path = self.directory / f"gateway{index}.yaml"
        write_config(path, config)
        gateway = start_gateway(path, self.directory / f"gateway{index}.log", env, wait_path)
        self.started.append(gateway)
        return gateway

    def stop_all(self) -> None:
        for gateway in self.started:
            gateway.stop()


@pytest.fixture
def gateway_factory(tmp_path: Path, redis_url: str) -> Iterator[GatewayFactory]:
    gateways = _Gateways(tmp_path, redis_url)
    yield gateways
    gateways.stop_all()


@pytest.fixture(scope="module")
def module_gateway_factory(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[GatewayFactory]:
    gateways = _Gateways(tmp_path_factory.mktemp("gateways"), redis_url)
    yield gateways
    gateways.stop_all()


def upstream_provider(fake: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {"kind": "openai", "base_url": fake.base_url, "api_key": UPSTREAM_KEY, **extra}


def chat_and_embeddings(fake: FakeOpenAI) -> dict[str, Any]:
    """A gateway config's providers and models: `chat` and `embed`, each one deployment on `fake`."""
    return {
        "providers": {"fake": upstream_provider(fake)},
        "models": {
            "chat": {"deployments": [{"provider": "fake", "model": "gpt-fake"}]},
            "embed": {"deployments": [{"provider": "fake", "model": "embed-fake"}]},
        },
    }
