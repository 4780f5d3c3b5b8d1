"""`kind: gemini` — Google's Gemini API (generativelanguage v1beta) behind the OpenAI wire format.

`request` translates chat requests (`schema` turns JSON Schema into Gemini's OpenAPI subset),
`response` translates whole responses, `stream` translates `streamGenerateContent?alt=sse` chunks into
`chat.completion.chunk`s, `embeddings` maps `/v1/embeddings` onto `embedContent`/`batchEmbedContents`,
`errors` reads Google's error JSON, and `provider` sends on the gateway's shared aiohttp session.
"""

from providers.gemini.config import GeminiConfig
from providers.gemini.provider import GeminiProvider

__all__ = ["GeminiConfig", "GeminiProvider"]
