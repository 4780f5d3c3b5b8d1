"""Versions and hot swap with the real iris model: a new version is loaded and switched to while
requests in flight finish on the old one; a corrupt version leaves the old one serving; the file
watcher picks up new versions on its own."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from local_runtime import inference_routes as routes
from local_runtime.errors import ModelNotReady
from local_runtime.model_manager import ModelManager, ModelState
from tests.fixtures.local_runtime.support import IRIS, build_iris, copy_model, iris_body

ROW = [[6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def iris_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_iris(tmp_path_factory.mktemp("iris-source"))


def add_version(model: Path, version: int, source: Path | None = None, content: bytes | None = None) -> None:
    target = model / f".staging-{version}"
    target.mkdir()
    if content is not None:
        (target / "model.onnx").write_bytes(content)
    else:
        assert source is not None
        shutil.copy(source / IRIS / "1" / "model.onnx", target / "model.onnx")
    target.rename(model / str(version))


async def infer_version(manager: ModelManager) -> str:
    status, body = await routes.infer(manager, IRIS, iris_body(ROW))
    assert status == 200, body
    return str(body["model_version"])


async def test_swap_keeps_requests_in_flight_on_the_old_version(iris_source: Path, tmp_path: Path) -> None:
    # Version 1 holds partial batches for up to 2 s, so requests are surely queued during the swap.
    model = copy_model(iris_source, tmp_path, IRIS, max_queue_delay_ms=2000, max_batch_size=64)
    manager = ModelManager(tmp_path)
    await manager.start()
    try:
        old = manager.get(IRIS)
        blocker = old.batcher.submit(_tensor(), rows=1)  # an idle model runs this one at once
        in_flight = [asyncio.ensure_future(routes.infer(manager, IRIS, iris_body(ROW))) for _ in range(10)]
        await asyncio.sleep(0.05)
        assert old.batcher.stats().queued >= 10

        add_version(model, 2, iris_source)
        outcome = await manager.reload(IRIS)
        assert outcome.changed and outcome.previous_version == 1 and outcome.serving_version == 2
        assert await infer_version(manager) == "2"  # new requests go to version 2 at once
        assert old.batcher.stats().queued >= 10  # ... while version 1 still holds its queue

        results = await asyncio.gather(*in_flight)
        await blocker
        assert all(status == 200 and body["model_version"] == "1" for status, body in results)
        for _ in range(100):  # the drained version is then unloaded
            try:
                old.batcher.submit(_tensor())
            except ModelNotReady:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("version 1 was not unloaded")
        status = manager.model_status(IRIS)
        assert status.serving_version == 2 and status.versions == (1, 2) and status.state is ModelState.READY
        assert routes.model_metadata(manager, IRIS)[1]["versions"] == ["1", "2"]
        unchanged = await manager.reload(IRIS)
        assert not unchanged.changed and unchanged.serving_version == 2
    finally:
        await manager.aclose()


def _tensor() -> object:
    import numpy as np

    from local_runtime.runners import TensorRequest

    return TensorRequest({"input": np.array(ROW, dtype=np.float32)}, rows=1)


async def test_a_version_that_fails_to_load_leaves_the_old_one_serving(iris_source: Path, tmp_path: Path) -> None:
    model = copy_model(iris_source, tmp_path, IRIS)
    add_version(model, 2, iris_source)
    manager = ModelManager(tmp_path)
    await manager.start()
    try:
        assert await infer_version(manager) == "2"
        add_version(model, 3, content=b"this is not an onnx file")
        status, body = await routes.reload_model(manager, IRIS)
        assert status == 500 and body["serving_version"] == 2 and not body["changed"]
        assert "version 3 failed to load" in body["error"]
        assert await infer_version(manager) == "2"
        current = manager.model_status(IRIS)
        assert current.state is ModelState.READY and current.error is not None and "version 3" in current.error
        assert routes.model_ready(manager, IRIS)[0] == 200

        (model / "3" / "model.onnx").unlink()  # the bad version is removed: nothing to reload, 2 serves
        shutil.rmtree(model / "3")
        status, body = await routes.reload_model(manager, IRIS)
        assert status == 200 and body["serving_version"] == 2
    finally:
        await manager.aclose()


async def test_a_model_that_never_loaded_is_failed_not_ready(iris_source: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "1" / "model.onnx").write_bytes(b"junk")
    (broken / "model.yaml").write_text("kind: tensor\n")
    manager = ModelManager(tmp_path)
    await manager.start()
    try:
        status = manager.model_status("broken")
        assert status.state is ModelState.FAILED and status.error is not None
        code, body = routes.model_ready(manager, "broken")
        assert code == 503 and body["ready"] is False and "FAILED" in body["error"]
        assert routes.server_ready([manager])[0] == 503
    finally:
        await manager.aclose()


async def test_the_file_watcher_loads_new_versions_and_new_models(iris_source: Path, tmp_path: Path) -> None:
    model = copy_model(iris_source, tmp_path, IRIS)
    manager = ModelManager(tmp_path, watch_interval=0.05)
    await manager.start()
    try:
        assert await infer_version(manager) == "1"
        add_version(model, 2, iris_source)
        await _until(lambda: manager.model_status(IRIS).serving_version == 2)
        assert await infer_version(manager) == "2"

        add_version(model, 3, content=b"broken")  # logged and kept as the model's error, 2 serves on
        await _until(lambda: manager.model_status(IRIS).error is not None)
        assert await infer_version(manager) == "2"

        copy_model(iris_source, tmp_path, "iris-copy")
        await _until(lambda: "iris-copy" in manager.names() and manager.model_status("iris-copy").state == "READY")
        shutil.rmtree(tmp_path / "iris-copy")
        await _until(lambda: "iris-copy" not in manager.names())
    finally:
        await manager.aclose()


async def _until(condition: object, timeout: float = 10.0) -> None:
    assert callable(condition)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
