"""Configuration of a `kind: anthropic` provider."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.base import EnvFlag

DEFAULT_BASE_URL = "https://api.anthropic.com/v1"
DEFAULT_VERSION = "2023-06-01"


class AnthropicConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["anthropic"]
    api_key: str | None = None
    base_url: str = DEFAULT_BASE_URL
    anthropic_version: str = Field(default=DEFAULT_VERSION, description="Sent as the `anthropic-version` header.")
    default_max_tokens: int = Field(
        default=4096, ge=1, description="`max_tokens` when the client sets none (Anthropic requires one)."
    )
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers, e.g. `anthropic-beta`.")
    enabled: EnvFlag = True
