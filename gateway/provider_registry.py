"""Every provider kind the config accepts, and how to build it: adding a provider is one entry here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, get_args

import aiohttp
from pydantic import Field

from local_runtime.onnx_provider import OnnxConfig, OnnxProvider
from providers.anthropic import AnthropicConfig, AnthropicProvider
from providers.azure import AzureConfig, AzureProvider
from providers.base import Provider
from providers.gemini import GeminiConfig, GeminiProvider
from providers.mock import MockConfig, MockProvider
from providers.openai_compat import OpenAICompatConfig, OpenAICompatProvider
from providers.vllm import VLLMConfig, VLLMProvider

ProviderConfig = Annotated[
    OpenAICompatConfig | AzureConfig | AnthropicConfig | GeminiConfig | VLLMConfig | MockConfig | OnnxConfig,
    Field(discriminator="kind"),
]

Builder = Callable[[str, Any, aiohttp.ClientSession], Provider]

_BUILDERS: dict[type[Any], Builder] = {
    OpenAICompatConfig: lambda name, config, session: OpenAICompatProvider(name, config, session),
    AzureConfig: lambda name, config, session: AzureProvider(name, config, session),
    AnthropicConfig: lambda name, config, session: AnthropicProvider(name, config, session),
    GeminiConfig: lambda name, config, session: GeminiProvider(name, config, session),
    VLLMConfig: lambda name, config, session: VLLMProvider(name, config, session),
    MockConfig: lambda name, config, session: MockProvider(name, config),
    OnnxConfig: lambda name, config, session: OnnxProvider(name, config),
}


def provider_kinds() -> tuple[str, ...]:
    kinds: list[str] = []
    for config_type in _BUILDERS:
        kinds.extend(get_args(config_type.model_fields["kind"].annotation))
    return tuple(kinds)


def build_provider(name: str, config: Any, session: aiohttp.ClientSession) -> Provider:
    return _BUILDERS[type(config)](name, config, session)
