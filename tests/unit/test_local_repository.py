"""The model repository scan and model.yaml validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from local_runtime.errors import ModelConfigError
from local_runtime.repository import fingerprint, load_spec, read_model, scan_repository


def model_dir(root: Path, name: str, spec: str, versions: tuple[str, ...] = ("1",)) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "model.yaml").write_text(spec)
    for version in versions:
        (directory / version).mkdir()
        (directory / version / "model.onnx").write_bytes(b"onnx")
    return directory


CLASSIFIER = "kind: classifier\nlabels: [a, b]\n"


def test_scan_finds_models_and_numeric_versions_with_a_model_file(tmp_path: Path) -> None:
    model_dir(tmp_path, "iris", CLASSIFIER, ("1", "10", "2"))
    (tmp_path / "iris" / "3").mkdir()  # no model.onnx: not a version
    (tmp_path / "iris" / "latest").mkdir()  # not a number
    (tmp_path / "iris" / ".incoming-x").mkdir()  # an importer's staging directory
    model_dir(tmp_path, "tensor", "kind: tensor\n")
    model_dir(tmp_path, ".hidden", "kind: tensor\n")
    (tmp_path / "notes").mkdir()  # neither model.yaml nor versions
    entries = scan_repository(tmp_path)
    assert [e.name for e in entries] == ["iris", "tensor"]
    iris = entries[0]
    assert iris.versions == (1, 2, 10) and iris.latest == 10 and iris.error is None
    assert iris.spec is not None and iris.spec.labels == ("a", "b")
    assert iris.model_file(10) == tmp_path / "iris" / "10" / "model.onnx"
    assert [e.name for e in scan_repository(tmp_path, only={"tensor"})] == ["tensor"]
    assert scan_repository(tmp_path / "missing") == []


def test_model_yaml_defaults(tmp_path: Path) -> None:
    (tmp_path / "model.yaml").write_text("kind: tensor\n")
    spec = load_spec(tmp_path / "model.yaml")
    assert (spec.max_batch_size, spec.max_queue_delay_ms, spec.max_queue_size, spec.instances) == (32, 2.0, 1024, 1)
    assert spec.execution_providers is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("max_batch_size: 8\n", "kind: Field required"),
        ("kind: regressor\n", "kind: Input should be 'embedding', 'classifier' or 'tensor'"),
        ("kind: tensor\nmax_batch_size: 0\n", "max_batch_size: Input should be greater than or equal to 1"),
        ("kind: tensor\nmax_queue_delay_ms: -1\n", "max_queue_delay_ms: Input should be greater than or equal to 0"),
        ("kind: tensor\nbatch_size: 4\n", "batch_size: Extra inputs are not permitted"),
        ("kind: embedding\n", "an embedding model needs 'tokenizer'"),
        ("kind: classifier\n", "a classifier needs exactly one of 'labels' or 'labels_file'"),
        ("kind: tensor\nlabels: [a]\n", "'labels' and 'labels_file' are for classifiers only"),
        ("- just a list\n", "must be a mapping"),
        ("kind: [unclosed\n", "cannot read"),
    ],
)
def test_model_yaml_errors_name_the_field(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "model.yaml"
    path.write_text(text)
    with pytest.raises(ModelConfigError) as caught:
        load_spec(path)
    assert problem in str(caught.value)
    assert str(path) in str(caught.value)


def test_an_invalid_model_is_listed_with_its_error(tmp_path: Path) -> None:
    model_dir(tmp_path, "bad", "kind: tensor\ninstances: 0\n")
    model_dir(tmp_path, "empty", "kind: tensor\n", versions=())
    bad, empty = scan_repository(tmp_path)
    assert bad.spec is None and bad.error is not None and "instances" in bad.error
    assert bad.versions == (1,)
    assert empty.spec is not None and empty.error is not None and "no version directory" in empty.error


def test_auxiliary_files_prefer_the_version_directory(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, "text", "kind: embedding\ntokenizer: tokenizer.json\n", ("1", "2"))
    (directory / "tokenizer.json").write_text("{}")
    (directory / "2" / "tokenizer.json").write_text("{}")
    entry = read_model(directory)
    assert entry.resolve(1, "tokenizer.json") == directory / "tokenizer.json"
    assert entry.resolve(2, "tokenizer.json") == directory / "2" / "tokenizer.json"


def test_fingerprint_changes_with_a_new_version_or_changed_files(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, "iris", CLASSIFIER)
    first = fingerprint(read_model(directory))
    assert fingerprint(read_model(directory)) == first
    model_file = directory / "1" / "model.onnx"
    stat = model_file.stat()
    os.utime(model_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = fingerprint(read_model(directory))
    assert touched != first
    (directory / "2").mkdir()
    (directory / "2" / "model.onnx").write_bytes(b"v2")
    assert fingerprint(read_model(directory))[0] == 2
