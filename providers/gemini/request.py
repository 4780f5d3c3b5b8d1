"""OpenAI chat request → Gemini `GenerateContentRequest` (https://ai.google.dev/api/generate-content). Pure.

Where the two formats differ, this module decides:

- `system` and `developer` messages, wherever they stand, become the parts of `systemInstruction`.
- `assistant` turns have role `model`; their `tool_calls` become `functionCall` parts (arguments parsed
  into an object). A tool call that carries `extra_content.google.thought_signature` (as the responses of
  this provider do, like Google's own OpenAI endpoint) gets it back as the part's `thoughtSignature`:
  Gemini 3 models reject function calls sent back without their signature.
- `tool` messages become `functionResponse` parts of a `user` turn, named after the function of the tool
  call they answer. The response must be an object: content that is a JSON object is sent as is, any
  other content as `{"output": <text>}` (the key Google documents for a function's output).
- Consecutive turns of one role are merged: Gemini wants all responses to parallel calls in one turn.
- Images: `data:` URLs become `inlineData`; `http(s)` URLs become `fileData.fileUri` and Google fetches
  them (the gateway downloads nothing: no I/O, no server-side request forgery, no large bodies held),
  with `mimeType` guessed from the file extension when it tells. Audio (`input_audio`) and `file` parts
  with base64 `file_data` become `inlineData`; uploaded OpenAI `file_id`s mean nothing to Google and
  raise `InvalidRequest`.
- `response_format`: `json_object` sets `responseMimeType: application/json`; `json_schema` also sets
  `responseSchema`, translated by `providers.gemini.schema` (which lists the JSON Schema keywords dropped).
- `n` → `candidateCount`, `stop` → `stopSequences`, `max_completion_tokens`/`max_tokens` →
  `maxOutputTokens`, `temperature`, `top_p` → `topP`, `seed`, non-zero `presence_penalty`/
  `frequency_penalty` → `presencePenalty`/`frequencyPenalty`.
- Dropped: `logit_bias`, `user`, `parallel_tool_calls`, `reasoning_effort`, `service_tier`, `store`,
  `metadata`. Fields that change the shape of the answer the client expects (`logprobs`, audio output,
  legacy `functions`) raise `InvalidRequest` naming the field.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from providers.chat_translation import content_parts, data_url, plain_text, tool_call_arguments
from providers.errors import InvalidRequest
from providers.gemini.schema import schema_to_gemini

_AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mp3"}
_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def request_to_gemini(body: dict[str, Any]) -> dict[str, Any]:
    """Translate a validated OpenAI chat request into a `generateContent` body (the model goes in the URL)."""
    _reject_unsupported(body)
    system, contents = _Contents().build(body.get("messages") or [])
    out: dict[str, Any] = {}
    if system:
        out["systemInstruction"] = {"parts": [{"text": text} for text in system]}
    out["contents"] = contents
    tools = body.get("tools")
    if tools:
        out["tools"] = [{"functionDeclarations": [_function(tool, index) for index, tool in enumerate(tools)]}]
    tool_config = _tool_config(body.get("tool_choice"), has_tools=bool(tools))
    if tool_config is not None:
        out["toolConfig"] = tool_config
    generation = _generation_config(body)
    if generation:
        out["generationConfig"] = generation
    return out


def _reject_unsupported(body: dict[str, Any]) -> None:
    for param in ("logprobs", "top_logprobs", "audio", "functions", "function_call"):
        if body.get(param):
            raise InvalidRequest(f"'{param}' is not supported by Gemini deployments.", param=param)
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise InvalidRequest("Gemini deployments only produce text here.", param="modalities")


class _Contents:
    """Builds `contents` turn by turn, remembering which function each tool call id named."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.turns: list[dict[str, Any]] = []
        self.call_names: dict[str, str] = {}

    def build(self, messages: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
        for index, message in enumerate(messages):
            self._message(message, f"messages[{index}]")
        if not self.turns:
            raise InvalidRequest("Gemini needs at least one user or assistant message with content.", param="messages")
        return self.system, self.turns

    def _message(self, message: dict[str, Any], where: str) -> None:
        role = message.get("role")
        if role in {"system", "developer"}:
            text = plain_text(message.get("content"), where)
            if text:
                self.system.append(text)
            return
        if role == "user":
            self._add("user", _user_parts(message.get("content"), where))
        elif role == "assistant":
            self._add("model", self._assistant_parts(message, where))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            name = self.call_names.get(call_id) if isinstance(call_id, str) else None
            if name is None:
                raise InvalidRequest(
                    "Tool messages must answer a tool call of an earlier assistant message.",
                    param=f"{where}.tool_call_id",
                )
            self._add("user", [_function_response(name, message.get("content"), where)])
        elif role == "function" and message.get("name"):
            self._add("user", [_function_response(str(message["name"]), message.get("content"), where)])
        else:
            raise InvalidRequest(f"Message role {role!r} is not supported by Gemini.", param=f"{where}.role")

    def _add(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self.turns and self.turns[-1]["role"] == role:
            self.turns[-1]["parts"].extend(parts)
        else:
            self.turns.append({"role": role, "parts": parts})

    def _assistant_parts(self, message: dict[str, Any], where: str) -> list[dict[str, Any]]:
        text = plain_text(message.get("content"), where)
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        for index, call in enumerate(message.get("tool_calls") or []):
            param = f"{where}.tool_calls[{index}]"
            function = call.get("function") if isinstance(call, dict) else None
            if call.get("type", "function") != "function" or not isinstance(function, dict) or not function.get("name"):
                raise InvalidRequest("Tool calls need a function with a name.", param=param)
            args = tool_call_arguments(function, param)
            if isinstance(call.get("id"), str):
                self.call_names[call["id"]] = function["name"]
            part: dict[str, Any] = {"functionCall": {"name": function["name"], "args": args}}
            signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
            if isinstance(signature, str) and signature:
                part["thoughtSignature"] = signature
            parts.append(part)
        return parts


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for index, part in content_parts(content):
        param = f"{where}.content[{index}]"
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):  # Gemini rejects empty text parts
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_image(image.get("url") if isinstance(image, dict) else image, param))
        elif kind == "input_audio":
            parts.append(_audio(part.get("input_audio"), param))
        elif kind == "file":
            parts.append(_file(part.get("file"), param))
        else:
            raise InvalidRequest(f"Content part type {kind!r} is not supported by Gemini.", param=param)
    return parts


def _inline_data(url: str, param: str) -> dict[str, Any]:
    mime_type, data = data_url(url, param)
    return {"inlineData": {"mimeType": mime_type, "data": data}}


def _image(url: Any, param: str) -> dict[str, Any]:
    if not isinstance(url, str):
        raise InvalidRequest("image_url.url must be a string.", param=param)
    if url.startswith("data:"):
        return _inline_data(url, param)
    if url.startswith(("https://", "http://")):
        file_data: dict[str, Any] = {"fileUri": url}
        mime_type, _ = mimetypes.guess_type(url.split("?", 1)[0])
        if mime_type:
            file_data = {"mimeType": mime_type, **file_data}
        return {"fileData": file_data}
    raise InvalidRequest("image_url.url must be an http(s) URL or a base64 data URL.", param=param)


def _audio(audio: Any, param: str) -> dict[str, Any]:
    mime_type = _AUDIO_FORMATS.get(str(audio.get("format"))) if isinstance(audio, dict) else None
    if mime_type is None or not audio.get("data"):
        raise InvalidRequest("input_audio needs base64 data and a format of wav or mp3.", param=param)
    return {"inlineData": {"mimeType": mime_type, "data": audio["data"]}}


def _file(file: Any, param: str) -> dict[str, Any]:
    file_data = file.get("file_data") if isinstance(file, dict) else None
    if isinstance(file_data, str) and file_data.startswith("data:"):
        return _inline_data(file_data, param)
    raise InvalidRequest("Gemini deployments accept files only as base64 data URLs (file_data).", param=param)


def _function_response(name: str, content: Any, where: str) -> dict[str, Any]:
    text = plain_text(content, where)
    try:
        parsed = orjson.loads(text) if text.startswith("{") else None
    except orjson.JSONDecodeError:
        parsed = None
    response = parsed if isinstance(parsed, dict) else {"output": text}
    return {"functionResponse": {"name": name, "response": response}}


def _function(tool: dict[str, Any], index: int) -> dict[str, Any]:
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, dict):
        raise InvalidRequest("Only function tools are supported by Gemini.", param=f"tools[{index}]")
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    parameters = function.get("parameters")
    if isinstance(parameters, dict):
        schema = schema_to_gemini(parameters, param=f"tools[{index}].function.parameters")
        # Gemini rejects an OBJECT without properties ("should be non-empty for OBJECT type"): a function
        # without arguments simply has no `parameters`.
        if schema.get("type") != "OBJECT" or schema.get("properties"):
            out["parameters"] = schema
    return out


def _tool_config(choice: Any, *, has_tools: bool) -> dict[str, Any] | None:
    if not has_tools:
        if choice not in (None, "none"):
            raise InvalidRequest("tool_choice needs tools.", param="tool_choice")
        return None
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        return {"functionCallingConfig": {"mode": _CHOICE_MODES[choice]}}
    function = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(function, dict) and function.get("name"):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [function["name"]]}}
    raise InvalidRequest("tool_choice must be auto, none, required or a named function.", param="tool_choice")


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stop = body.get("stop")
    if stop:
        out["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        out["candidateCount"] = n
    for key in ("max_completion_tokens", "max_tokens"):
        if isinstance(body.get(key), int):
            out["maxOutputTokens"] = body[key]
            break
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("seed", "seed")):
        if body.get(ours) is not None:
            out[theirs] = body[ours]
    for ours, theirs in (("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty")):
        if body.get(ours):  # 0 is the default many SDKs send; some Gemini models reject penalties at all
            out[theirs] = body[ours]
    response_format = body.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind in {"json_object", "json_schema"}:
        out["responseMimeType"] = "application/json"
    if kind == "json_schema":
        spec = response_format.get("json_schema") if isinstance(response_format, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            out["responseSchema"] = schema_to_gemini(schema, param="response_format.json_schema.schema", ordered=True)
    return out
