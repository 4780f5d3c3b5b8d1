"""A Responses `input` → OpenAI chat `messages`. Pure.

- A string is one user message. A list holds items, each told apart by `type` (a message may omit it):
  `message` (roles user, system, developer, assistant), `function_call`, `function_call_output`,
  `reasoning`. Any other item (`item_reference`, `input_file` parts, built-in tool calls...) is a 400
  naming it: the gateway can neither fetch stored items nor run built-in tools.
- `developer` stays `developer`: OpenAI's chat API takes it, and the gateway's Anthropic and Gemini
  translators read it as `system`.
- Content parts: `input_text` (and `output_text`, what a replayed assistant message carries) → text,
  `input_image` with an `image_url` (a URL or a data URL) → an `image_url` part keeping `detail`; an
  image by `file_id` is a 400. System, developer and assistant content is flattened to one string (text
  parts joined by newlines; an assistant's `refusal` parts read as text), as is a user message with one
  text part; other user messages keep their parts.
- `function_call` items become `tool_calls` of an assistant message: consecutive calls share one, which
  is also the assistant message directly before them if there is one. An assistant message directly after
  calls, with no text of its own yet, takes the text (chat wants the `tool` results right after the calls).
- `function_call_output` → a `tool` message; an output given as parts must be text parts (joined by
  newlines): chat tool messages carry text only.
- `reasoning` items are skipped. Clients replay them (Codex sends every turn's reasoning back, with its
  `encrypted_content`), and the gateway never emits them, so they come from a model elsewhere: no chat
  backend can take them, an encrypted one cannot even be read, and rejecting them would break every such
  client for nothing the model needs to see. This is what other gateways in front of chat backends do.
"""

from __future__ import annotations

from typing import Any

from providers.responses_front.schema import (
    FunctionCallItem,
    FunctionCallOutputItem,
    ImagePart,
    InputMessage,
    RefusalPart,
    TextPart,
    invalid,
    missing,
    parse,
)

_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
_PARTS = {
    "user": ("input_text", "input_image"),
    "system": ("input_text",),
    "developer": ("input_text",),
    "assistant": ("output_text", "refusal", "input_text"),
}


def input_to_messages(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat messages for a Responses `input`; `InvalidRequest` names the offending item or part."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(value):
        where = f"input[{index}]"
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            _add_message(messages, parse(InputMessage, item, where), where)
        elif kind == "function_call":
            _add_call(messages, parse(FunctionCallItem, item, where))
        elif kind == "function_call_output":
            output = parse(FunctionCallOutputItem, item, where)
            content = output.output if isinstance(output.output, str) else _tool_text(output.output, where)
            messages.append({"role": "tool", "tool_call_id": output.call_id, "content": content})
        elif kind == "reasoning":
            continue  # see the module docstring
        elif kind is None:
            raise missing(f"{where}.type")
        else:
            supported = ", ".join(_ITEM_TYPES)
            raise invalid(
                f"{where}.type",
                f"Input item type {kind!r} is not supported by this gateway (supported: {supported}).",
                "unsupported_value",
            )
    return messages


def _add_message(messages: list[dict[str, Any]], message: InputMessage, where: str) -> None:
    parts = _parts(message, where)
    if message.role == "user":
        if len(parts) == 1 and parts[0]["type"] == "text":
            messages.append({"role": "user", "content": parts[0]["text"]})
        else:
            messages.append({"role": "user", "content": parts})
        return
    text = "\n".join(part["text"] for part in parts)
    if message.role != "assistant":
        messages.append({"role": message.role, "content": text})
        return
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant" and last.get("tool_calls") and not last.get("content"):
        last["content"] = text
    else:
        messages.append({"role": "assistant", "content": text})


def _parts(message: InputMessage, where: str) -> list[dict[str, Any]]:
    """The message's content as chat parts (text and image_url)."""
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}]
    allowed = _PARTS[message.role]
    parts: list[dict[str, Any]] = []
    for index, raw in enumerate(message.content):
        param = f"{where}.content[{index}]"
        kind = raw.get("type")
        if kind not in allowed:
            if kind is None:
                raise missing(f"{param}.type")
            expected = ", ".join(allowed)
            raise invalid(
                f"{param}.type",
                f"Content type {kind!r} is not supported in a {message.role} message by this gateway "
                f"(supported: {expected}).",
                "unsupported_value",
            )
        if kind == "refusal":
            parts.append({"type": "text", "text": parse(RefusalPart, raw, param).refusal})
        elif kind == "input_image":
            parts.append(_image(parse(ImagePart, raw, param), param))
        else:
            parts.append({"type": "text", "text": parse(TextPart, raw, param).text})
    return parts


def _image(image: ImagePart, param: str) -> dict[str, Any]:
    if image.image_url is None:
        if image.file_id is not None:
            raise invalid(
                f"{param}.file_id",
                "Images by file_id are not supported by this gateway; send an image_url or a data URL.",
                "unsupported_value",
            )
        raise missing(f"{param}.image_url")
    url: dict[str, Any] = {"url": image.image_url}
    if image.detail is not None:
        url["detail"] = image.detail
    return {"type": "image_url", "image_url": url}


def _add_call(messages: list[dict[str, Any]], call: FunctionCallItem) -> None:
    tool_call = {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(tool_call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})


def _tool_text(parts: list[dict[str, Any]], where: str) -> str:
    texts = []
    for index, raw in enumerate(parts):
        param = f"{where}.output[{index}]"
        if raw.get("type") != "input_text":
            raise invalid(
                f"{param}.type",
                f"Function call output type {raw.get('type')!r} is not supported by this gateway "
                "(supported: input_text).",
                "unsupported_value",
            )
        texts.append(parse(TextPart, raw, param).text)
    return "\n".join(texts)
