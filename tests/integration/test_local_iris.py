"""The real iris classifier (built by the importer with scikit-learn + skl2onnx) on real onnxruntime:
Open Inference Protocol routes, dynamic batching under concurrency, queue limits, bad requests."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from local_runtime import inference_routes as routes
from local_runtime.model_manager import ModelManager
from tests.fixtures.local_runtime.support import IRIS, build_iris, copy_model, iris_body


@pytest.fixture(scope="module")
def iris_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_iris(tmp_path_factory.mktemp("iris-source"))


@pytest.fixture
async def manager(iris_source: Path, tmp_path: Path) -> AsyncIterator[ModelManager]:
    copy_model(iris_source, tmp_path, IRIS, max_queue_delay_ms=5, max_batch_size=32)
    copy_model(iris_source, tmp_path, "iris-alone", max_batch_size=4)
    copy_model(iris_source, tmp_path, "iris-tiny-queue", max_batch_size=1, max_queue_size=2)
    manager = ModelManager(tmp_path)
    await manager.start()
    yield manager
    await manager.aclose()


async def test_predictions_match_scikit_learn(manager: ModelManager) -> None:
    iris = load_iris()
    features = iris.data.astype(np.float32)
    reference = LogisticRegression(max_iter=1000).fit(features, iris.target)
    rows = features[::5].tolist()
    status, body = await routes.infer(manager, IRIS, iris_body(rows[:30], id="check"))
    assert status == 200, body
    assert body["model_name"] == IRIS and body["model_version"] == "1" and body["id"] == "check"
    outputs = {o["name"]: o for o in body["outputs"]}
    expected = [str(iris.target_names[i]) for i in reference.predict(features[::5][:30])]
    assert outputs["label"]["data"] == expected
    probabilities = np.array(outputs["probabilities"]["data"]).reshape(30, 3)
    assert np.allclose(probabilities, reference.predict_proba(features[::5][:30]), atol=1e-4)
    assert np.allclose(outputs["score"]["data"], probabilities.max(axis=1), atol=1e-6)


async def test_concurrent_requests_are_batched_and_equal_unbatched_results(manager: ModelManager) -> None:
    rng = random.Random(7)
    iris = load_iris()
    requests = [iris_body(rng.sample(iris.data.tolist(), rng.randint(1, 3))) for _ in range(300)]
    batched = await asyncio.gather(*(routes.infer(manager, IRIS, r) for r in requests))
    unbatched = [await routes.infer(manager, "iris-alone", r) for r in requests]  # one at a time
    assert all(status == 200 for status, _ in batched)
    for (_, got), (_, want) in zip(batched, unbatched, strict=True):
        got_out, want_out = ({o["name"]: o for o in r["outputs"]} for r in (got, want))
        assert got_out["label"] == want_out["label"]
        assert got_out["probabilities"]["shape"] == want_out["probabilities"]["shape"]
        # The same rows, one ulp apart at most: the kernels block a batch of 30 rows differently.
        assert np.allclose(got_out["probabilities"]["data"], want_out["probabilities"]["data"], rtol=1e-5, atol=1e-7)
    stats = manager.model_status(IRIS).stats
    assert stats is not None and stats.requests == 300
    assert stats.largest_batch > 1 and stats.batches < 300  # batches were actually formed
    assert stats.rows == sum(len(r["inputs"][0]["data"]) // 4 for r in requests)
    unbatched_stats = manager.model_status("iris-alone").stats
    assert unbatched_stats is not None and unbatched_stats.largest_batch == 1


async def test_a_full_queue_answers_503_and_the_rest_still_succeed(manager: ModelManager) -> None:
    body = iris_body([[5.1, 3.5, 1.4, 0.2]])
    results = await asyncio.gather(*(routes.infer(manager, "iris-tiny-queue", body) for _ in range(40)))
    statuses = [status for status, _ in results]
    assert 503 in statuses and 200 in statuses
    rejected = next(body for status, body in results if status == 503)
    assert "overloaded" in rejected["error"] and "max_queue_size" in rejected["error"]
    status, _ = await routes.infer(manager, "iris-tiny-queue", body)
    assert status == 200  # no memory of the burst


async def test_bad_requests_get_400s_that_name_the_input(manager: ModelManager) -> None:
    shape = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    status, body = await routes.infer(manager, IRIS, shape)
    assert status == 400 and body["error"].startswith("input 'input': expected shape [-1, 4]")
    dtype = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
    assert await routes.infer(manager, IRIS, dtype) == (
        400,
        {"error": "input 'input': expected datatype FP32, got FP64."},
    )
    status, body = await routes.infer(manager, IRIS, {"inputs": "nope"})
    assert status == 400 and "inputs" in body["error"]
    status, body = await routes.infer(manager, IRIS, iris_body([[1, 2, 3, 4]] * 33))
    assert status == 400 and "at most 32" in body["error"]


async def test_metadata_ready_versions_and_unknown_models(manager: ModelManager) -> None:
    status, meta = routes.model_metadata(manager, IRIS)
    assert status == 200 and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["parameters"]["execution_provider"] == "CPUExecutionProvider"
    assert meta["parameters"]["labels"] == ["setosa", "versicolor", "virginica"]
    assert routes.model_metadata(manager, IRIS, "1")[0] == 200
    assert routes.model_ready(manager, IRIS) == (200, {"name": IRIS, "ready": True})
    status, body = routes.model_ready(manager, IRIS, "2")
    assert status == 404 and body["ready"] is False and "not loaded (serving version 1)" in body["error"]
    assert (await routes.infer(manager, IRIS, iris_body([[1, 2, 3, 4]]), "1"))[0] == 200
    assert (await routes.infer(manager, IRIS, iris_body([[1, 2, 3, 4]]), "x"))[0] == 400
    assert routes.model_metadata(manager, "nope")[0] == 404
    assert (await routes.infer(manager, "nope", iris_body([[1, 2, 3, 4]])))[0] == 404
    status, listing = routes.list_models(manager)
    assert status == 200 and {m["name"] for m in listing["models"]} == {IRIS, "iris-alone", "iris-tiny-queue"}
    assert routes.server_ready([manager]) == (200, {"ready": True})
    assert routes.manager_for([manager], IRIS) is manager and routes.manager_for([manager], "nope") is None
    for outside in ("../" + manager.repository.name, ".", "nope"):  # only model directories of the repository
        assert (await routes.reload_model(manager, outside))[0] == 404
