"""`POST /v1/responses`: the official `openai` SDK's Responses API against the gateway, served by chat backends."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, upstream_provider
from tests.fakes.openai_upstream import FakeOpenAI
from tests.servers import TENANT_KEY, Gateway

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: GatewayFactory, upstream: FakeOpenAI) -> Gateway:
    return module_gateway_factory(
        providers={"mock": {"kind": "mock", "chunk_delay_ms": 1}, "fake": upstream_provider(upstream)},
        policies={"quick": {"max_attempts": 2, "timeout": {"first_token": "2s", "total": "5s"}}},
        models={
            "mock": {"deployments": [{"provider": "mock", "model": "mock"}]},
            "fake-chat": {"deployments": [{"provider": "fake", "model": "gpt-4o-mini"}]},
            "after-500": {
                "policy": "quick",
                "deployments": [{"provider": "fake", "model": "a+status-500"}, {"provider": "fake", "model": "b"}],
            },
            "all-500": {
                "policy": "quick",
                "deployments": [
                    {"provider": "fake", "model": "a+status-500"},
                    {"provider": "fake", "model": "b+status-503"},
                ],
            },
            "drop-mid-stream": {"deployments": [{"provider": "fake", "model": "a+drop-after-3+words-20"}]},
        },
    )


def client(gateway: Gateway, key: str = TENANT_KEY) -> openai.OpenAI:
    made = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0, timeout=20)
    gateway.clients.append(made)
    return made


def test_response_from_the_mock(gateway: Gateway) -> None:
    response = client(gateway).responses.create(model="mock", instructions="You are terse.", input="Hello there")
    assert response.object == "response" and response.status == "completed" and response.model == "mock"
    assert response.id.startswith("resp_") and response.instructions == "You are terse."
    assert "Hello there" in response.output_text
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage is not None
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_stream_matches_the_whole_response(gateway: Gateway) -> None:
    sdk = client(gateway)
    whole = sdk.responses.create(model="mock", input="one two three four")
    with sdk.responses.stream(model="mock", input="one two three four") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 3
    assert "".join(deltas) == whole.output_text == final.output_text
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert final.usage is not None and whole.usage is not None
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_create_with_stream_true_yields_the_events(gateway: Gateway) -> None:
    events = list(client(gateway).responses.create(model="mock", input="alpha beta", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed" and "response.output_text.done" in types


@pytest.mark.parametrize("stream", [False, True])
def test_function_calling_round_trip(gateway: Gateway, stream: bool) -> None:
    sdk = client(gateway)
    request = {"model": "mock", "tools": [WEATHER_TOOL], "input": "weather in Paris?"}
    if stream:
        with sdk.responses.stream(**request) as events:  # type: ignore[arg-type]
            response = events.get_final_response()
    else:
        response = sdk.responses.create(**request)  # type: ignore[arg-type]
    calls = [item for item in response.output if item.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "mock"}
    # The call and its output go back as input items and reach the backend as a chat tool exchange.
    follow_up = sdk.responses.create(
        model="mock",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="none",
        input=[
            {"role": "user", "content": "weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert follow_up.status == "completed" and follow_up.output_text


def test_translated_request_reaches_an_openai_upstream(gateway: Gateway, fresh_upstream: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    response = client(gateway).responses.create(
        model="fake-chat",
        instructions="Be brief.",
        max_output_tokens=64,
        temperature=0.2,
        text={"format": {"type": "json_schema", "name": "reply", "schema": schema, "strict": True}},
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
    )
    assert response.status == "completed" and response.output_text
    sent = fresh_upstream.requests[-1].body
    assert sent["model"] == "gpt-4o-mini" and sent["max_completion_tokens"] == 64 and sent["temperature"] == 0.2
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }


def test_a_streamed_response_is_billed_with_the_upstreams_usage(gateway: Gateway, fresh_upstream: FakeOpenAI) -> None:
    raw = client(gateway).responses.with_raw_response.create(model="fake-chat", input="count the words", stream=True)
    request_id = raw.headers["x-request-id"]
    events = list(raw.parse())
    final = events[-1]
    assert final.type == "response.completed"
    usage = final.response.usage
    assert usage is not None and usage.output_tokens > 0
    sent = fresh_upstream.requests[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    # The gateway's request log line for this response: the upstream's usage, not an estimate.
    deadline = time.monotonic() + 5
    found: list[dict[str, object]] = []
    while not found and time.monotonic() < deadline:
        time.sleep(0.1)
        found = [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{") and request_id in line]
    assert len(found) == 1
    line = found[0]
    assert line["status"] == 200 and line["stream"] is True and line["estimated"] is False
    assert line["prompt_tokens"] == usage.input_tokens and line["completion_tokens"] == usage.output_tokens


def test_fails_over_like_any_chat_request(gateway: Gateway) -> None:
    raw = client(gateway).responses.with_raw_response.create(model="after-500", input="hi")
    assert raw.headers["x-switchyard-attempts"] == "2"
    assert raw.headers["x-switchyard-deployment"] == "fake/b"
    assert raw.parse().output_text


def test_errors_arrive_as_openai_exceptions(gateway: Gateway) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(gateway, key="sk-wrong").responses.create(model="mock", input="x")
    with pytest.raises(openai.NotFoundError):
        client(gateway).responses.create(model="nope", input="x")
    with pytest.raises(openai.BadRequestError) as built_in:
        client(gateway).responses.create(model="mock", input="x", tools=[{"type": "web_search"}])
    assert built_in.value.body["param"] == "tools[0].type"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as stateful:
        client(gateway).responses.create(model="mock", input="x", previous_response_id="resp_123")
    assert stateful.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert stateful.value.code == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError) as bad_part:
        client(gateway).responses.create(
            model="mock",
            input=[{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}],
        )
    assert bad_part.value.body["param"] == "input[0].content[0].type"  # type: ignore[index]
    with pytest.raises(openai.InternalServerError) as failed:
        client(gateway).responses.create(model="all-500", input="x")
    assert failed.value.status_code == 502


def test_malformed_json_and_a_missing_input_are_400(gateway: Gateway) -> None:
    http = httpx.Client(base_url=gateway.url, headers={"authorization": f"Bearer {TENANT_KEY}"}, timeout=10)
    gateway.clients.append(http)
    missing = http.post("/v1/responses", json={"model": "mock"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "input"
    malformed = http.post("/v1/responses", content=b"{nope", headers={"content-type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_json"


def test_broken_stream_raises_in_the_sdk(gateway: Gateway) -> None:
    seen: list[str] = []
    with pytest.raises(openai.APIError):
        with client(gateway).responses.stream(model="drop-mid-stream", input="x") as stream:
            for event in stream:
                seen.append(event.type)
    assert "response.created" in seen and "response.completed" not in seen
