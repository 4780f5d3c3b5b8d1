"""Open Inference Protocol v2: request validation errors, responses, metadata (no onnxruntime)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from local_runtime.execution import CPU, ExecutionReport
from local_runtime.loading import LoadedModel, PreparedModel
from local_runtime.oip import batch_key, build_response, metadata, parse_request, validate_inputs
from local_runtime.repository import ModelSpec
from local_runtime.runners import Classify, classifier_outputs
from local_runtime.tensors import Signature, TensorSpec
from providers.errors import InvalidRequest

LABELS = ("setosa", "versicolor", "virginica")


def loaded(kind: str, signature: Signature, *, max_batch_size: int = 8, **spec: Any) -> LoadedModel:
    model_spec = ModelSpec.model_validate({"kind": kind, "max_batch_size": max_batch_size, **spec})
    scores = "probabilities" if kind == "classifier" else None
    prepared = PreparedModel(
        name="m",
        version=3,
        spec=model_spec,
        signature=signature,
        execution=ExecutionReport(requested=(CPU,), in_use=(CPU,), fallback=None),
        runners=(),
        max_batch_size=max_batch_size if signature.batchable else 1,
        batchable=signature.batchable,
        inputs={t.name: t for t in signature.inputs},
        outputs=classifier_outputs(signature, "probabilities") if scores else signature.outputs,
        labels=LABELS if kind == "classifier" else None,
        scores_output=scores,
        dimensions=None,
        fingerprint=(),
        load_seconds=0.0,
    )
    return LoadedModel(prepared, batcher=None, loaded_at=0.0)  # type: ignore[arg-type]


CLASSIFIER = loaded(
    "classifier",
    Signature(
        inputs=(TensorSpec("input", "FP32", (-1, 4)),),
        outputs=(TensorSpec("label", "INT64", (-1,)), TensorSpec("probabilities", "FP32", (-1, 3))),
    ),
    labels=list(LABELS),
)
TENSOR = loaded(
    "tensor",
    Signature(
        inputs=(TensorSpec("ids", "INT64", (-1, -1)), TensorSpec("flags", "BOOL", (-1, 2))),
        outputs=(TensorSpec("out", "FP32", (-1, 2)),),
    ),
)
FIXED = loaded(
    "tensor",
    Signature(inputs=(TensorSpec("x", "FP32", (1, 3)),), outputs=(TensorSpec("y", "FP32", (1,)),)),
)


def tensor(name: str, shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def invalid(model: LoadedModel, *inputs: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        validate_inputs(parse_request({"inputs": list(inputs)}), model)
    assert caught.value.http_status == 400
    return caught.value


def test_valid_request_becomes_arrays_with_the_batch_rows() -> None:
    request = parse_request({"inputs": [tensor("input", [2, 4], "FP32", [[1, 2, 3, 4], [5, 6, 7, 8]])]})
    tensors = validate_inputs(request, CLASSIFIER)
    assert tensors.rows == 2
    assert tensors.inputs["input"].dtype == np.float32 and tensors.inputs["input"].shape == (2, 4)
    flat = validate_inputs(parse_request({"inputs": [tensor("input", [1, 4], "fp32", [1, 2, 3, 4])]}), CLASSIFIER)
    assert flat.inputs["input"].tolist() == [[1, 2, 3, 4]]


def test_wrong_shape_names_the_input_and_the_expected_shape() -> None:
    error = invalid(CLASSIFIER, tensor("input", [2, 3], "FP32", [0] * 6))
    assert error.param == "input"
    assert error.message == (
        "input 'input': expected shape [-1, 4] (-1: any size; dimension 0 is the batch, at most 8), got [2, 3]."
    )
    assert "expected shape [-1, 4]" in invalid(CLASSIFIER, tensor("input", [4], "FP32", [0] * 4)).message


def test_batch_over_max_batch_size_is_refused() -> None:
    error = invalid(CLASSIFIER, tensor("input", [9, 4], "FP32", [0] * 36))
    assert "batch dimension is 9, must be 1..8 (max_batch_size of 'm')" in error.message
    assert "batch dimension is 0" in invalid(CLASSIFIER, tensor("input", [0, 4], "FP32", [])).message


def test_wrong_datatype_names_the_expected_one() -> None:
    error = invalid(CLASSIFIER, tensor("input", [1, 4], "INT64", [1, 2, 3, 4]))
    assert error.message == "input 'input': expected datatype FP32, got INT64."


def test_unknown_and_missing_inputs_list_the_model_inputs() -> None:
    error = invalid(CLASSIFIER, tensor("features", [1, 4], "FP32", [1, 2, 3, 4]))
    assert error.message == "Unknown input 'features'; the model's inputs are: input (FP32 [-1, 4])."
    error = invalid(TENSOR, tensor("ids", [1, 3], "INT64", [1, 2, 3]))
    assert error.message == "Missing input(s): flags (BOOL [-1, 2])." and error.param == "flags"
    twice = tensor("input", [1, 4], "FP32", [1, 2, 3, 4])
    assert "given twice" in invalid(CLASSIFIER, twice, twice).message


def test_data_must_fit_the_shape_and_the_datatype() -> None:
    assert "shape [2, 4] needs 8 values, got 7" in invalid(CLASSIFIER, tensor("input", [2, 4], "FP32", [1] * 7)).message
    assert "FP32 data must be numbers" in invalid(CLASSIFIER, tensor("input", [1, 4], "FP32", ["a"] * 4)).message
    assert "FP32 data must be numbers" in invalid(CLASSIFIER, tensor("input", [1, 4], "FP32", None)).message
    ragged = tensor("input", [2, 4], "FP32", [[1, 2, 3, 4], [1, 2]])
    assert "regularly nested" in invalid(CLASSIFIER, ragged).message
    ids = tensor("ids", [1, 2], "INT64", [1.5, 2])
    flags = tensor("flags", [1, 2], "BOOL", [True, False])
    assert "INT64 data must be integers" in invalid(TENSOR, ids, flags).message


def test_inputs_must_agree_on_the_batch_dimension() -> None:
    ids = tensor("ids", [2, 3], "INT64", [1] * 6)
    flags = tensor("flags", [1, 2], "BOOL", [True, False])
    assert "batch dimension 1 differs from the other inputs' 2" in invalid(TENSOR, ids, flags).message


def test_a_fixed_shape_model_is_checked_literally() -> None:
    ok = validate_inputs(parse_request({"inputs": [tensor("x", [1, 3], "FP32", [1, 2, 3])]}), FIXED)
    assert ok.rows == 1
    error = invalid(FIXED, tensor("x", [2, 3], "FP32", [1] * 6))
    assert error.message == "input 'x': expected shape [1, 3], got [2, 3]."


def test_malformed_requests() -> None:
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        parse_request([1, 2])
    with pytest.raises(InvalidRequest, match="inputs: List should have at least 1 item"):
        parse_request({"inputs": []})
    with pytest.raises(InvalidRequest, match=r"inputs\.0\.shape"):
        parse_request({"inputs": [{"name": "x", "datatype": "FP32", "data": []}]})


def test_batch_key_separates_different_non_batch_shapes() -> None:
    def request(tokens: int) -> Any:
        return validate_inputs(
            parse_request(
                {
                    "inputs": [
                        tensor("ids", [1, tokens], "INT64", [1] * tokens),
                        tensor("flags", [1, 2], "BOOL", [True, True]),
                    ]
                }
            ),
            TENSOR,
        )

    assert batch_key(request(3)) == batch_key(request(3)) != batch_key(request(4))


def classifier_result() -> dict[str, np.ndarray]:
    probabilities = np.array([[0.9, 0.08, 0.02], [0.1, 0.3, 0.6]], dtype=np.float32)
    return Classify("probabilities", LABELS)({"label": np.array([0, 2]), "probabilities": probabilities})


def test_classifier_response_has_labels_and_scores() -> None:
    request = parse_request({"id": "r1", "inputs": [tensor("input", [2, 4], "FP32", [0] * 8)]})
    response = build_response(request, CLASSIFIER, classifier_result())
    assert response["model_name"] == "m" and response["model_version"] == "3" and response["id"] == "r1"
    outputs = {o["name"]: o for o in response["outputs"]}
    assert list(outputs) == ["label", "score", "probabilities"]
    assert outputs["label"] == {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["setosa", "virginica"]}
    assert outputs["score"]["data"] == [0.9, 0.6] and outputs["score"]["datatype"] == "FP32"
    assert outputs["probabilities"]["shape"] == [2, 3]
    assert outputs["probabilities"]["data"] == [0.9, 0.08, 0.02, 0.1, 0.3, 0.6]


def test_requested_outputs_and_the_classification_extension() -> None:
    body = {
        "inputs": [tensor("input", [2, 4], "FP32", [0] * 8)],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}, {"name": "label"}],
    }
    response = build_response(parse_request(body), CLASSIFIER, classifier_result())
    top, label = response["outputs"]
    assert top["datatype"] == "BYTES" and top["shape"] == [2, 2]
    assert top["data"] == ["0.9:0:setosa", "0.08:1:versicolor", "0.6:2:virginica", "0.3:1:versicolor"]
    assert label["data"] == ["setosa", "virginica"]
    unknown = {"inputs": body["inputs"], "outputs": [{"name": "logits"}]}
    with pytest.raises(InvalidRequest, match="Unknown output 'logits'; the model's outputs are: label, score"):
        build_response(parse_request(unknown), CLASSIFIER, classifier_result())
    bad_k = {"inputs": body["inputs"], "outputs": [{"name": "probabilities", "parameters": {"classification": 0}}]}
    with pytest.raises(InvalidRequest, match="positive integer"):
        build_response(parse_request(bad_k), CLASSIFIER, classifier_result())


def test_metadata_shows_versions_shapes_and_the_execution_provider() -> None:
    data = metadata(CLASSIFIER, (1, 2, 3), "READY")
    assert data["name"] == "m" and data["versions"] == ["1", "2", "3"] and data["platform"] == "onnxruntime_onnx"
    assert data["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in data["outputs"]] == ["label", "score", "probabilities"]
    parameters = data["parameters"]
    assert parameters["execution_provider"] == CPU and parameters["execution_fallback"] is None
    assert parameters["serving_version"] == "3" and parameters["labels"] == list(LABELS)
    assert parameters["kind"] == "classifier" and parameters["max_batch_size"] == 8
