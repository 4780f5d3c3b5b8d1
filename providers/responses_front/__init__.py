"""OpenAI's Responses API in front of the gateway: `POST /v1/responses` from any Responses client.

The pipeline works on chat completions, so `request` turns a Responses create body into an OpenAI chat
request (`input_items` translates its `input`, `schema` validates it), `response` turns the chat
completion into a `response` object, and `stream` turns `chat.completion.chunk`s into Responses SSE
events. Errors need no module of their own: the Responses API answers with OpenAI's usual error JSON
(`providers.errors.error_body`), and a broken stream ends with `stream.error_event`. All pure: the gateway
does the I/O.
"""

from providers.responses_front.request import responses_request_to_openai
from providers.responses_front.response import chat_completion_to_response
from providers.responses_front.stream import ChatToResponsesStream, error_event

__all__ = [
    "ChatToResponsesStream",
    "chat_completion_to_response",
    "error_event",
    "responses_request_to_openai",
]
