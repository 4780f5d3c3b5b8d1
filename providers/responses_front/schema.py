"""The wire schema of a Responses create body (https://platform.openai.com/docs/api-reference/responses/create).

Validation only, at the edge: fields the gateway maps are declared, the rest is allowed and ignored (the
SDK sends `metadata`, `store`, `include`, `truncation`... and new fields appear often). Items of `input`
and `tools` stay dicts here and are validated one at a time by type, so that an error names the item
(`input[2].content[0].image_url`). Errors read like OpenAI's: `Missing required parameter: 'model'.`,
`Invalid value for 'tools[0].type': ...`
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from providers.errors import InvalidRequest

_M = TypeVar("_M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class InputMessage(_Wire):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[dict[str, Any]]


class TextPart(_Wire):
    type: Literal["input_text", "output_text"]
    text: str


class RefusalPart(_Wire):
    type: Literal["refusal"]
    refusal: str


class ImagePart(_Wire):
    type: Literal["input_image"]
    image_url: Annotated[str, Field(pattern=r"^(https?://|data:)")] | None = None
    file_id: str | None = None
    detail: str | None = None


class FunctionCallItem(_Wire):
    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    arguments: str


class FunctionCallOutputItem(_Wire):
    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[dict[str, Any]]


class FunctionTool(_Wire):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_.-]+$")]
    """As chat's (`providers.wire`), checked here so that an error names the Responses field."""
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None


class NamedToolChoice(_Wire):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1)]


class TextFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    name: Annotated[str, Field(min_length=1)] | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: StrictBool | None = None


class TextConfig(_Wire):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(_Wire):
    effort: str | None = None
    summary: str | None = None


class ResponsesRequest(_Wire):
    model: Annotated[str, Field(min_length=1)]
    input: str | list[dict[str, Any]]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: StrictBool | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    include: list[str] | None = None
    user: str | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    stream: StrictBool | None = None
    n: int | None = None
    background: StrictBool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    prompt: dict[str, Any] | None = None


def parse(model: type[_M], data: Any, where: str) -> _M:
    """`model` validated from `data`; `InvalidRequest` naming the offending field under `where`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # A union reports one error per alternative: the one that got deepest is the one the client meant.
        error = max(exc.errors(include_url=False), key=lambda e: len(path("", e["loc"])))
        param = path(where, error["loc"])
        if error["type"] == "missing":
            raise missing(param) from None
        raise invalid(param, f"{error['msg']}.") from None


def invalid(param: str, detail: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': {detail}", param=param, code=code)


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none"})


def path(where: str, loc: tuple[int | str, ...]) -> str:
    out = where
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _FIELD.match(part) and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
        # else a union alternative's type name (`list[dict[str,any]]`), not a field
    return out
