"""OpenAI Responses create body → OpenAI chat completion request. Pure.

The gateway accepts `POST /v1/responses` and routes the translated body like any chat request; the
translation of `input` itself is `input_items`. Where the two APIs differ, this module decides:

- `instructions` becomes a leading `system` message.
- Function tools (`{"type": "function", "name", ...}`, flat) become chat's nested `function` tools. Every
  other tool type (web_search, file_search, mcp, custom...) is a 400: the gateway cannot run them. `strict`
  is passed on only when the client sets it: the Responses API reads an omitted `strict` as true and
  rewrites the schema to fit, which the gateway does not do, so an omitted `strict` stays chat's non-strict.
- `tool_choice`: auto, none and required as they are, `{"type": "function", "name"}` → the named function;
  any other choice (allowed_tools, built-in tools, mcp...) is a 400. Without tools, none and auto are
  dropped and the others are a 400, as chat rejects a tool choice without tools (so is
  `parallel_tool_calls`, which is dropped then).
- `max_output_tokens` → `max_completion_tokens`; `temperature`, `top_p` and `user` as they are;
  `top_logprobs` (or `include: ["message.output_text.logprobs"]`) also sets `logprobs`, which chat needs.
- `text.format` → `response_format` (`text` is the default and is dropped, `json_schema` nests its fields
  under `json_schema`), `text.verbosity` → `verbosity`, `reasoning.effort` → `reasoning_effort`.
- `stream: true` also asks for `stream_options.include_usage`: `response.completed` carries the usage.
- The gateway is stateless: `previous_response_id`, `conversation`, `prompt` (stored templates) and
  `background: true` are a 400 with code `unsupported_parameter`, as is an `n` other than 1 (a response
  has one output; the Responses API has no `n`).
- Ignored, having no chat equivalent or no meaning here: `store` (nothing is stored; the response says
  `store: false`), `metadata` (echoed in the response only), `include` (but for logprobs), `truncation`,
  `service_tier`, `prompt_cache_key`, `prompt_cache_retention`, `safety_identifier`, `max_tool_calls`,
  `stream_options`, `reasoning.summary`, and any field this module does not know.
"""

from __future__ import annotations

from typing import Any

from providers.errors import InvalidRequest
from providers.responses_front.input_items import input_to_messages
from providers.responses_front.schema import (
    FunctionTool,
    NamedToolChoice,
    ResponsesRequest,
    TextConfig,
    invalid,
    missing,
    parse,
)

LOGPROBS_INCLUDE = "message.output_text.logprobs"
_STATELESS = "This gateway is stateless: send the whole conversation in 'input' instead of referring to stored state."


def responses_request_to_openai(body: Any) -> dict[str, Any]:
    """Validate a Responses create body and translate it into an OpenAI chat completion request.

    Raises `InvalidRequest` whose `param` names the offending field, e.g. `input[2].content[0].type`.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    request = parse(ResponsesRequest, body, "")
    _reject_stateful(request)
    messages = input_to_messages(request.input)
    if request.instructions:
        messages.insert(0, {"role": "system", "content": request.instructions})
    if not messages:
        raise invalid("input", "expected at least one input item.")
    out: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.max_output_tokens is not None:
        out["max_completion_tokens"] = request.max_output_tokens
    for key in ("temperature", "top_p", "user"):
        value = getattr(request, key)
        if value is not None:
            out[key] = value
    if request.top_logprobs is not None:
        out["logprobs"] = True
        out["top_logprobs"] = request.top_logprobs
    elif request.include and LOGPROBS_INCLUDE in request.include:
        out["logprobs"] = True
    tools = [_tool(raw, f"tools[{index}]") for index, raw in enumerate(request.tools or [])]
    if tools:
        out["tools"] = tools
        if request.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = request.parallel_tool_calls
    choice = _tool_choice(request.tool_choice, has_tools=bool(tools))
    if choice is not None:
        out["tool_choice"] = choice
    if request.text is not None:
        out.update(_text(request.text))
    if request.reasoning is not None and request.reasoning.effort is not None:
        out["reasoning_effort"] = request.reasoning.effort
    if request.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _reject_stateful(request: ResponsesRequest) -> None:
    for field in ("previous_response_id", "conversation", "prompt"):
        if getattr(request, field) is not None:
            raise InvalidRequest(f"'{field}' is not supported. {_STATELESS}", param=field, code="unsupported_parameter")
    if request.background:
        raise InvalidRequest(
            "'background' is not supported: this gateway answers while the request is open.",
            param="background",
            code="unsupported_parameter",
        )
    if request.n is not None and request.n != 1:
        raise InvalidRequest(
            "'n' is not supported: a response has one output.", param="n", code="unsupported_parameter"
        )


def _tool(raw: dict[str, Any], where: str) -> dict[str, Any]:
    kind = raw.get("type")
    if kind != "function":
        raise invalid(
            f"{where}.type",
            f"Tool type {kind!r} is not supported by this gateway, which supports function tools only.",
            "unsupported_value",
        )
    tool = parse(FunctionTool, raw, where)
    function: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        function["description"] = tool.description
    if tool.parameters is not None:
        function["parameters"] = tool.parameters
    if tool.strict is not None:
        function["strict"] = tool.strict
    return {"type": "function", "function": function}


def _tool_choice(choice: str | dict[str, Any] | None, *, has_tools: bool) -> str | dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise invalid("tool_choice", f"{choice!r} (expected auto, none or required).")
        if not has_tools and choice != "required":
            return None
        out: str | dict[str, Any] = choice
    else:
        if choice.get("type") != "function":
            raise invalid(
                "tool_choice.type",
                f"Tool choice type {choice.get('type')!r} is not supported by this gateway "
                "(supported: auto, none, required, or a function by name).",
                "unsupported_value",
            )
        out = {"type": "function", "function": {"name": parse(NamedToolChoice, choice, "tool_choice").name}}
    if not has_tools:
        raise invalid("tool_choice", "a tool choice needs 'tools'.")
    return out


def _text(text: TextConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if text.verbosity is not None:
        out["verbosity"] = text.verbosity
    fmt = text.format
    if fmt is None or fmt.type == "text":
        return out
    if fmt.type == "json_object":
        out["response_format"] = {"type": "json_object"}
        return out
    if fmt.name is None:
        raise missing("text.format.name")
    if fmt.schema_ is None:
        raise missing("text.format.schema")
    schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
    if fmt.description is not None:
        schema["description"] = fmt.description
    if fmt.strict is not None:
        schema["strict"] = fmt.strict
    out["response_format"] = {"type": "json_schema", "json_schema": schema}
    return out
