"""OpenAI chat request → Anthropic Messages request (https://docs.anthropic.com/en/api/messages). Pure.

Where the two formats differ, this module decides:

- `system` and `developer` messages, wherever they stand, are joined (blank line between) into the
  top-level `system`; Anthropic has no system role inside `messages`.
- Anthropic wants user and assistant turns to alternate: consecutive messages of one role are merged
  into one turn, and `tool` messages become `tool_result` blocks of a user turn (merged with the
  neighbouring tool results and any user message that follows).
- JSON mode: the Messages API has no `response_format`, so `json_object` and `json_schema` append an
  instruction to `system` (with the schema itself for `json_schema`). The model is asked, not
  constrained: the reply is passed on unvalidated.
- `temperature` is clamped to Anthropic's 0..1 range; `max_tokens` is required upstream and defaults to
  the provider's `default_max_tokens`.
- Fields that would change the shape of the answer the client expects (`n` > 1, `logprobs`, audio)
  raise `InvalidRequest`; sampling hints Anthropic lacks (`seed`, penalties, `logit_bias`) are dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from providers.chat_translation import content_parts, data_url, plain_text, tool_call_arguments
from providers.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 4096
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_JSON_OBJECT = "Respond with one valid JSON object and nothing else: no prose, no Markdown code fences."
_JSON_SCHEMA = (
    "Respond with one valid JSON object and nothing else (no prose, no Markdown code fences) "
    "that conforms to this JSON Schema{name}:\n{schema}"
)


def request_to_anthropic(
    body: dict[str, Any], model: str, *, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """Translate a validated OpenAI chat request into a `/v1/messages` body for `model`."""
    _reject_unsupported(body)
    system, messages = _messages(body.get("messages") or [])
    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body, default_max_tokens)}
    instruction = _json_instruction(body.get("response_format"))
    if instruction:
        system.append(instruction)
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = messages
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(tool, index) for index, tool in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"), has_tools=bool(tools))
    if choice is not None:
        out["tool_choice"] = choice
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    temperature = body.get("temperature")
    if temperature is not None:
        out["temperature"] = min(temperature, 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream") is True:
        out["stream"] = True
    return out


def completion_request_to_chat(body: dict[str, Any]) -> dict[str, Any]:
    """A legacy `/v1/completions` request as a chat request with the prompt as the one user message."""
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise InvalidRequest("Anthropic deployments accept a single non-empty string prompt.", param="prompt")
    for param in ("suffix", "echo"):
        if body.get(param):
            raise InvalidRequest(f"'{param}' is not supported by Anthropic deployments.", param=param)
    best_of = body.get("best_of")
    if isinstance(best_of, int) and best_of > 1:
        raise InvalidRequest("'best_of' is not supported by Anthropic deployments.", param="best_of")
    chat = {k: v for k, v in body.items() if k not in {"prompt", "suffix", "echo", "best_of"}}
    chat["messages"] = [{"role": "user", "content": prompt}]
    return chat


def _reject_unsupported(body: dict[str, Any]) -> None:
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise InvalidRequest("Anthropic deployments return one choice: 'n' must be 1.", param="n")
    for param in ("logprobs", "top_logprobs", "audio"):
        if body.get(param):
            raise InvalidRequest(f"'{param}' is not supported by Anthropic deployments.", param=param)
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise InvalidRequest("Anthropic deployments only produce text.", param="modalities")


def _max_tokens(body: dict[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return default


def _messages(raw: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        role = message.get("role")
        if role in {"system", "developer"}:
            text = plain_text(message.get("content"), where)
            if text:
                system.append(text)
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), where)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            blocks = [_tool_result(message, where)]
        else:
            raise InvalidRequest(f"Message role {role!r} is not supported by Anthropic.", param=f"{where}.role")
        if not blocks:
            continue
        anthropic_role = "assistant" if role == "assistant" else "user"
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    if not turns:
        raise InvalidRequest("Anthropic needs at least one user or assistant message with content.", param="messages")
    return system, turns


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for index, part in content_parts(content):
        param = f"{where}.content[{index}]"
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            blocks.append(_image(url, param))
        elif kind == "file":
            blocks.append(_document(part.get("file"), param))
        else:
            raise InvalidRequest(f"Content part type {kind!r} is not supported by Anthropic.", param=param)
    return blocks


def _image(url: Any, param: str) -> dict[str, Any]:
    if not isinstance(url, str):
        raise InvalidRequest("image_url.url must be a string.", param=param)
    if url.startswith("data:"):
        media_type, data = data_url(url, param)
        if media_type not in _IMAGE_TYPES:
            raise InvalidRequest(f"Image type {media_type!r} is not supported by Anthropic.", param=param)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise InvalidRequest("image_url.url must be an http(s) URL or a base64 data URL.", param=param)


def _document(file: Any, param: str) -> dict[str, Any]:
    file_data = file.get("file_data") if isinstance(file, dict) else None
    if isinstance(file_data, str) and file_data.startswith("data:"):
        media_type, data = data_url(file_data, param)
        if media_type == "application/pdf":
            return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}
    raise InvalidRequest("Anthropic deployments accept files only as base64 PDF data URLs.", param=param)


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    text = plain_text(message.get("content"), where)
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for index, call in enumerate(message.get("tool_calls") or []):
        param = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if call.get("type", "function") != "function" or not isinstance(function, dict) or not call.get("id"):
            raise InvalidRequest("Tool calls need an id and a function.", param=param)
        arguments = tool_call_arguments(function, param)
        blocks.append({"type": "tool_use", "id": call["id"], "name": function.get("name"), "input": arguments})
    return blocks


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    tool_call_id = message.get("tool_call_id")
    if not tool_call_id:
        raise InvalidRequest("Tool messages need a tool_call_id.", param=f"{where}.tool_call_id")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_call_id}
    text = plain_text(message.get("content"), where)
    if text:
        block["content"] = text
    return block


def _tool(tool: dict[str, Any], index: int) -> dict[str, Any]:
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, dict):
        raise InvalidRequest("Only function tools are supported by Anthropic.", param=f"tools[{index}]")
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any, parallel: Any, *, has_tools: bool) -> dict[str, Any] | None:
    if not has_tools:
        if choice not in (None, "none"):
            raise InvalidRequest("tool_choice needs tools.", param="tool_choice")
        return None
    if choice is None:
        out: dict[str, Any] | None = None
    elif choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        out = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequest("tool_choice must be auto, none, required or a named function.", param="tool_choice")
    if parallel is False and (out is None or out["type"] != "none"):
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def _json_instruction(response_format: Any) -> str | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return _JSON_OBJECT
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        name = f" ({spec['name']})" if spec.get("name") else ""
        schema = orjson.dumps(spec.get("schema") or {"type": "object"}).decode()
        return _JSON_SCHEMA.format(name=name, schema=schema)
    return None
