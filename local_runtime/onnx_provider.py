"""`kind: onnx` — models of a local repository served in-process by onnxruntime.

The provider serves `/v1/embeddings` for the repository's embedding models (the deployment's `model`
names the model directory) in OpenAI's format, float or base64, with usage counted by the model's
own tokenizer. Classifier and tensor models are served by the Open Inference Protocol routes
(`inference_routes`, given `provider.manager`). Overload, a model that is not ready and a failed run
raise retryable `UpstreamError`s, so a deployment list can fail over to a hosted API.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field

from local_runtime.errors import LocalModelUnavailable
from local_runtime.model_manager import ModelManager
from providers.base import Completion, Duration, Endpoint, EnvFlag, ServerLoad, UpstreamCall, Usage
from providers.errors import GatewayError, UpstreamStatusError, UpstreamTimeout

log = logging.getLogger("switchyard.local_runtime")

Bootstrap = Literal["iris", "minilm"]


class OnnxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["onnx"]
    enabled: EnvFlag = True
    repository: str = Field(description="The model repository directory (models/<name>/<version>/model.onnx).")
    models: list[str] | None = Field(default=None, description="Serve only these models (default: all).")
    watch_interval: Duration | None = Field(default=2.0, description="Poll for new versions; null: only on reload.")
    bootstrap: list[Bootstrap] = Field(
        default_factory=list,
        description="Built-in models imported into the repository on start when missing "
        "(iris → iris-classifier, minilm → all-minilm-l6-v2).",
    )


class OnnxProvider:
    def __init__(self, name: str, config: OnnxConfig) -> None:
        self.kind = "onnx"
        self.name = name
        self.config = config
        self.manager = ModelManager(Path(config.repository), models=config.models, watch_interval=config.watch_interval)
        self._started = False

    async def start(self) -> None:
        """Import missing bootstrap models, load every model, start the file watcher."""
        if self._started:
            return
        self._started = True
        if self.config.bootstrap:
            await asyncio.to_thread(_bootstrap, Path(self.config.repository), self.config.bootstrap)
        await self.manager.start()

    async def aclose(self) -> None:
        await self.manager.aclose()

    def load(self) -> ServerLoad:
        return self.manager.load()

    async def complete(self, call: UpstreamCall) -> Completion:
        if call.endpoint is not Endpoint.EMBEDDINGS:
            raise UpstreamStatusError(
                404,
                f"The local ONNX model '{call.model}' serves embeddings only, not {call.endpoint.value}.",
                code="unsupported_endpoint",
            )
        texts = _texts(call.body.get("input"))
        try:
            async with asyncio.timeout_at(call.deadlines.total_at):
                result = await self.manager.embed(call.model, texts)
        except TimeoutError:
            raise UpstreamTimeout(f"The local model '{call.model}' did not answer in time.") from None
        except LocalModelUnavailable:
            raise
        except GatewayError as error:
            if error.http_status == 404:
                # The deployment names a model this repository does not have: another deployment of the
                # logical model may serve it, so this is retryable, not the client's fault.
                raise LocalModelUnavailable(error.message, code=error.code) from None
            # A non-embedding model, or input it cannot take.
            raise UpstreamStatusError(error.http_status, error.message, code=error.code) from None
        dimensions = call.body.get("dimensions")
        if dimensions is not None and dimensions != result.vectors.shape[1]:
            raise UpstreamStatusError(
                400,
                f"The model '{call.model}' has {result.vectors.shape[1]} dimensions; 'dimensions' cannot change that.",
                param="dimensions",
                code="invalid_value",
            )
        prompt_tokens = sum(result.tokens)
        body = embeddings_body(
            result.vectors, call.model, prompt_tokens, base64_format=call.body.get("encoding_format") == "base64"
        )
        return Completion(body=body, usage=Usage(prompt_tokens=prompt_tokens))

    async def open_stream(self, call: UpstreamCall) -> Any:
        raise UpstreamStatusError(400, "Local ONNX models do not stream.", param="stream", code="unsupported_value")


def _texts(raw: Any) -> list[str]:
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        texts = raw
    else:
        raise UpstreamStatusError(
            400,
            "Local embedding models take 'input' as a string or a list of strings (token arrays are not supported).",
            param="input",
            code="invalid_value",
        )
    if any(not t for t in texts):
        raise UpstreamStatusError(400, "'input' cannot contain an empty string.", param="input", code="invalid_value")
    return texts


def embeddings_body(vectors: np.ndarray, model: str, prompt_tokens: int, *, base64_format: bool) -> bytes:
    """OpenAI's embeddings response; base64 is the little-endian float32 bytes, as OpenAI sends them."""
    rows = vectors.astype("<f4", copy=False)
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": base64.b64encode(row.tobytes()).decode() if base64_format else row,
        }
        for index, row in enumerate(rows)
    ]
    body = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _bootstrap(repository: Path, wanted: list[Bootstrap]) -> None:
    from local_runtime import importers

    for which in wanted:
        name = importers.DEFAULT_NAMES[which]
        if importers.has_versions(repository / name):
            continue
        log.info("importing the built-in model %s into %s", name, repository)
        try:
            importers.import_model(which, repository)
        except Exception:
            # The other models still serve; this one is missing from the repository, and says why here.
            log.exception("could not import the built-in model %s into %s", name, repository)
