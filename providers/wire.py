"""OpenAI request schemas used to validate what clients send.

Validation only: the gateway forwards the client's own JSON (unknown fields included), so these
models allow extra fields and are never re-serialized.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter, ValidationError

from providers.errors import InvalidRequest


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Open):
    include_usage: StrictBool | None = None


class ChatMessage(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None


class FunctionDefinition(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_.-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Open):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedToolChoice(_Open):
    type: Literal["function"] = "function"
    function: dict[str, Any]


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]


Stop = str | Annotated[list[str], Field(max_length=4)] | None
Temperature = Annotated[float, Field(ge=0, le=2)] | None
Penalty = Annotated[float, Field(ge=-2, le=2)] | None


class _Sampling(_Open):
    model: Annotated[str, Field(min_length=1)]
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Temperature = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    stop: Stop = None
    presence_penalty: Penalty = None
    frequency_penalty: Penalty = None
    user: str | None = None


class ChatCompletionRequest(_Sampling):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None


TokenArray = Annotated[list[int], Field(min_length=1)]
Prompt = str | Annotated[list[str], Field(min_length=1)] | TokenArray | Annotated[list[TokenArray], Field(min_length=1)]


class CompletionRequest(_Sampling):
    prompt: Prompt


class EmbeddingRequest(_Open):
    model: Annotated[str, Field(min_length=1)]
    input: Prompt
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None


_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    "chat": TypeAdapter(ChatCompletionRequest),
    "completions": TypeAdapter(CompletionRequest),
    "embeddings": TypeAdapter(EmbeddingRequest),
}
_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def validate_request(kind: str, data: Any) -> None:
    """Raise `InvalidRequest` naming the first offending field; return nothing on success."""
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        _ADAPTERS[kind].validate_python(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> InvalidRequest:
    errors = exc.errors(include_input=False, include_url=False)
    # A union reports one error per alternative; the first names the field well enough.
    error = errors[0]
    param = _param(error["loc"])
    if error["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    return InvalidRequest(f"Invalid value for '{param}': {error['msg']}.", param=param, code="invalid_value")


def _param(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and _FIELD.match(part) and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
        else:
            break  # a union alternative's type name: the field path ends here
    return out
