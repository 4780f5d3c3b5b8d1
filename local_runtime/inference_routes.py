"""The Open Inference Protocol v2 endpoints and the model admin endpoints, as plain functions.

Each takes a `ModelManager` plus the path parameters (and the parsed JSON body) and returns
`(status, JSON-able dict)`, so the gateway mounts them behind its own auth in a few lines:

    GET  /v2/models/{name}[/versions/{version}]          model_metadata(manager, name, version)
    GET  /v2/models/{name}[/versions/{version}]/ready    model_ready(manager, name, version)
    POST /v2/models/{name}[/versions/{version}]/infer    await infer(manager, name, body, version)
    GET  /v2/health/ready                                server_ready(managers)
    GET  /admin/v1/models                                list_models(manager)
    POST /admin/v1/models/{name}/reload                  await reload_model(manager, name)

Errors follow the protocol's shape, `{"error": "<message>"}`, with the error's HTTP status: 400 names
the input and the expected shape or datatype, 404 an unknown model or version, 503 a model that is
not ready or whose queue is full. A model that is not ready answers `ready` with 503.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from local_runtime.model_manager import ModelManager, ModelState
from local_runtime.oip import batch_key, build_response, metadata, parse_request, validate_inputs
from providers.errors import GatewayError, InvalidRequest

Reply = tuple[int, dict[str, Any]]


def error_reply(error: GatewayError) -> Reply:
    return error.http_status, {"error": error.message}


def _version(version: str | int | None) -> int | None:
    if version is None or isinstance(version, int):
        return version
    if not version.isdigit() or int(version) < 1:
        raise InvalidRequest(f"The model version must be a positive integer, got '{version}'.", param="version")
    return int(version)


def model_metadata(manager: ModelManager, name: str, version: str | int | None = None) -> Reply:
    try:
        status = manager.model_status(name)
        wanted = _version(version)
        if status.state is not ModelState.READY or (wanted is not None and wanted != status.serving_version):
            model = manager.get(name, wanted)  # raises the matching 404 / 503
        else:
            model = manager.get(name)
        return 200, metadata(model, status.versions, str(status.state))
    except GatewayError as error:
        return error_reply(error)


def model_ready(manager: ModelManager, name: str, version: str | int | None = None) -> Reply:
    try:
        manager.get(name, _version(version))
    except GatewayError as error:
        status, body = error_reply(error)
        return status, {"name": name, "ready": False, **body}
    return 200, {"name": name, "ready": True}


async def infer(manager: ModelManager, name: str, body: Any, version: str | int | None = None) -> Reply:
    try:
        request = parse_request(body)
        model = manager.get(name, _version(version))
        tensors = validate_inputs(request, model)
        result = await model.batcher.submit(tensors, rows=tensors.rows, key=batch_key(tensors))
        return 200, build_response(request, model, result)
    except GatewayError as error:
        return error_reply(error)


def server_ready(managers: Iterable[ModelManager]) -> Reply:
    """Ready when every model of every repository serves a version."""
    statuses = [s for m in managers for s in m.status()]
    not_ready = [s.name for s in statuses if s.state is not ModelState.READY]
    if not_ready:
        return 503, {"ready": False, "not_ready": not_ready}
    return 200, {"ready": True}


def list_models(manager: ModelManager) -> Reply:
    return 200, {"repository": str(manager.repository), "models": [s.to_dict() for s in manager.status()]}


async def reload_model(manager: ModelManager, name: str) -> Reply:
    """200 with the outcome when the model serves (switched or unchanged); 500 with the outcome and
    the error when the new version failed to load (the old one, if any, keeps serving)."""
    try:
        outcome = await manager.reload(name)
    except GatewayError as error:
        return error_reply(error)
    return (500 if outcome.error else 200), outcome.to_dict()


def manager_for(managers: Iterable[ModelManager], name: str) -> ModelManager | None:
    """The manager whose repository holds `name`, when the gateway runs several `kind: onnx` providers."""
    return next((m for m in managers if name in m.names()), None)
