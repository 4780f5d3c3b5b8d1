"""Deployments that cannot serve a request are skipped; when none can, a 400 says why and nothing is sent."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import Gateway

IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }
]
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        providers={"fake": upstream_provider(upstream)},
        models={
            "mixed": {
                "deployments": [{"provider": "fake", "model": "gpt-3.5-turbo"}, {"provider": "fake", "model": "gpt-4o"}]
            },
            "text-only": {"deployments": [{"provider": "fake", "model": "gpt-3.5-turbo"}]},
            "tiny": {
                "deployments": [{"provider": "fake", "model": "my-model", "capabilities": {"context_window": 50}}]
            },
            "embedder": {"deployments": [{"provider": "fake", "model": "text-embedding-3-small"}]},
        },
    )


def test_image_request_skips_text_only_deployment(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    raw = gateway.openai().chat.completions.with_raw_response.create(model="mixed", messages=IMAGE)
    assert (raw.headers["x-switchyard-deployment"], raw.headers["x-switchyard-attempts"]) == ("fake/gpt-4o", "1")
    assert [r.body["model"] for r in upstream.requests] == ["gpt-4o"]
    text = gateway.openai().chat.completions.with_raw_response.create(model="mixed", messages=USER)
    assert text.headers["x-switchyard-deployment"] == "fake/gpt-3.5-turbo"


def test_no_capable_deployment_is_400_and_nothing_is_sent(gateway: Gateway, upstream: FakeOpenAI) -> None:
    upstream.clear()
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="text-only", messages=IMAGE)
    assert info.value.code == "unsupported_capability"
    assert "fake/gpt-3.5-turbo (gpt-3.5-turbo) does not accept image input" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="text-only", messages=USER, max_tokens=5000)
    assert "allows at most 4096 output tokens" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 60}])
    assert "context window of 50 tokens" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="embedder", messages=USER)
    assert "is not a chat model" in info.value.message
    assert upstream.requests == []
    assert len(gateway.openai().embeddings.create(model="embedder", input="x").data) == 1
