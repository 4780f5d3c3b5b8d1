"""Anthropic Messages request → OpenAI chat completion request (https://docs.anthropic.com/en/api/messages). Pure.

The inverse of `providers.anthropic.request`: the gateway accepts `POST /v1/messages` and routes the
translated body like any chat request. Where the two formats differ, this module decides:

- `system`, a string or text blocks (joined by a blank line), becomes one leading `system` message.
- A user turn's `tool_result` blocks become `tool` messages, in order, before one `user` message with the
  turn's other blocks: OpenAI wants tool results right after the assistant's calls. A result's content is
  flattened to text (text blocks joined by newlines); `is_error` prefixes it with `Error: `. Tool messages
  carry text only, so images and documents inside a result move to that following user message, and the
  result's text says so.
- A user message whose content is a single text block is sent as a plain string, otherwise as parts.
- Assistant text blocks are concatenated into `content` and `tool_use` blocks become `tool_calls` (the
  `input` dumped as the JSON `arguments`). `thinking` and `redacted_thinking` blocks are dropped, like the
  `thinking` field. A trailing assistant turn (Anthropic's prefill) is passed on as an assistant message:
  whether the model continues it depends on the backend.
- `image` blocks: a base64 source becomes a data URL, a url source the URL. `document` blocks: a base64 PDF
  becomes a `file` part, a plain-text source a text part; other sources are rejected.
- `tool_choice`: auto→auto, any→required, tool→the named function, none→none;
  `disable_parallel_tool_use: true` → `parallel_tool_calls: false`. Server tools (a tool `type` other than
  `custom`) are rejected: the gateway cannot run them.
- `output_config.format` (a JSON schema) → `response_format: json_schema`.
- `stream: true` also asks for `stream_options.include_usage`: Anthropic's stream ends with the usage.
- Dropped, having no OpenAI equivalent: `thinking`, `top_k`, `cache_control` (wherever it appears),
  `service_tier`, `speed`, `inference_geo`, `container`, `mcp_servers`, `context_management`,
  `output_config.effort`, `metadata` other than `user_id`, `citations`, and tool fields other than `name`,
  `description` and `input_schema` (`strict`, `input_examples`...).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from providers.errors import InvalidRequest

_M = TypeVar("_M", bound=BaseModel)


def _as_blocks(value: Any) -> Any:
    return [{"type": "text", "text": value}] if isinstance(value, str) else value


Blocks = Annotated[list[dict[str, Any]], BeforeValidator(_as_blocks)]
"""A string is shorthand for one text block. Blocks are dicts here and validated by type one at a time,
so that an error names the block (`messages[1].content[0].source.media_type`)."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow")


class Turn(_Wire):
    role: Literal["user", "assistant"]
    content: Blocks


class TextBlock(_Wire):
    type: Literal["text"]
    text: str


class Base64Source(_Wire):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str = Field(min_length=1)


class UrlSource(_Wire):
    type: Literal["url"]
    url: str = Field(pattern=r"^https?://")


class DocumentSource(_Wire):
    type: Literal["base64", "text"]
    media_type: str
    data: str


class ToolUseBlock(_Wire):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    input: dict[str, Any]


class ToolResultBlock(_Wire):
    tool_use_id: str = Field(min_length=1)
    content: Blocks = []
    is_error: bool = False


class Tool(_Wire):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any]


class ToolChoice(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool = False


class Metadata(_Wire):
    user_id: str | None = None


class OutputFormat(_Wire):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Wire):
    format: OutputFormat | None = None


class MessagesRequest(_Wire):
    model: str = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    messages: list[Turn] = Field(min_length=1)
    system: Annotated[list[TextBlock], BeforeValidator(_as_blocks)] = []
    stop_sequences: list[str] = []
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool = False
    tools: list[dict[str, Any]] = []
    tool_choice: ToolChoice | None = None
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None


def messages_request_to_openai(body: dict[str, Any]) -> dict[str, Any]:
    """Validate an Anthropic Messages request and translate it into an OpenAI chat completion request.

    Raises `InvalidRequest` whose `param` names the offending field, e.g. `messages[1].content[0].type`.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    request = _parse(MessagesRequest, body, "")
    messages: list[dict[str, Any]] = []
    system = "\n\n".join(block.text for block in request.system if block.text)
    if system:
        messages.append({"role": "system", "content": system})
    for index, turn in enumerate(request.messages):
        where = f"messages[{index}]"
        if turn.role == "user":
            messages.extend(_user_messages(turn.content, where))
        else:
            messages.extend(_assistant_messages(turn.content, where))
    out: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    if request.stop_sequences:
        out["stop"] = request.stop_sequences
    if request.temperature is not None:
        out["temperature"] = request.temperature
    if request.top_p is not None:
        out["top_p"] = request.top_p
    if request.tools:
        out["tools"] = [_tool(tool, f"tools[{index}]") for index, tool in enumerate(request.tools)]
    out.update(_tool_choice(request.tool_choice, has_tools=bool(request.tools)))
    if request.metadata is not None and request.metadata.user_id:
        out["user"] = request.metadata.user_id
    if request.output_config is not None and request.output_config.format is not None:
        schema = request.output_config.format.schema_
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    if request.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _parse(model: type[_M], data: Any, where: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        param = _path(where, first["loc"])
        raise InvalidRequest(f"{param}: {first['msg']}" if param else first["msg"], param=param or None) from None


def _invalid(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def _path(where: str, loc: tuple[int | str, ...]) -> str:
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _block_type(block: dict[str, Any], where: str, allowed: frozenset[str]) -> str:
    kind = block.get("type")
    if not isinstance(kind, str):
        raise _invalid(f"{where}.type", "Field required")
    if kind not in allowed:
        expected = ", ".join(sorted(allowed))
        raise _invalid(f"{where}.type", f"Block type {kind!r} is not supported here (expected one of: {expected}).")
    return kind


_USER_BLOCKS = frozenset({"text", "image", "document", "tool_result"})
_ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
_RESULT_BLOCKS = frozenset({"text", "image", "document"})
_ATTACHED = "(attachments from this tool result follow in the next user message)"


def _user_messages(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        param = f"{where}.content[{index}]"
        if _block_type(block, param, _USER_BLOCKS) == "tool_result":
            message, attachments = _tool_result(block, param)
            tool_messages.append(message)
            parts.extend(attachments)
        else:
            part = _part(block, param)
            if part is not None:
                parts.append(part)
    if not parts:
        return tool_messages
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tool_messages, {"role": "user", "content": parts[0]["text"]}]
    return [*tool_messages, {"role": "user", "content": parts}]


def _part(block: dict[str, Any], where: str) -> dict[str, Any] | None:
    """A text, image or document block as an OpenAI content part (None for empty text)."""
    kind = block["type"]
    if kind == "text":
        text = _parse(TextBlock, block, where).text
        return {"type": "text", "text": text} if text else None
    source = block.get("source")
    if not isinstance(source, dict):
        raise _invalid(f"{where}.source", "Field required")
    if kind == "image":
        if source.get("type") == "url":
            url = _parse(UrlSource, source, f"{where}.source").url
        elif source.get("type") == "base64":
            image = _parse(Base64Source, source, f"{where}.source")
            url = f"data:{image.media_type};base64,{image.data}"
        else:
            raise _invalid(f"{where}.source.type", "Image sources must be base64 or url.")
        return {"type": "image_url", "image_url": {"url": url}}
    document = _parse(DocumentSource, source, f"{where}.source")
    if document.type == "text":
        return {"type": "text", "text": document.data} if document.data else None
    if document.media_type != "application/pdf":
        raise _invalid(f"{where}.source.media_type", "Base64 documents must be application/pdf.")
    title = block.get("title")
    filename = title if isinstance(title, str) and title else "document.pdf"
    return {"type": "file", "file": {"filename": filename, "file_data": f"data:application/pdf;base64,{document.data}"}}


def _tool_result(block: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = _parse(ToolResultBlock, block, where)
    texts: list[str] = []
    attachments: list[dict[str, Any]] = []
    for index, inner in enumerate(result.content):
        param = f"{where}.content[{index}]"
        _block_type(inner, param, _RESULT_BLOCKS)
        part = _part(inner, param)
        if part is None:
            continue
        if part["type"] == "text":
            texts.append(part["text"])
        else:
            attachments.append(part)
    if attachments:
        texts.append(_ATTACHED)
    text = "\n".join(texts)
    if result.is_error:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": result.tool_use_id, "content": text}, attachments


def _assistant_messages(blocks: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        param = f"{where}.content[{index}]"
        kind = _block_type(block, param, _ASSISTANT_BLOCKS)
        if kind == "text":
            texts.append(_parse(TextBlock, block, param).text)
        elif kind == "tool_use":
            use = _parse(ToolUseBlock, block, param)
            arguments = orjson.dumps(use.input).decode()
            calls.append({"id": use.id, "type": "function", "function": {"name": use.name, "arguments": arguments}})
    text = "".join(texts)
    if not text and not calls:
        return []  # only thinking blocks: nothing OpenAI can take
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _tool(raw: dict[str, Any], where: str) -> dict[str, Any]:
    kind = raw.get("type")
    if kind not in (None, "custom"):
        raise _invalid(f"{where}.type", f"Server tool {kind!r} is not supported by this gateway, only custom tools.")
    tool = _parse(Tool, raw, where)
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.input_schema
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice | None, *, has_tools: bool) -> dict[str, Any]:
    if choice is None:
        return {}
    if not has_tools:
        if choice.type == "none":
            return {}
        raise _invalid("tool_choice", "tool_choice may only be specified while providing tools.")
    out: dict[str, Any]
    if choice.type == "tool":
        if not choice.name:
            raise _invalid("tool_choice.name", "Field required")
        out = {"tool_choice": {"type": "function", "function": {"name": choice.name}}}
    else:
        out = {"tool_choice": {"auto": "auto", "any": "required", "none": "none"}[choice.type]}
    if choice.disable_parallel_tool_use and choice.type != "none":
        out["parallel_tool_calls"] = False
    return out
