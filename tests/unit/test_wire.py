from __future__ import annotations

import pytest

from providers.errors import InvalidRequest
from providers.wire import validate_request

MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "x"}, "messages", "missing_required_parameter"),
        ({"messages": MSG}, "model", "missing_required_parameter"),
        ({"model": "x", "messages": []}, "messages", "invalid_value"),
        ({"model": "x", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "invalid_value"),
        ({"model": "x", "messages": MSG, "temperature": 3}, "temperature", "invalid_value"),
        ({"model": "x", "messages": MSG, "n": 0}, "n", "invalid_value"),
        ({"model": "x", "messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
        (
            {"model": "x", "messages": MSG, "tools": [{"type": "function", "function": {}}]},
            "tools[0].function.name",
            "missing_required_parameter",
        ),
        ({"model": "x", "messages": MSG, "response_format": {"type": "xml"}}, "response_format.type", "invalid_value"),
        ({"model": "x", "messages": MSG, "stream": "yes"}, "stream", "invalid_value"),
    ],
)
def test_invalid_chat_fields_are_named(body: dict, param: str, code: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_request("chat", body)
    assert info.value.param == param
    assert info.value.code == code
    assert param in info.value.message


def test_unknown_fields_are_allowed() -> None:
    validate_request("chat", {"model": "x", "messages": MSG, "seed": 3, "vendor_extension": {"a": 1}})


def test_embeddings_and_completions() -> None:
    validate_request("embeddings", {"model": "e", "input": ["a", "b"], "encoding_format": "base64"})
    validate_request("embeddings", {"model": "e", "input": [[1, 2], [3]]})
    with pytest.raises(InvalidRequest) as info:
        validate_request("embeddings", {"model": "e", "input": "a", "encoding_format": "hex"})
    assert info.value.param == "encoding_format"
    validate_request("completions", {"model": "c", "prompt": "hello", "max_tokens": 5})
    with pytest.raises(InvalidRequest):
        validate_request("completions", {"model": "c"})


def test_body_must_be_object() -> None:
    with pytest.raises(InvalidRequest):
        validate_request("chat", [1, 2])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "x", "messages": ["hi"]}, "messages[0]"),
        ({"model": "x", "messages": MSG, "stream_options": 1}, "stream_options"),
        ({"model": "x", "messages": MSG, "tools": [3]}, "tools[0]"),
    ],
)
def test_errors_do_not_name_the_gateways_classes(body: dict, param: str) -> None:
    """A non-object where an object belongs says so, without a Python class name the client never sent."""
    with pytest.raises(InvalidRequest) as info:
        validate_request("chat", body)
    assert info.value.param == param
    assert info.value.message == f"Invalid value for '{param}': Input should be a valid dictionary."


def test_nested_fields_are_checked_and_unknown_nested_fields_pass() -> None:
    tool = {"type": "function", "function": {"name": "get_weather", "strict": True, "x-vendor": 1}}
    message = {"role": "assistant", "content": None, "tool_calls": [], "audio": {"id": "a"}}
    validate_request("chat", {"model": "x", "messages": [message], "tools": [tool], "stream_options": {"x": 1}})
    with pytest.raises(InvalidRequest) as info:
        validate_request("chat", {"model": "x", "messages": MSG, "stream_options": {"include_usage": "yes"}})
    assert info.value.param == "stream_options.include_usage"
    with pytest.raises(InvalidRequest) as info:
        validate_request("chat", {"model": "x", "messages": MSG, "tools": [{"function": {"name": "a b"}}]})
    assert info.value.param == "tools[0].function.name"
