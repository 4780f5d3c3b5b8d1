"""OpenAI Responses create bodies → chat completion requests: every mapping, and every 400 with its `param`.

Each translated request is also checked against the gateway's own chat schema (`providers.wire`), which the
wire runs before routing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from providers.errors import InvalidRequest
from providers.responses_front import responses_request_to_openai
from providers.wire import validate_request

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "responses_front"
MODEL = "gpt-4.1"
TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "input": "hi", **fields}


def translate(request: dict[str, Any]) -> dict[str, Any]:
    out = responses_request_to_openai(request)
    validate_request("chat", out)
    return out


def rejected(request: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        responses_request_to_openai(request)
    assert caught.value.http_status == 400
    return caught.value


def test_conversation_fixture() -> None:
    sample = orjson.loads((FIXTURES / "request_conversation.json").read_bytes())
    original = copy.deepcopy(sample["responses"])
    assert translate(sample["responses"]) == sample["chat"]
    assert sample["responses"] == original  # the client's body is not modified


def test_string_input_is_one_user_message_and_defaults_add_nothing() -> None:
    assert translate(body()) == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    assert translate(body(stream=False, tools=[], text={"format": {"type": "text"}})) == translate(body())


def test_instructions_lead_and_developer_stays_developer() -> None:
    out = translate(body(instructions="Be terse.", input=[{"role": "developer", "content": "No emoji."}]))
    assert out["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": "No emoji."},
    ]
    assert translate(body(instructions="", input="x"))["messages"] == [{"role": "user", "content": "x"}]


def test_message_items_with_and_without_type() -> None:
    items = [
        {"role": "system", "content": "sys"},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one part"}]},
        {"role": "assistant", "content": "plain"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    ]
    assert translate(body(input=items))["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "one part"},
        {"role": "assistant", "content": "plain"},
        {"role": "assistant", "content": "No."},
    ]


def test_function_calls_merge_and_text_after_calls_joins_them() -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    items = [
        {"role": "user", "content": "go"},
        call,
        {**call, "call_id": "c2"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Calling."}]},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
        {**call, "call_id": "c3"},  # after tool results: a new assistant message
    ]
    messages = translate(body(input=items))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert messages[1]["content"] == "Calling."
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert messages[1]["tool_calls"][0] == {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    assert messages[4] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{**messages[1]["tool_calls"][0], "id": "c3"}],
    }


def test_reasoning_items_are_skipped() -> None:
    items = [
        {"role": "user", "content": "q"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}]},
        {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAAA..."},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
    ]
    messages = translate(body(input=items))["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_output_tokens": 64}, {"max_completion_tokens": 64}),
        ({"temperature": 0.5, "top_p": 0.3, "user": "u"}, {"temperature": 0.5, "top_p": 0.3, "user": "u"}),
        ({"top_logprobs": 3}, {"logprobs": True, "top_logprobs": 3}),
        ({"include": ["message.output_text.logprobs"]}, {"logprobs": True}),
        ({"include": ["reasoning.encrypted_content"]}, {}),
        ({"text": {"format": {"type": "json_object"}}}, {"response_format": {"type": "json_object"}}),
        ({"text": {"verbosity": "high"}}, {"verbosity": "high"}),
        ({"reasoning": {"effort": "high", "summary": "detailed"}}, {"reasoning_effort": "high"}),
        ({"reasoning": {"summary": "auto"}}, {}),
        ({"stream": True}, {"stream": True, "stream_options": {"include_usage": True}}),
        ({"parallel_tool_calls": False}, {}),  # without tools chat rejects it
        ({"tool_choice": "none"}, {}),
        ({"tool_choice": "auto"}, {}),
        ({"n": 1, "background": False, "previous_response_id": None, "conversation": None, "prompt": None}, {}),
        (
            {
                "metadata": {"a": "b"},
                "store": True,
                "truncation": "auto",
                "service_tier": "flex",
                "prompt_cache_key": "k",
            },
            {},
        ),
        ({"safety_identifier": "s", "max_tool_calls": 3, "stream_options": {"include_obfuscation": False}}, {}),
    ],
)
def test_parameters(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    out = translate(body(**fields))
    assert {k: v for k, v in out.items() if k not in ("model", "messages")} == expected


def test_json_schema_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True, "description": "A thing"}
    assert translate(body(text={"format": fmt}))["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "description": "A thing", "strict": True},
    }
    minimal = {"type": "json_schema", "name": "thing", "schema": schema}
    assert translate(body(text={"format": minimal}))["response_format"]["json_schema"] == {
        "name": "thing",
        "schema": schema,
    }


def test_tools_and_tool_choice() -> None:
    tool = {**TOOL, "description": "d", "strict": False, "defer_loading": False}
    out = translate(
        body(tools=[tool], tool_choice={"type": "function", "name": "get_weather"}, parallel_tool_calls=True)
    )
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "d", "parameters": TOOL["parameters"], "strict": False},
        }
    ]
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out["parallel_tool_calls"] is True
    bare = translate(body(tools=[{"type": "function", "name": "f"}], tool_choice="required"))
    assert bare["tools"] == [{"type": "function", "function": {"name": "f"}}] and bare["tool_choice"] == "required"


def test_image_detail_and_tool_output_parts() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://x.test/a.png", "detail": "high"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": []},
    ]
    messages = translate(body(input=items))["messages"]
    assert messages[0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "high"}}
    ]
    assert messages[2] == {"role": "tool", "tool_call_id": "c", "content": ""}


BAD_ITEMS: list[tuple[Any, str, str | None]] = [
    ({"type": "item_reference", "id": "msg_1"}, "input[1].type", "unsupported_value"),
    ({"type": "web_search_call", "id": "ws_1", "status": "completed"}, "input[1].type", "unsupported_value"),
    ({"type": "file_search_call", "id": "fs_1"}, "input[1].type", "unsupported_value"),
    ({"type": "custom_tool_call", "call_id": "c", "name": "x", "input": ""}, "input[1].type", "unsupported_value"),
    ({"content": "no role or type"}, "input[1].type", "missing_required_parameter"),
    ({"role": "tool", "content": "x"}, "input[1].role", "invalid_value"),
    ({"role": "user"}, "input[1].content", "missing_required_parameter"),
    (
        {"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]},
        "input[1].content[0].type",
        "unsupported_value",
    ),
    ({"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}, "input[1].content[0].type", None),
    ({"role": "user", "content": [{"text": "untyped"}]}, "input[1].content[0].type", "missing_required_parameter"),
    ({"role": "user", "content": [{"type": "output_text", "text": "x"}]}, "input[1].content[0].type", None),
    (
        {"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]},
        "input[1].content[0].type",
        None,
    ),
    (
        {"role": "assistant", "content": [{"type": "input_image", "image_url": "https://x"}]},
        "input[1].content[0].type",
        None,
    ),
    ({"role": "user", "content": [{"type": "input_text"}]}, "input[1].content[0].text", "missing_required_parameter"),
    (
        {"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]},
        "input[1].content[0].file_id",
        "unsupported_value",
    ),
    ({"role": "user", "content": [{"type": "input_image", "detail": "auto"}]}, "input[1].content[0].image_url", None),
    (
        {"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x"}]},
        "input[1].content[0].image_url",
        None,
    ),
    ({"type": "function_call", "name": "f", "arguments": "{}"}, "input[1].call_id", "missing_required_parameter"),
    ({"type": "function_call", "call_id": "c", "name": "", "arguments": "{}"}, "input[1].name", "invalid_value"),
    ({"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}, "input[1].arguments", "invalid_value"),
    ({"type": "function_call_output", "output": "x"}, "input[1].call_id", "missing_required_parameter"),
    (
        {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_image", "image_url": "https://x"}]},
        "input[1].output[0].type",
        None,
    ),
    ("not an object", "input[1]", "invalid_value"),
]


@pytest.mark.parametrize(("item", "param", "code"), BAD_ITEMS)
def test_bad_input_items_name_the_param(item: Any, param: str, code: str | None) -> None:
    error = rejected(body(input=[{"role": "user", "content": "ok"}, item]))
    assert error.param == param
    assert param in error.message
    if code is not None:
        assert error.code == code


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "unsupported_parameter"),
        ({"conversation": "conv_1"}, "conversation", "unsupported_parameter"),
        ({"conversation": {"id": "conv_1"}}, "conversation", "unsupported_parameter"),
        ({"prompt": {"id": "pmpt_1", "version": "2"}}, "prompt", "unsupported_parameter"),
        ({"background": True}, "background", "unsupported_parameter"),
        ({"n": 2}, "n", "unsupported_parameter"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [TOOL, {"type": "file_search", "vector_store_ids": []}]}, "tools[1].type", "unsupported_value"),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [{"type": "custom", "name": "x"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type", "unsupported_value"),
        (
            {"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]},
            "tools[0].type",
            "unsupported_value",
        ),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [{"name": "untyped"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [{"type": "function"}]}, "tools[0].name", "missing_required_parameter"),
        ({"tools": [{"type": "function", "name": "get weather"}]}, "tools[0].name", "invalid_value"),
        ({"tools": [{"type": "function", "name": "f" * 65}]}, "tools[0].name", "invalid_value"),
        ({"tools": [{"type": "function", "name": "f", "parameters": "x"}]}, "tools[0].parameters", "invalid_value"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}},
            "tool_choice.type",
            None,
        ),
        ({"tools": [TOOL], "tool_choice": {"type": "web_search_preview"}}, "tool_choice.type", None),
        ({"tools": [TOOL], "tool_choice": {"type": "function"}}, "tool_choice.name", "missing_required_parameter"),
        ({"tools": [TOOL], "tool_choice": "any"}, "tool_choice", "invalid_value"),
        ({"tool_choice": "required"}, "tool_choice", "invalid_value"),
        ({"tool_choice": {"type": "function", "name": "f"}}, "tool_choice", "invalid_value"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", "missing_required_parameter"),
        (
            {"text": {"format": {"type": "json_schema", "name": "x"}}},
            "text.format.schema",
            "missing_required_parameter",
        ),
        ({"text": {"format": {"type": "grammar"}}}, "text.format.type", "invalid_value"),
        ({"text": {"verbosity": "loud"}}, "text.verbosity", "invalid_value"),
        ({"max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
        ({"temperature": 3}, "temperature", "invalid_value"),
        ({"top_p": 1.5}, "top_p", "invalid_value"),
        ({"top_logprobs": 21}, "top_logprobs", "invalid_value"),
        ({"stream": "yes"}, "stream", "invalid_value"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "invalid_value"),
        ({"input": 42}, "input", "invalid_value"),
        ({"input": []}, "input", "invalid_value"),
        ({"model": ""}, "model", "invalid_value"),
    ],
)
def test_bad_fields_name_the_param(fields: dict[str, Any], param: str, code: str | None) -> None:
    error = rejected(body(**fields))
    assert error.param == param
    if code is not None:
        assert error.code == code


def test_missing_model_and_input() -> None:
    assert rejected({"input": "hi"}).param == "model"
    error = rejected({"model": MODEL})
    assert (error.param, error.code, error.message) == (
        "input",
        "missing_required_parameter",
        "Missing required parameter: 'input'.",
    )


@pytest.mark.parametrize("value", [None, [], "text", 3])
def test_body_must_be_an_object(value: Any) -> None:
    assert rejected(value).param is None


def test_stateless_message_says_what_to_do() -> None:
    error = rejected(body(previous_response_id="resp_1"))
    assert "stateless" in error.message and "input" in error.message
    assert error.to_dict()["type"] == "invalid_request_error"
