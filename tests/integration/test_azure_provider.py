"""`kind: azure`: Azure's deployment URL, api-version and api-key header, on the OpenAI adapter."""

from __future__ import annotations

from tests.conftest import GatewayFactory
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import UPSTREAM_KEY

USER = [{"role": "user", "content": "hello azure"}]


def test_azure_urls_auth_and_streaming(gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> None:
    gateway = gateway_factory(
        providers={
            "azure": {
                "kind": "azure",
                "endpoint": f"http://127.0.0.1:{upstream.port}/",
                "api_key": UPSTREAM_KEY,
                "api_version": "2024-10-21",
            }
        },
        models={
            "chat": {"deployments": [{"provider": "azure", "model": "my-gpt4o"}]},
            "embed": {"deployments": [{"provider": "azure", "model": "my-embeddings"}]},
        },
    )
    upstream.clear()
    client = gateway.openai()
    reply = client.chat.completions.create(model="chat", messages=USER)
    assert reply.choices[0].message.content == "fake reply to: hello azure"
    sent = upstream.requests[-1]
    assert sent.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == UPSTREAM_KEY and "authorization" not in sent.headers
    chunks = list(client.chat.completions.create(model="chat", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "fake reply to: hello azure"
    assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
    assert len(client.embeddings.create(model="embed", input="x").data) == 1
    assert upstream.requests[-1].path == "/openai/deployments/my-embeddings/embeddings"
