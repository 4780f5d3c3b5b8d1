"""What the Responses translator's tests share: the fixtures' place, a check that the SDK's models hold no
undeclared field, and an `openai` client answered offline by the translation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import orjson
import pydantic
from openai.types.responses import Response, ResponseErrorEvent

from providers.responses_front import responses_request_to_openai

try:  # the SDK moved from `httpx` to its successor `httpx2`
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx  # type: ignore[no-redef]

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "responses_front"
MODEL = "smart"
"""The model the client asked for (a gateway alias): the response is named after it, not the upstream's."""

Handler = Callable[[dict[str, Any], dict[str, Any]], httpx.Response]


def assert_known(value: Any) -> None:
    """Every field of an SDK model, nested ones too, is one the SDK declares (no misspelt field slips by), but
    `store`, which OpenAI's response objects carry and the SDK's `Response` does not declare, and the runtime
    `error` of an error event."""
    if isinstance(value, pydantic.BaseModel):
        extra = dict(value.model_extra or {})
        extra.pop(
            "store" if isinstance(value, Response) else "error" if isinstance(value, ResponseErrorEvent) else "", None
        )
        assert not extra, (type(value).__name__, extra)
        for name in type(value).model_fields:
            assert_known(getattr(value, name))
    elif isinstance(value, list):
        for entry in value:
            assert_known(entry)


def offline_client(handler: Handler) -> openai.OpenAI:
    """An `openai` client whose `/v1/responses` requests are translated, then answered by `handler(chat
    request, Responses body)`; no network. The caller closes it."""

    def transport(http_request: httpx.Request) -> httpx.Response:
        assert http_request.url.path == "/v1/responses"
        assert http_request.headers["authorization"] == "Bearer sk-gateway"
        original = orjson.loads(http_request.content)
        return handler(responses_request_to_openai(original), original)

    http = httpx.Client(transport=httpx.MockTransport(transport))
    return openai.OpenAI(api_key="sk-gateway", base_url="http://127.0.0.1:9/v1", http_client=http, max_retries=0)
