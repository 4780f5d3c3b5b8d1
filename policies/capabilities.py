"""Can a deployment serve this request? Capabilities against requirements, as plain values.

`None` in a capability means unknown, and unknown never excludes: only what the catalog or the
config states can rule a deployment out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from policies.frozen_record import FrozenRecord


@dataclass(frozen=True, slots=True)
class Capabilities:
    chat: bool | None = None
    embeddings: bool | None = None
    tools: bool | None = None
    vision: bool | None = None
    json_mode: bool | None = None
    streaming: bool | None = None
    context_window: int | None = None
    max_output: int | None = None

    def merged(self, override: dict[str, Any]) -> Capabilities:
        """These capabilities with the given non-null values replacing them."""
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in override.items() if k in known and v is not None})


UNKNOWN = Capabilities()


class Requirements(FrozenRecord):
    """What one request needs from a deployment (built per request: see `policies.frozen_record`)."""

    _fields = ("chat", "embeddings", "tools", "vision", "json_mode", "streaming", "max_output", "prompt_bytes")
    __slots__ = _fields
    chat: Final[bool]
    embeddings: Final[bool]
    tools: Final[bool]
    vision: Final[bool]
    json_mode: Final[bool]
    streaming: Final[bool]
    max_output: Final[int | None]
    prompt_bytes: Final[int]
    """Size of the request body: tokens never outnumber bytes, so a body this small fits unseen."""

    def __init__(
        self,
        *,
        chat: bool = False,
        embeddings: bool = False,
        tools: bool = False,
        vision: bool = False,
        json_mode: bool = False,
        streaming: bool = False,
        max_output: int | None = None,
        prompt_bytes: int = 0,
    ) -> None:
        self.chat = chat
        self.embeddings = embeddings
        self.tools = tools
        self.vision = vision
        self.json_mode = json_mode
        self.streaming = streaming
        self.max_output = max_output
        self.prompt_bytes = prompt_bytes


_FLAGS = (
    ("chat", "is not a chat model"),
    ("embeddings", "is not an embedding model"),
    ("tools", "does not support tools"),
    ("vision", "does not accept image input"),
    ("json_mode", "does not support JSON mode (response_format)"),
    ("streaming", "does not support streaming"),
)


def unmet(caps: Capabilities, needs: Requirements, count_prompt_tokens: Callable[[], int]) -> str | None:
    """Why `caps` cannot serve `needs`, or None when it can. Prompt tokens are counted only when the
    body is large enough for the context window to matter."""
    for name, reason in _FLAGS:
        if getattr(needs, name) and getattr(caps, name) is False:
            return reason
    if needs.max_output is not None and caps.max_output is not None and needs.max_output > caps.max_output:
        return f"allows at most {caps.max_output} output tokens (requested {needs.max_output})"
    if caps.context_window is not None:
        output = needs.max_output or 0
        if needs.prompt_bytes + output > caps.context_window:
            prompt = count_prompt_tokens()
            if prompt + output > caps.context_window:
                return f"has a context window of {caps.context_window} tokens; the prompt needs about {prompt}" + (
                    f" plus {output} for the output" if output else ""
                )
    return None
