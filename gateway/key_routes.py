"""`/admin/v1/keys`: create, list, show, rotate and revoke virtual keys (admin key only).

Bodies are validated strictly before anything is written: an unknown field or a bad budget is a 400
naming the field, and no key exists afterwards. The secret appears only in the create and rotate answers.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.admin_routes import credentials
from gateway.config.loader import format_path
from gateway.config.tenancy import Budgets, Name, RateLimitConfig
from providers.base import Duration
from providers.errors import InvalidRequest

if TYPE_CHECKING:
    from gateway.runtime import Runtime


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CreateKey(_Body):
    tenant: Name
    team: Name | None = None
    project: Name | None = None
    name: str | None = Field(default=None, max_length=128)
    budget: Budgets = ()
    rate_limit: RateLimitConfig | None = None
    expires_in: Duration | None = None
    """A duration (`3600`, `90m`, `720h`); absent: the key never expires."""


class RotateKey(_Body):
    grace: Duration | None = None
    """How long the old secret keeps working; absent: it stops at once."""


async def _body(request: Request, model: type[_Body]) -> Any:
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Malformed JSON in the request body: {exc.msg}.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        param = format_path(error["loc"]) if error["loc"] else None
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        raise InvalidRequest(f"Invalid {param}: {message}.", param=param, code="invalid_value") from None


def key_routes(runtime: Runtime) -> list[Route]:
    async def create(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        body: CreateKey = await _body(request, CreateKey)
        secret, key = await runtime.keys.create(
            tenant=body.tenant,
            team=body.team,
            project=body.project,
            name=body.name,
            budgets=body.budget,
            rate_limit=body.rate_limit,
            expires_at=time.time() + body.expires_in if body.expires_in else None,
        )
        return JSONResponse({**key.public(), "key": secret}, status_code=201)

    async def list_keys(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        tenant = request.query_params.get("tenant")
        keys = await runtime.keys.list(tenant)
        return JSONResponse({"object": "list", "data": [k.public() for k in keys]})

    async def show(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        return JSONResponse((await runtime.keys.get(request.path_params["key_id"])).public())

    async def rotate(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        body: RotateKey = await _body(request, RotateKey)
        secret, new, old = await runtime.keys.rotate(request.path_params["key_id"], grace=body.grace or 0.0)
        return JSONResponse({**new.public(), "key": secret, "replaces": old.public()}, status_code=201)

    async def revoke(request: Request) -> Response:
        await runtime.require_admin(credentials(request))
        return JSONResponse((await runtime.keys.revoke(request.path_params["key_id"])).public())

    return [
        Route("/admin/v1/keys", create, methods=["POST"]),
        Route("/admin/v1/keys", list_keys, methods=["GET"]),
        Route("/admin/v1/keys/{key_id}", show, methods=["GET"]),
        Route("/admin/v1/keys/{key_id}", revoke, methods=["DELETE"]),
        Route("/admin/v1/keys/{key_id}/revoke", revoke, methods=["POST"]),
        Route("/admin/v1/keys/{key_id}/rotate", rotate, methods=["POST"]),
    ]
