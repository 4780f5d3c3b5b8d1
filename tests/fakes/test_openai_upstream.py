"""Self-tests: the official openai SDK pointed directly at the fake upstream."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import openai
import pytest

from .openai_upstream import FakeOpenAI

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as upstream:
        yield upstream


@pytest.fixture
def upstream(fake: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake.clear()
    yield fake
    assert fake.wait_requests_closed(5), "a handler is still running after the test"


@pytest.fixture
def client(upstream: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=upstream.base_url, api_key="sk-upstream", max_retries=0, timeout=5) as sdk:
        yield sdk


def test_chat_non_stream(client: openai.OpenAI, upstream: FakeOpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there"}],
        n=2,
        extra_body={"x_custom_field": {"keep": [1, 2]}},
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-fake-")
    assert completion.model == "gpt-fake"
    assert [c.index for c in completion.choices] == [0, 1]
    assert completion.choices[0].message.content == "fake reply to: hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (20, 10)
    recorded = upstream.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/v1/chat/completions")
    assert recorded.headers["authorization"] == "Bearer sk-upstream"
    assert recorded.body["x_custom_field"] == {"keep": [1, 2]}


def test_chat_stop_and_max_tokens(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "one two three four"}]
    stopped = client.chat.completions.create(model="gpt-fake", messages=messages, stop=[" three"])
    assert stopped.choices[0].message.content == "fake reply to: one two"
    limited = client.chat.completions.create(model="gpt-fake", messages=messages, max_tokens=3)
    assert limited.choices[0].message.content == "fake reply to:"
    assert limited.choices[0].finish_reason == "length"


def test_chat_stream_with_usage(client: openai.OpenAI, upstream: FakeOpenAI) -> None:
    with client.chat.completions.create(
        model="gpt-fake+words-5",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        chunks = list(stream)
    content_chunks = [c for c in chunks if c.choices]
    assert all(c.object == "chat.completion.chunk" and c.usage is None for c in content_chunks)
    assert content_chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in content_chunks) == "w1 w2 w3 w4 w5"
    assert content_chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert upstream.wait_streams_closed(2)
    assert upstream.cancelled_streams == 0


def test_tool_call_stream_reassembles(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "weather?"}], tools=tools, stream=True
    ) as stream:
        chunks = list(stream)
    calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "call_fake_1" and calls[0].function is not None
    assert calls[0].function.name == "get_weather"
    arguments = "".join(call.function.arguments or "" for call in calls if call.function is not None)
    assert json.loads(arguments) == {"city": "Paris"}
    assert len(calls) == 4
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_embeddings_float_and_base64_agree(client: openai.OpenAI, upstream: FakeOpenAI) -> None:
    as_float = client.embeddings.create(model="emb-fake", input=["a", "b"], encoding_format="float")
    # Only when encoding_format is omitted does the SDK request base64 AND decode it; an explicit
    # encoding_format="base64" hands back the raw base64 strings.
    as_base64 = client.embeddings.create(model="emb-fake", input=["a", "b"])
    assert upstream.requests[-1].body["encoding_format"] == "base64"
    assert [d.embedding for d in as_float.data] == [d.embedding for d in as_base64.data]
    assert len(as_float.data[0].embedding) == 8
    assert as_float.data[0].embedding != as_float.data[1].embedding
    shrunk = client.embeddings.create(model="emb-fake", input=[[1, 2, 3]], dimensions=4)
    assert len(shrunk.data[0].embedding) == 4


def test_legacy_completions_stream(client: openai.OpenAI) -> None:
    with client.completions.create(model="gpt-fake", prompt="say hi", stream=True) as stream:
        chunks = list(stream)
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks) == "fake reply to: say hi"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_status_500_and_fail_next(client: openai.OpenAI, upstream: FakeOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="gpt-fake+status-500", messages=[{"role": "user", "content": "x"}])
    assert raised.value.status_code == 500
    assert "fake upstream error 500" in str(raised.value)
    upstream.fail_next(1, 429)
    with pytest.raises(openai.RateLimitError) as rate_limited:
        client.models.list()
    assert rate_limited.value.response.headers["retry-after"] == "1"
    assert client.models.list().data[0].id == "fake-model"


def test_bad_key_and_unknown_path(upstream: FakeOpenAI) -> None:
    with openai.OpenAI(base_url=upstream.base_url, api_key="sk-wrong", max_retries=0, timeout=5) as sdk:
        with pytest.raises(openai.AuthenticationError):
            sdk.models.list()
    response = httpx.post(f"{upstream.base_url}/nope", headers={"Authorization": "Bearer sk-upstream"})
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_drop_after_raises_during_iteration(client: openai.OpenAI, upstream: FakeOpenAI) -> None:
    received = []
    with pytest.raises(openai.APIConnectionError):  # the SDK wraps httpx's incomplete-chunked-read error
        with client.chat.completions.create(
            model="gpt-fake+words-10+drop-after-2", messages=[{"role": "user", "content": "x"}], stream=True
        ) as stream:
            received.extend(stream)
    assert len(received) == 2
    assert upstream.wait_streams_closed(2)
    assert upstream.cancelled_streams == 0  # the fake aborted on purpose; the client did not go away


def test_hang_times_out_and_server_recovers(upstream: FakeOpenAI) -> None:
    with openai.OpenAI(base_url=upstream.base_url, api_key="sk-upstream", max_retries=0, timeout=0.5) as sdk:
        with pytest.raises(openai.APITimeoutError):
            sdk.chat.completions.create(model="gpt-fake+hang", messages=[{"role": "user", "content": "x"}])
        # Headers arrive, then nothing: create() returns and the read timeout fires while iterating.
        with sdk.chat.completions.create(
            model="gpt-fake+hang-body", messages=[{"role": "user", "content": "x"}], stream=True
        ) as stream:
            with pytest.raises(openai.APITimeoutError):
                next(iter(stream))
    assert upstream.wait_requests_closed(2)
    assert upstream.open_streams == 0
    assert upstream.cancelled_requests == 2 and upstream.cancelled_streams == 1


def test_client_disconnect_mid_stream_is_counted(upstream: FakeOpenAI) -> None:
    with openai.OpenAI(base_url=upstream.base_url, api_key="sk-upstream", max_retries=0, timeout=5) as sdk:
        with sdk.chat.completions.create(
            model="gpt-fake+words-200+slow-20", messages=[{"role": "user", "content": "x"}], stream=True
        ) as stream:
            next(iter(stream))
            assert upstream.open_streams == 1
    assert upstream.wait_streams_closed(2)
    assert upstream.cancelled_streams == 1


def test_stop_is_idempotent_and_releases_port() -> None:
    upstream = FakeOpenAI(api_key=None).start()
    port = upstream.port
    upstream.stop()
    upstream.stop()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
