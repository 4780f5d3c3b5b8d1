"""Errors of the local runtime, as members of `providers.errors`' tree.

    GatewayError
    +-- InvalidRequest                      400  bad tensor name, shape, datatype or data (OIP routes)
    +-- NotFound                            404  no such model or version in the repository
    +-- ModelLoadError                      500  a version could not be loaded (the old one keeps serving)
    +-- ServiceUnavailable                  503
    |   +-- LocalModelUnavailable           503  also an UpstreamError (retryable), so the gateway's
    |       |                                    attempt loop fails over to the next deployment
    |       +-- QueueFull                        the model's queue holds max_queue_size requests
    |       +-- ModelNotReady                    loading, failed to load, or being unloaded
    +-- UpstreamError
        +-- InferenceFailed                 502  onnxruntime raised while running a batch (retryable)

`ModelConfigError` (a ValueError) describes a bad `model.yaml`; it never reaches a client.
"""

from __future__ import annotations

from providers.errors import GatewayError, ServiceUnavailable, UpstreamError


class LocalModelUnavailable(UpstreamError, ServiceUnavailable):
    """A local model cannot take the request now. Retryable on another deployment."""

    status = 503
    error_type = "service_unavailable"
    default_code = "model_unavailable"


class QueueFull(LocalModelUnavailable):
    default_code = "queue_full"


class ModelNotReady(LocalModelUnavailable):
    default_code = "model_not_ready"


class InferenceFailed(UpstreamError):
    default_code = "inference_failed"


class ModelLoadError(GatewayError):
    status = 500
    error_type = "model_load_error"
    default_code = "model_load_failed"


class ModelConfigError(ValueError):
    """A `model.yaml` that does not validate; each problem names its field."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))
