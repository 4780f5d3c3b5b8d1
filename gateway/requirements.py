"""What a request needs from a deployment, and which deployments of a route can give it."""

from __future__ import annotations

from typing import Any

from gateway.state import ModelRoute
from policies.capabilities import Requirements, unmet
from providers import tokens
from providers.base import Endpoint
from providers.errors import InvalidRequest


def requirements(endpoint: Endpoint, body: dict[str, Any], stream: bool, body_bytes: int) -> Requirements:
    if endpoint is Endpoint.EMBEDDINGS:
        return Requirements(embeddings=True, prompt_bytes=body_bytes)
    tools = bool(body.get("tools")) and body.get("tool_choice") != "none"
    response_format = body.get("response_format")
    json_mode = isinstance(response_format, dict) and response_format.get("type") in {"json_object", "json_schema"}
    max_output = body.get("max_completion_tokens") or body.get("max_tokens")
    return Requirements(
        chat=True,
        tools=tools,
        vision=endpoint is Endpoint.CHAT and _has_image(body.get("messages")),
        json_mode=json_mode,
        streaming=stream,
        max_output=max_output if isinstance(max_output, int) else None,
        prompt_bytes=body_bytes,
    )


def _has_image(messages: Any) -> bool:
    for message in messages or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") in {"image_url", "input_image", "image"}:
                    return True
    return False


def eligible_deployments(route: ModelRoute, endpoint: Endpoint, body: dict[str, Any], needs: Requirements) -> set[str]:
    """Names of the route's deployments able to serve the request; a 400 saying why when none is."""
    counted: list[int] = []

    def prompt_tokens() -> int:
        if not counted:
            if endpoint is Endpoint.CHAT:
                counted.append(tokens.count_chat_prompt(body.get("messages") or []))
            else:
                field = body.get("input") if endpoint is Endpoint.EMBEDDINGS else body.get("prompt")
                counted.append(tokens.count_text(field if isinstance(field, str) else str(field)))
        return counted[0]

    able: set[str] = set()
    reasons: list[str] = []
    for target in route.deployments:
        reason = unmet(target.capabilities, needs, prompt_tokens)
        if reason is None:
            able.add(target.name)
        else:
            reasons.append(f"{target.name} ({target.upstream_model}) {reason}")
    if not able:
        raise InvalidRequest(
            f"No deployment of model '{route.name}' can serve this request: " + "; ".join(reasons) + ".",
            code="unsupported_capability",
        )
    return able
