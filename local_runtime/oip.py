"""The Open Inference Protocol v2 (KServe / Triton), JSON form: request validation, responses and model
metadata. Pure functions over a loaded model's signature; the routes are in `inference_routes.py`.

Classifiers answer with `label` (BYTES, the model.yaml label of the top class), `score` (FP32, its
score) and the model's scores output ([batch, classes]); any other model output is passed through.
Triton's classification extension works too: `{"name": "probabilities", "parameters":
{"classification": 2}}` returns the top 2 classes of each row as "score:index:label" strings.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from local_runtime.loading import LoadedModel
from local_runtime.runners import TensorRequest, TensorResult
from local_runtime.tensors import TensorSpec
from providers.errors import InvalidRequest

PLATFORM = "onnxruntime_onnx"


class _Open(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class InferInput(_Open):
    name: str
    shape: list[int]
    datatype: str
    data: Any = None
    parameters: dict[str, Any] | None = None


class RequestedOutput(_Open):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(_Open):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferInput] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


def parse_request(body: Any) -> InferRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The inference request must be a JSON object with 'inputs'.")
    try:
        return InferRequest.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise InvalidRequest(f"Invalid inference request: {where}: {error['msg']}", param=where) from None


def _shape_text(spec: TensorSpec, batch_limit: int | None) -> str:
    text = f"expected shape {list(spec.shape)}"
    if batch_limit is not None:
        return text + f" (-1: any size; dimension 0 is the batch, at most {batch_limit})"
    return text + (" (-1: any size)" if -1 in spec.shape else "")


def _array(item: InferInput, spec: TensorSpec) -> np.ndarray:
    count = math.prod(item.shape)
    if spec.datatype == "BYTES":
        values = np.asarray(item.data, dtype=object).reshape(-1) if item.data is not None else np.array([])
        if not all(isinstance(v, str) for v in values):
            raise InvalidRequest(f"input '{item.name}': BYTES data must be strings.", param=item.name)
        array = values
    else:
        try:
            raw = np.asarray(item.data)
        except ValueError:
            raise InvalidRequest(
                f"input '{item.name}': data is not a flat or regularly nested list of numbers.", param=item.name
            ) from None
        if raw.dtype.kind not in "biuf" or raw.dtype == np.object_:
            raise InvalidRequest(f"input '{item.name}': {spec.datatype} data must be numbers.", param=item.name)
        if np.dtype(spec.dtype).kind in "iu" and raw.dtype.kind == "f":
            raise InvalidRequest(f"input '{item.name}': {spec.datatype} data must be integers.", param=item.name)
        array = raw.reshape(-1).astype(spec.dtype, copy=False)
    if array.size != count:
        raise InvalidRequest(
            f"input '{item.name}': shape {item.shape} needs {count} values, got {array.size}.", param=item.name
        )
    return array.reshape(item.shape)


def validate_inputs(request: InferRequest, model: LoadedModel) -> TensorRequest:
    """The request's tensors as arrays, checked against the model's inputs; `InvalidRequest` (400)
    names the input and the expected datatype and shape."""
    prepared = model.prepared
    if prepared.spec.kind == "embedding":
        raise InvalidRequest(f"The model '{model.name}' is an embedding model: use POST /v1/embeddings.")
    signature = prepared.signature
    batch_limit = prepared.max_batch_size if prepared.batchable else None
    arrays: dict[str, np.ndarray] = {}
    batch: int | None = None
    for item in request.inputs:
        spec = prepared.inputs.get(item.name)
        if spec is None:
            known = ", ".join(t.describe() for t in signature.inputs)
            raise InvalidRequest(f"Unknown input '{item.name}'; the model's inputs are: {known}.", param=item.name)
        if item.name in arrays:
            raise InvalidRequest(f"input '{item.name}' is given twice.", param=item.name)
        if item.datatype.upper() != spec.datatype:
            raise InvalidRequest(
                f"input '{item.name}': expected datatype {spec.datatype}, got {item.datatype}.", param=item.name
            )
        fits = len(item.shape) == len(spec.shape) and all(
            got >= 0 and want in (-1, got) for got, want in zip(item.shape, spec.shape, strict=True)
        )
        if not fits:
            raise InvalidRequest(
                f"input '{item.name}': {_shape_text(spec, batch_limit)}, got {item.shape}.", param=item.name
            )
        if batch_limit is not None:
            rows = item.shape[0]
            if rows < 1 or rows > batch_limit:
                raise InvalidRequest(
                    f"input '{item.name}': batch dimension is {rows}, must be 1..{batch_limit} "
                    f"(max_batch_size of '{model.name}'); {_shape_text(spec, batch_limit)}.",
                    param=item.name,
                )
            if batch is not None and rows != batch:
                raise InvalidRequest(
                    f"input '{item.name}': batch dimension {rows} differs from the other inputs' {batch}.",
                    param=item.name,
                )
            batch = rows
        arrays[item.name] = _array(item, spec)
    missing = [t for t in signature.inputs if t.name not in arrays]
    if missing:
        raise InvalidRequest(
            "Missing input(s): " + ", ".join(t.describe() for t in missing) + ".", param=missing[0].name
        )
    return TensorRequest(arrays, batch if batch is not None else 1)


def batch_key(request: TensorRequest) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Requests can share a batch only when every input has the same non-batch shape."""
    return tuple((name, array.shape[1:]) for name, array in request.inputs.items())


def build_response(request: InferRequest, model: LoadedModel, result: TensorResult) -> dict[str, Any]:
    """The protocol's response: the requested outputs (all the model's visible ones by default)."""
    prepared = model.prepared
    visible = {t.name: t for t in prepared.outputs}
    outputs = []
    if request.outputs is None:
        outputs = [_tensor_json(spec.name, spec.datatype, result[spec.name]) for spec in prepared.outputs]
    else:
        for want in request.outputs:
            spec = visible.get(want.name)
            if spec is None:
                raise InvalidRequest(
                    f"Unknown output '{want.name}'; the model's outputs are: {', '.join(visible)}.", param=want.name
                )
            array = result[want.name]
            top_k = (want.parameters or {}).get("classification")
            if top_k is not None:
                classes = _classification(want.name, array, top_k, prepared.labels)
                outputs.append(_tensor_json(want.name, "BYTES", classes))
            else:
                outputs.append(_tensor_json(want.name, spec.datatype, array))
    response: dict[str, Any] = {"model_name": model.name, "model_version": str(model.version), "outputs": outputs}
    if request.id is not None:
        response["id"] = request.id
    return response


def _classification(name: str, scores: np.ndarray, k: Any, labels: tuple[str, ...] | None) -> np.ndarray:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidRequest(f"output '{name}': 'classification' must be a positive integer.", param=name)
    if scores.ndim != 2 or scores.dtype.kind != "f":
        raise InvalidRequest(f"output '{name}' is not a [batch, classes] score tensor.", param=name)
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = []
    for row, indices in enumerate(order):
        rows.append(
            [
                f"{float(scores[row, i]):.6g}:{int(i)}" + (f":{labels[i]}" if labels and i < len(labels) else "")
                for i in indices
            ]
        )
    return np.array(rows, dtype=object)


def _tensor_json(name: str, datatype: str, array: np.ndarray) -> dict[str, Any]:
    flat = array.reshape(-1)
    if datatype == "BYTES":
        data: list[Any] = [str(v) for v in flat]
    elif datatype == "FP32":
        # orjson writes float32 values in their shortest form (0.98157287, not 0.9815728664398193).
        data = orjson.loads(orjson.dumps(np.ascontiguousarray(flat), option=orjson.OPT_SERIALIZE_NUMPY))
    else:
        data = flat.tolist()
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def metadata(model: LoadedModel, versions: tuple[int, ...], state: str) -> dict[str, Any]:
    prepared = model.prepared
    execution = prepared.execution
    parameters: dict[str, Any] = {
        "kind": prepared.spec.kind,
        "state": state,
        "serving_version": str(model.version),
        "max_batch_size": prepared.max_batch_size,
        "max_queue_delay_ms": prepared.spec.max_queue_delay_ms,
        "instances": prepared.spec.instances,
        "execution_provider": execution.primary,
        "execution_providers": list(execution.in_use),
        "execution_requested": list(execution.requested),
        "execution_fallback": execution.fallback,
    }
    if prepared.labels is not None:
        parameters["labels"] = list(prepared.labels)
    if prepared.dimensions is not None:
        parameters["dimensions"] = prepared.dimensions
    return {
        "name": model.name,
        "versions": [str(v) for v in versions],
        "platform": PLATFORM,
        "inputs": [t.to_dict() for t in prepared.signature.inputs],
        "outputs": [t.to_dict() for t in prepared.outputs],
        "parameters": parameters,
    }
