"""Configuration of a `kind: gemini` provider (Google's Gemini API, generativelanguage v1beta)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from providers.base import EnvFlag

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"


class GeminiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["gemini"]
    api_key: str | None = Field(default=None, description="Sent as the `x-goog-api-key` header.")
    base_url: str = DEFAULT_BASE_URL
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers sent with every request.")
    enabled: EnvFlag = True
