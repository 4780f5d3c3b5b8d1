"""`kind: azure` — Azure OpenAI: the OpenAI-compatible adapter with Azure's URL and auth.

A deployment's `model` is the Azure *deployment name*; requests go to
`{endpoint}/openai/deployments/{deployment}/{path}?api-version=...` with an `api-key` header.
Everything else (bodies, streams, usage, errors) is OpenAI's format, handled by the base adapter.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, Field
from yarl import URL

from providers.base import EnvFlag, UpstreamCall
from providers.openai_compat import OpenAICompatConfig, OpenAICompatProvider

DEFAULT_API_VERSION = "2024-10-21"


class AzureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["azure"]
    endpoint: str = Field(description="https://<resource>.openai.azure.com")
    api_key: str | None = None
    api_version: str = DEFAULT_API_VERSION
    headers: dict[str, str] = Field(default_factory=dict)
    enabled: EnvFlag = True


class AzureProvider(OpenAICompatProvider):
    def __init__(self, name: str, config: AzureConfig, session: aiohttp.ClientSession) -> None:
        headers = dict(config.headers)
        if config.api_key:
            headers["api-key"] = config.api_key
        base = config.endpoint.rstrip("/")
        super().__init__(name, OpenAICompatConfig(kind="openai", base_url=f"{base}/openai", headers=headers), session)
        self.kind = "azure"  # type: ignore[assignment]
        self._base = base
        self._api_version = config.api_version
        self._deployment_urls: dict[tuple[str, str], URL] = {}

    def _url(self, call: UpstreamCall) -> URL:
        key = (call.model, call.endpoint.value)
        url = self._deployment_urls.get(key)
        if url is None:
            url = URL(
                f"{self._base}/openai/deployments/{quote(call.model, safe='')}/{call.endpoint.value}",
                encoded=False,
            ).with_query({"api-version": self._api_version})
            self._deployment_urls[key] = url
        return url
