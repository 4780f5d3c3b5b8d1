"""OpenAI `chat.completion.chunk`s → Responses SSE events. Pure.

https://platform.openai.com/docs/api-reference/responses-streaming

The flow is OpenAI's: `response.created` and `response.in_progress` (status `in_progress`, no output);
per output item `response.output_item.added`, its deltas and `response.output_item.done`; last
`response.completed` (or `response.incomplete`) with the whole response and its usage. Every event is
`event: <type>` and `data: <json>`, numbered by `sequence_number` from 0.

- Text opens a `message` item with an `output_text` part (`content_part.added`, `output_text.delta`...,
  `output_text.done`, `content_part.done`); a chat `refusal` adds a `refusal` part (`refusal.delta`...).
- Each chat tool call (told apart by its `index`) is a `function_call` item with `function_call_arguments`
  deltas. Items keep the `output_index` they opened with; chat may interleave the arguments of several
  calls, and so may the events (each names its item). A tool call closes the open message (as OpenAI's
  output has the text before the calls), so text after a call opens a new message item. The other items
  close when the finish chunk arrives, the last one `incomplete` if the reply was cut short.
- Usage comes in the chunk after the finish chunk (`stream_options.include_usage`), so the final event
  comes from `finish()`. Without a usage chunk the response's `usage` is null.
- Only the first choice is read; reasoning deltas some backends add (`reasoning_content`) are dropped,
  like reasoning items in the request.

A failure after the first event is told by an `error` event (`error_event`). It has the documented fields
at the top level (`code`, `message`, `param`, as the SDK's `ResponseErrorEvent`) and the same again under
`error`, which is what OpenAI's API sends at runtime and what makes the `openai` SDK raise: its stream
raises `openai.APIError` (with that `error` as `body`) for an event whose data has an `error` key, and
otherwise yields the flat event as a `ResponseErrorEvent` and ends without an exception.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from providers.base import Usage
from providers.chat_translation import tool_call_position
from providers.errors import GatewayError
from providers.responses_front.response import (
    function_call_item,
    message_item,
    new_id,
    outcome,
    refusal_part,
    response_object,
    text_logprobs,
    text_part,
)

Event = dict[str, Any]


def encode_event(event: Event) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def error_event(error: GatewayError, *, sequence_number: int = 0) -> bytes:
    """The Responses stream's `error` event for a failure after the response has started."""
    details = {"type": error.error_type, "code": error.code, "message": error.message, "param": error.param}
    event = {
        "type": "error",
        "sequence_number": sequence_number,
        "code": error.code,
        "message": error.message,
        "param": error.param,
        "error": details,
    }
    return encode_event(event)


@dataclass(slots=True)
class _Part:
    kind: str
    """`output_text` or `refusal`."""
    texts: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        text = "".join(self.texts)
        return text_part(text, self.logprobs) if self.kind == "output_text" else refusal_part(text)


@dataclass(slots=True)
class _Item:
    output_index: int
    id: str
    kind: str
    """`message` or `function_call`."""
    call_id: str = ""
    name: str = ""
    parts: list[_Part] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    status: str = "in_progress"

    def as_dict(self) -> dict[str, Any]:
        if self.kind == "message":
            return message_item(self.id, [part.as_dict() for part in self.parts], self.status)
        return function_call_item(self.id, self.call_id, self.name, "".join(self.arguments), self.status)


class ChatToResponsesStream:
    """State of one streamed response. `feed()` each parsed chunk and send the bytes it returns (possibly
    empty), then call `finish()` once the upstream stream has ended and send its bytes, which end with
    `response.completed` or `response.incomplete`. On a failure midway send `error_event()` instead.

    `request` is the client's Responses body (echoed in the response objects), `model` the client's model.
    """

    def __init__(
        self, request: dict[str, Any], *, model: str, response_id: str | None = None, created_at: int | None = None
    ) -> None:
        self._request = request
        self._model = model
        self._id = response_id or new_id("resp")
        self._created_at = created_at if created_at is not None else int(time.time())
        self._sequence = 0
        self._started = False
        self._done = False
        self._items: list[_Item] = []
        self._message: _Item | None = None
        """The message item text goes to, while it is open."""
        self._calls: dict[int, _Item] = {}
        """Chat tool call index → its function_call item."""
        self._finish_reason: Any = None
        self._service_tier: Any = None
        self.usage: Usage | None = None
        """The upstream's usage, once a chunk has carried it."""

    @property
    def started(self) -> bool:
        """`response.created` has been produced."""
        return self._started

    def feed(self, chunk: dict[str, Any]) -> bytes:
        if self._done:
            return b""
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        if isinstance(chunk.get("service_tier"), str):
            self._service_tier = chunk["service_tier"]
        events = self._start()
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0 or self._finish_reason is not None:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                events.extend(self._delta(delta, text_logprobs(choice.get("logprobs"))))
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
                events.extend(self._close_all())
        return self._encode(events)

    def finish(self) -> bytes:
        """The closing events: any item still open is closed, then the whole response with its usage."""
        if self._done:
            return b""
        events = [*self._start(), *self._close_all()]
        if not self._items:  # nothing came: an empty message, as the non-streaming response has
            events.extend(self._open_part(self._open_message(events), "output_text"))
            events.extend(self._close_all())
        status, incomplete = outcome(self._finish_reason)
        response = self._response(status, incomplete_details=incomplete)
        events.append({"type": f"response.{status}", "response": response})
        self._done = True
        return self._encode(events)

    def error_event(self, error: GatewayError) -> bytes:
        """The `error` event, numbered after the events sent so far; the stream is over after it."""
        self._done = True
        raw = error_event(error, sequence_number=self._sequence)
        self._sequence += 1
        return raw

    def _encode(self, events: list[Event]) -> bytes:
        out = []
        for event in events:
            event["sequence_number"] = self._sequence
            self._sequence += 1
            out.append(encode_event(event))
        return b"".join(out)

    def _response(self, status: str, incomplete_details: dict[str, str] | None = None) -> dict[str, Any]:
        in_progress = status == "in_progress"
        return response_object(
            self._request,
            model=self._model,
            response_id=self._id,
            created_at=self._created_at,
            status=status,
            output=[] if in_progress else [item.as_dict() for item in self._items],
            usage=None if in_progress else self.usage,
            incomplete_details=incomplete_details,
            service_tier=self._service_tier,
        )

    def _start(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        return [
            {"type": "response.created", "response": self._response("in_progress")},
            {"type": "response.in_progress", "response": self._response("in_progress")},
        ]

    def _delta(self, delta: dict[str, Any], logprobs: list[dict[str, Any]]) -> list[Event]:
        events: list[Event] = []
        for kind, key in (("output_text", "content"), ("refusal", "refusal")):
            text = delta.get(key)
            if isinstance(text, str) and text:
                events.extend(self._text(kind, text, logprobs if kind == "output_text" else []))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            if isinstance(call, dict):
                events.extend(self._tool_call(call))
        return events

    def _text(self, kind: str, text: str, logprobs: list[dict[str, Any]]) -> list[Event]:
        events: list[Event] = []
        message = self._message or self._open_message(events)
        part = next((p for p in message.parts if p.kind == kind), None)
        if part is None:
            events.extend(self._open_part(message, kind))
            part = message.parts[-1]
        part.texts.append(text)
        part.logprobs.extend(logprobs)
        where = _where(message, message.parts.index(part))
        if kind == "refusal":
            events.append({"type": "response.refusal.delta", **where, "delta": text})
        else:
            delta = {"delta": text, "logprobs": _event_logprobs(logprobs)}
            events.append({"type": "response.output_text.delta", **where, **delta})
        return events

    def _open_message(self, events: list[Event]) -> _Item:
        item = _Item(len(self._items), new_id("msg"), "message")
        self._items.append(item)
        self._message = item
        events.append({"type": "response.output_item.added", "output_index": item.output_index, "item": item.as_dict()})
        return item

    def _open_part(self, message: _Item, kind: str) -> list[Event]:
        message.parts.append(_Part(kind))
        where = _where(message, len(message.parts) - 1)
        return [{"type": "response.content_part.added", **where, "part": message.parts[-1].as_dict()}]

    def _tool_call(self, call: dict[str, Any]) -> list[Event]:
        position = tool_call_position(call, {p: item.call_id for p, item in self._calls.items()})
        function = call.get("function")
        if not isinstance(function, dict):
            function = {}
        events: list[Event] = []
        item = self._calls.get(position)
        if item is None:
            if self._message is not None:
                events.extend(self._close(self._message))
            call_id = str(call.get("id") or new_id("call"))
            item = _Item(len(self._items), new_id("fc"), "function_call", call_id, str(function.get("name") or ""))
            self._items.append(item)
            self._calls[position] = item
            events.append(
                {"type": "response.output_item.added", "output_index": item.output_index, "item": item.as_dict()}
            )
        elif not item.name and function.get("name"):
            item.name = str(function["name"])
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments and item.status == "in_progress":
            item.arguments.append(arguments)
            events.append(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item.id,
                    "output_index": item.output_index,
                    "delta": arguments,
                }
            )
        return events

    def _close_all(self) -> list[Event]:
        events: list[Event] = []
        open_items = [item for item in self._items if item.status == "in_progress"]
        status, _ = outcome(self._finish_reason)
        for item in open_items:
            last = item is self._items[-1]
            events.extend(self._close(item, "incomplete" if last and status == "incomplete" else "completed"))
        return events

    def _close(self, item: _Item, status: str = "completed") -> list[Event]:
        events: list[Event] = []
        if item.kind == "message":
            self._message = None
            for index, part in enumerate(item.parts):
                where = _where(item, index)
                text = "".join(part.texts)
                if part.kind == "refusal":
                    events.append({"type": "response.refusal.done", **where, "refusal": text})
                else:
                    done = {"text": text, "logprobs": _event_logprobs(part.logprobs)}
                    events.append({"type": "response.output_text.done", **where, **done})
                events.append({"type": "response.content_part.done", **where, "part": part.as_dict()})
        else:
            if not "".join(item.arguments).strip():  # no arguments: `{}`, as the non-streaming response says
                item.arguments.append("{}")
                delta = {"item_id": item.id, "output_index": item.output_index, "delta": "{}"}
                events.append({"type": "response.function_call_arguments.delta", **delta})
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item.id,
                    "output_index": item.output_index,
                    "arguments": "".join(item.arguments),
                }
            )
        item.status = status
        events.append({"type": "response.output_item.done", "output_index": item.output_index, "item": item.as_dict()})
        return events


def _event_logprobs(logprobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Text logprobs as text events carry them: without the `bytes` the output part has."""
    return [
        {"token": lp["token"], "logprob": lp["logprob"], "top_logprobs": [_no_bytes(top) for top in lp["top_logprobs"]]}
        for lp in logprobs
    ]


def _no_bytes(logprob: dict[str, Any]) -> dict[str, Any]:
    return {"token": logprob["token"], "logprob": logprob["logprob"]}


def _where(item: _Item, content_index: int) -> dict[str, Any]:
    return {"item_id": item.id, "output_index": item.output_index, "content_index": content_index}
