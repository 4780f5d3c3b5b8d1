"""The model repository on disk (Triton's layout, simplified) and the `model.yaml` schema.

    models/
      iris-classifier/
        model.yaml            kind, batching, execution providers, labels / tokenizer
        labels.txt            optional, one label per line (or `labels:` inline)
        1/model.onnx
        2/model.onnx          the highest version number is served
      all-minilm-l6-v2/
        model.yaml
        tokenizer.json        or inside a version directory, which wins
        1/model.onnx

Directories whose name starts with a dot are ignored: importers build there and rename into place,
so a scan never sees a half-written version.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from local_runtime.errors import ModelConfigError

MODEL_FILE = "model.onnx"
SPEC_FILE = "model.yaml"

ModelKind = Literal["embedding", "classifier", "tensor"]


class ModelSpec(BaseModel):
    """One model's `model.yaml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ModelKind
    description: str | None = None
    max_batch_size: int = Field(default=32, ge=1, le=4096, description="Rows per batch (1: batching off).")
    max_queue_delay_ms: float = Field(default=2.0, ge=0, le=10_000, description="How long a request may wait.")
    max_queue_size: int = Field(default=1024, ge=1, le=1_000_000, description="Waiting requests before 503.")
    instances: int = Field(default=1, ge=1, le=64, description="Sessions, each run by its own thread.")
    intra_op_threads: int | None = Field(default=None, ge=1, le=256, description="onnxruntime's default if unset.")
    allow_spinning: bool = Field(
        default=False,
        description="Let onnxruntime's threads busy-wait between operators: a little lower latency on "
        "dedicated cores, stolen CPU when they are shared with the gateway.",
    )
    execution_providers: tuple[str, ...] | None = Field(
        default=None, description="Preferred order, e.g. [tensorrt, cuda, cpu]; default: GPU when visible, else CPU."
    )
    tokenizer: str | None = Field(default=None, description="tokenizer.json, relative to the version or model dir.")
    max_sequence_length: int = Field(default=512, ge=1, le=65_536)
    pooling: Literal["mean", "cls", "none"] = Field(default="mean", description="none: the output is pooled.")
    normalize: bool = True
    output: str | None = Field(default=None, description="The output holding embeddings or scores.")
    labels: tuple[str, ...] | None = None
    labels_file: str | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> ModelSpec:
        if self.kind == "embedding" and not self.tokenizer:
            raise ValueError("an embedding model needs 'tokenizer' (a tokenizer.json file)")
        if self.kind == "classifier" and (self.labels is None) == (self.labels_file is None):
            raise ValueError("a classifier needs exactly one of 'labels' or 'labels_file'")
        if self.kind != "classifier" and (self.labels is not None or self.labels_file is not None):
            raise ValueError("'labels' and 'labels_file' are for classifiers only")
        return self


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model directory as found on disk."""

    name: str
    directory: Path
    spec: ModelSpec | None
    versions: tuple[int, ...]
    """Version directories holding a model.onnx, ascending."""
    error: str | None = None
    """Why the model cannot be served (bad model.yaml, no version)."""

    @property
    def latest(self) -> int | None:
        return self.versions[-1] if self.versions else None

    def model_file(self, version: int) -> Path:
        return self.directory / str(version) / MODEL_FILE

    def resolve(self, version: int, relative: str) -> Path:
        """An auxiliary file (tokenizer, labels): the version directory's copy wins over the model's."""
        in_version = self.directory / str(version) / relative
        return in_version if in_version.exists() else self.directory / relative


def load_spec(path: Path) -> ModelSpec:
    """Read and validate a model.yaml; `ModelConfigError` lists every problem with its field."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ModelConfigError(str(path), [f"cannot read: {exc}"]) from None
    if not isinstance(data, dict):
        raise ModelConfigError(str(path), ["must be a mapping with at least 'kind'"])
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{where}: {error['msg']}" if where else error["msg"])
        raise ModelConfigError(str(path), problems) from None


def read_model(directory: Path) -> ModelEntry:
    versions = tuple(
        sorted(
            int(child.name) for child in _children(directory) if child.name.isdigit() and (child / MODEL_FILE).is_file()
        )
    )
    name = directory.name
    try:
        spec = load_spec(directory / SPEC_FILE)
    except ModelConfigError as exc:
        return ModelEntry(name, directory, None, versions, str(exc))
    error = None if versions else f"no version directory with a {MODEL_FILE} under {directory}"
    return ModelEntry(name, directory, spec, versions, error)


def scan_repository(root: Path, only: Collection[str] | None = None) -> list[ModelEntry]:
    """Every model directory under `root` (those in `only`, when given), sorted by name."""
    if not root.is_dir():
        return []
    entries = []
    for child in sorted(_children(root), key=lambda p: p.name):
        if child.name.startswith(".") or (only is not None and child.name not in only):
            continue
        if (child / SPEC_FILE).exists() or any(c.name.isdigit() for c in _children(child)):
            entries.append(read_model(child))
    return entries


Fingerprint = tuple[object, ...]


def fingerprint(entry: ModelEntry) -> Fingerprint:
    """What identifies the files that would be served: the target version and the size and mtime of
    model.yaml, the model directory's other files and the target version's files. A change means
    reload."""
    version = entry.latest
    files: list[tuple[str, int, int]] = []
    for path in [*_files(entry.directory, recursive=False), *(_version_files(entry, version))]:
        try:
            stat = path.stat()
        except OSError:
            continue
        files.append((str(path.relative_to(entry.directory)), stat.st_size, stat.st_mtime_ns))
    return (version, tuple(sorted(files)))


def _version_files(entry: ModelEntry, version: int | None) -> list[Path]:
    return [] if version is None else _files(entry.directory / str(version), recursive=True)


def _children(directory: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(directory) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []


def _files(directory: Path, *, recursive: bool) -> list[Path]:
    out: list[Path] = []
    try:
        for item in os.scandir(directory):
            if item.name.startswith("."):
                continue
            if item.is_file():
                out.append(Path(item.path))
            elif recursive and item.is_dir():
                out.extend(_files(Path(item.path), recursive=True))
    except OSError:
        pass
    return out


def read_labels(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
