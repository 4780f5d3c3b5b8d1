"""`kind: anthropic` — Anthropic's Messages API behind the OpenAI wire format.

`request` and `response` translate whole bodies, `stream` translates Messages SSE events into
`chat.completion.chunk`s, `errors` reads Anthropic's error JSON, and `provider` sends on the gateway's
shared aiohttp session.
"""

from providers.anthropic.config import AnthropicConfig
from providers.anthropic.provider import AnthropicProvider

__all__ = ["AnthropicConfig", "AnthropicProvider"]
