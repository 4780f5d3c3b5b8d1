"""Anthropic's Messages API in front of the gateway: `POST /v1/messages` from any Anthropic client.

The reverse of `providers.anthropic` (which puts Anthropic behind the OpenAI format): `request` turns a
Messages request into an OpenAI chat request for the usual pipeline, `response` turns the OpenAI
completion into a Messages `message`, `stream` turns `chat.completion.chunk`s into Messages SSE events,
and `errors` renders gateway errors as Anthropic's error JSON. All pure: the gateway does the I/O.
"""

from providers.anthropic_front.errors import anthropic_error_body
from providers.anthropic_front.request import messages_request_to_openai
from providers.anthropic_front.response import openai_to_messages_response
from providers.anthropic_front.stream import OpenAIToAnthropicStream, error_event

__all__ = [
    "OpenAIToAnthropicStream",
    "anthropic_error_body",
    "error_event",
    "messages_request_to_openai",
    "openai_to_messages_response",
]
