"""Chat completions → Responses `response` objects, validated by the `openai` SDK's own `Response` model, and
the SDK's `client.responses.create()` against the translation, offline."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
import pytest
from openai.types.responses import Response

from providers.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    UpstreamStatusError,
    error_body,
)
from providers.responses_front import chat_completion_to_response, responses_request_to_openai
from tests.unit.responses_front_support import FIXTURES, MODEL, Handler, assert_known, httpx, offline_client

REQUEST: dict[str, Any] = {"model": MODEL, "input": "hi"}


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def completion(message: dict[str, Any], finish_reason: str | None = "stop", **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "choices": [choice], **extra}


def translate(chat: dict[str, Any], request: dict[str, Any] = REQUEST, **kwargs: Any) -> Response:
    """The translated response, checked against the SDK's model: validated, every field known, nothing coerced."""
    out = chat_completion_to_response(chat, request, model=MODEL, **kwargs)
    validated = Response.model_validate(out)
    assert_known(validated)
    assert validated.to_dict() == out
    return validated


def test_tool_calls_fixture() -> None:
    response = translate(load("completion_tool_calls.json"))
    assert re.fullmatch(r"resp_[0-9a-f]{48}", response.id)
    assert (response.object, response.status, response.created_at, response.model) == (
        "response",
        "completed",
        1746904410,
        MODEL,
    )
    assert response.error is None and response.incomplete_details is None
    assert response.completed_at is not None
    message, weather, screenshot = response.output
    assert message.type == "message" and re.fullmatch(r"msg_[0-9a-f]{48}", message.id)
    assert (message.role, message.status) == ("assistant", "completed")
    assert [part.to_dict() for part in message.content] == [
        {
            "type": "output_text",
            "text": "I'll check the weather and take a screenshot.",
            "annotations": [],
            "logprobs": [],
        }
    ]
    assert weather.type == "function_call" and screenshot.type == "function_call"
    assert weather.id is not None and re.fullmatch(r"fc_[0-9a-f]{48}", weather.id)
    assert (weather.call_id, weather.name, weather.arguments, weather.status) == (
        "call_Yj1s6Yl2X9VXNnLEoTpLKqXh",
        "get_weather",
        '{"location":"Paris, France"}',
        "completed",
    )
    assert (screenshot.call_id, screenshot.name, screenshot.arguments) == (
        "call_3bXm0h8a2QbNn4vWc5sDpT7e",
        "take_screenshot",
        "{}",
    )
    assert response.usage is not None
    assert response.usage.to_dict() == {
        "input_tokens": 2210,
        "input_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 0},
        "output_tokens": 51,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 2261,
    }
    assert response.output_text == "I'll check the weather and take a screenshot."
    assert response.service_tier == "default"
    assert len({item.id for item in response.output}) == 3


def test_defaults_echoed_for_a_bare_request() -> None:
    out = chat_completion_to_response(
        completion({"content": "Hi!"}), REQUEST, model=MODEL, response_id="resp_x", created_at=5
    )
    Response.model_validate(out)
    assert out["id"] == "resp_x" and out["created_at"] == 5
    expected = {
        "background": False,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "metadata": {},
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": None,
        "store": False,
        "temperature": None,
        "text": {"format": {"type": "text"}, "verbosity": None},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": None,
        "top_p": None,
        "truncation": "disabled",
        "user": None,
        "usage": None,  # the completion had no usage: unknown, not zero
    }
    assert {key: out[key] for key in expected} == expected


def test_request_settings_are_echoed() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = {
        "model": MODEL,
        "input": "hi",
        "instructions": "Be terse.",
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": schema, "strict": True}],
        "tool_choice": {"type": "function", "name": "f"},
        "parallel_tool_calls": False,
        "temperature": 0.2,
        "top_p": 0.5,
        "top_logprobs": 2,
        "max_output_tokens": 99,
        "max_tool_calls": 4,
        "metadata": {"k": "v"},
        "user": "u",
        "prompt_cache_key": "pk",
        "safety_identifier": "sid",
        "store": True,
        "truncation": "auto",
        "text": {
            "format": {"type": "json_schema", "name": "thing", "schema": schema, "strict": True},
            "verbosity": "low",
        },
        "reasoning": {"effort": "low", "summary": "auto"},
    }
    responses_request_to_openai(request)  # a request the gateway accepts
    response = translate(completion({"content": '{"a": "b"}'}), request)
    assert response.instructions == "Be terse."
    assert [tool.to_dict() for tool in response.tools] == [
        {"type": "function", "name": "f", "description": "d", "parameters": schema, "strict": True}
    ]
    assert response.tool_choice.to_dict() == {"type": "function", "name": "f"}  # type: ignore[union-attr]
    assert (response.parallel_tool_calls, response.temperature, response.top_p, response.top_logprobs) == (
        False,
        0.2,
        0.5,
        2,
    )
    assert (response.max_output_tokens, response.max_tool_calls, response.user) == (99, 4, "u")
    assert (response.metadata, response.prompt_cache_key, response.safety_identifier) == ({"k": "v"}, "pk", "sid")
    assert response.store is False and response.truncation == "disabled"  # the gateway stores and truncates nothing
    assert response.text is not None and response.text.to_dict() == request["text"]
    assert response.reasoning is not None and (response.reasoning.effort, response.reasoning.summary) == ("low", "auto")


@pytest.mark.parametrize(
    ("finish_reason", "status", "reason"),
    [
        ("stop", "completed", None),
        ("tool_calls", "completed", None),
        (None, "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_status(finish_reason: str | None, status: str, reason: str | None) -> None:
    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":'}}]
    response = translate(completion({"content": "Partial", "tool_calls": calls}, finish_reason))
    assert response.status == status
    assert (response.incomplete_details.reason if response.incomplete_details else None) == reason
    assert response.completed_at is None if status == "incomplete" else response.completed_at is not None
    # only the last item, the one cut short, is incomplete
    assert [item.status for item in response.output] == ["completed", "incomplete" if reason else "completed"]


def test_refusal_empty_reply_and_tool_calls_without_text() -> None:
    refused = translate(completion({"content": None, "refusal": "I can't help with that."}))
    assert [part.to_dict() for part in refused.output[0].content] == [  # type: ignore[union-attr]
        {"type": "refusal", "refusal": "I can't help with that."}
    ]
    both = translate(completion({"content": "Well", "refusal": "no"}))
    assert [part.type for part in both.output[0].content] == ["output_text", "refusal"]  # type: ignore[union-attr]

    empty = translate(completion({"content": None}))
    assert [item.type for item in empty.output] == ["message"] and empty.output_text == ""

    calls = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}, "junk", {"id": "x"}]
    only_calls = translate(completion({"content": "", "tool_calls": calls}, "tool_calls"))
    assert [item.type for item in only_calls.output] == ["function_call"]


def test_tool_call_without_id_gets_one() -> None:
    calls = [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]
    item = translate(completion({"tool_calls": calls}, "tool_calls")).output[0]
    assert item.type == "function_call" and item.call_id.startswith("call_")


def test_only_the_first_choice_and_missing_choices() -> None:
    chat = completion({"content": "first"})
    chat["choices"].append({"index": 1, "message": {"role": "assistant", "content": "second"}, "finish_reason": "stop"})
    assert translate(chat).output_text == "first"
    for broken in ({"choices": []}, {"choices": "x"}, {"choices": [{"message": "x"}]}, {}):
        response = translate(broken)
        assert response.status == "completed" and response.output_text == ""


def test_logprobs_become_the_text_parts() -> None:
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "bytes": [72, 105],
                "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}],
            },
            {"token": "!", "logprob": -0.5, "bytes": None, "top_logprobs": []},
        ]
    }
    chat = completion({"content": "Hi!"})
    chat["choices"][0]["logprobs"] = logprobs
    part = translate(chat).output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text" and part.logprobs is not None
    assert [entry.to_dict() for entry in part.logprobs] == [
        {
            "token": "Hi",
            "bytes": [72, 105],
            "logprob": -0.1,
            "top_logprobs": [{"token": "Hi", "bytes": [72, 105], "logprob": -0.1}],
        },
        {"token": "!", "bytes": [33], "logprob": -0.5, "top_logprobs": []},
    ]


def test_created_at_when_the_completion_has_none() -> None:
    chat = completion({"content": "x"})
    del chat["created"]
    assert translate(chat).created_at > 1_700_000_000
    assert translate(chat, created_at=42).created_at == 42


# ---------------------------------------------------------------------------------------- the SDK, offline


@pytest.fixture
def sdk() -> Iterator[Callable[[Handler], openai.OpenAI]]:
    clients: list[openai.OpenAI] = []

    def make(handler: Handler) -> openai.OpenAI:
        clients.append(offline_client(handler))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_sdk_create(sdk: Callable[[Handler], openai.OpenAI]) -> None:
    sample = load("completion_tool_calls.json")

    def handler(chat: dict[str, Any], original: dict[str, Any]) -> httpx.Response:
        assert chat["tools"][0] == {
            "type": "function",
            "function": {"name": "get_weather", "parameters": {"type": "object"}},
        }
        assert chat["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
        ]
        assert "stream" not in chat
        return httpx.Response(
            200, content=orjson.dumps(chat_completion_to_response(sample, original, model=original["model"]))
        )

    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": None}
    response = sdk(handler).responses.create(
        model=MODEL, instructions="Be brief.", input="Weather in Paris?", tools=[tool], metadata={"a": "b"}
    )
    assert response.output_text == "I'll check the weather and take a screenshot."
    assert [item.type for item in response.output] == ["message", "function_call", "function_call"]
    assert response.metadata == {"a": "b"} and response.usage is not None and response.usage.total_tokens == 2261


def test_sdk_parse_reads_structured_output(sdk: Callable[[Handler], openai.OpenAI]) -> None:
    """`responses.parse()` sends a json_schema format and parses the output text with it."""
    from pydantic import BaseModel

    class City(BaseModel):
        name: str

    def handler(chat: dict[str, Any], original: dict[str, Any]) -> httpx.Response:
        assert (
            chat["response_format"]["type"] == "json_schema"
            and chat["response_format"]["json_schema"]["name"] == "City"
        )
        body = chat_completion_to_response(completion({"content": '{"name": "Paris"}'}), original, model=MODEL)
        return httpx.Response(200, content=orjson.dumps(body))

    parsed = sdk(handler).responses.parse(model=MODEL, input="A city?", text_format=City)
    assert parsed.output_parsed == City(name="Paris")


@pytest.mark.parametrize(
    ("error", "exception"),
    [
        (InvalidRequest("Invalid value for 'tools[0].type': no", param="tools[0].type"), openai.BadRequestError),
        (AuthenticationFailed("Invalid API key"), openai.AuthenticationError),
        (NotFound("no such model"), openai.NotFoundError),
        (UpstreamStatusError(429, "slow down"), openai.RateLimitError),
        (ServiceUnavailable("draining"), openai.InternalServerError),
    ],
)
def test_sdk_errors(sdk: Callable[[Handler], openai.OpenAI], error: GatewayError, exception: type[Exception]) -> None:
    """The Responses API's errors are OpenAI's usual error JSON: `error_body` serves as it is."""
    client = sdk(lambda chat, original: httpx.Response(error.http_status, content=error_body(error)))
    with pytest.raises(exception) as caught:
        client.responses.create(model=MODEL, input="hi")
    assert isinstance(caught.value, openai.APIStatusError)
    assert caught.value.body == orjson.loads(error_body(error))["error"]
    assert (caught.value.code, caught.value.param) == (error.code, error.param)
