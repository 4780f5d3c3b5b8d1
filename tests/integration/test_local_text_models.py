"""Text embedding models on real onnxruntime, with a tiny BERT written by `bert_onnx` from random
weights and a WordPiece tokenizer.json (so this runs without any weights package): the graph against
a numpy reference, padding and attention masks in mixed-length batches, usage from the tokenizer."""

from __future__ import annotations

import asyncio
import base64
import struct
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from local_runtime.errors import LocalModelUnavailable
from local_runtime.execution import CPU, ExecutionChoice, SessionSettings, create_session
from local_runtime.model_manager import ModelManager
from local_runtime.onnx_provider import OnnxConfig, OnnxProvider
from local_runtime.runners import ATTENTION_ONLY_PAD_COST, pad_cost
from local_runtime.text import TextTokenizer
from providers.base import Deadlines, Endpoint, UpstreamCall
from providers.errors import UpstreamStatusError
from tests.fixtures.local_runtime.tiny_bert import (
    SHAPE,
    random_weights,
    reference_embeddings,
    reference_forward,
    write_tiny_model,
)

SENTENCES = [
    "the quick brown fox",
    "a cat",
    "switchyard routes every request to the cheap fast local model",
    "the lazy dog jumps over the fox and the bird",
    "red",
    "blue green birds walking",
]


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[ModelManager]:
    write_tiny_model(tmp_path)
    manager = ModelManager(tmp_path)
    await manager.start()
    yield manager
    await manager.aclose()


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))


async def test_onnx_graph_matches_the_numpy_reference_in_padded_batches(manager: ModelManager, tmp_path: Path) -> None:
    tokenizer = TextTokenizer(tmp_path / "tiny-bert" / "1" / "tokenizer.json", 16)
    sequences = tokenizer.encode(SENTENCES)
    assert len({len(s) for s in sequences}) > 3  # lengths differ: the batch is padded
    reference = reference_embeddings(random_weights(0), SHAPE, sequences)
    result = await manager.embed("tiny-bert", SENTENCES)  # one padded batch
    assert result.vectors.shape == (len(SENTENCES), SHAPE.hidden)
    assert cosine(result.vectors, reference).min() > 0.9999
    assert np.allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    assert result.tokens == tuple(len(s) for s in sequences)


def test_packed_graph_matches_the_reference_for_any_padding_and_zeroes_padded_positions(tmp_path: Path) -> None:
    # The graph runs its token-wise layers on the real tokens only: right padding, left padding and a
    # hole in the mask must all give Hugging Face's result (positions are columns) at the real tokens.
    directory = write_tiny_model(tmp_path)
    session = create_session(directory / "model.onnx", ExecutionChoice((CPU,), ()), SessionSettings())
    assert pad_cost(session) == ATTENTION_ONLY_PAD_COST  # the graph says padding costs attention only
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 40, size=(4, 9)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[0, 6:] = 0  # right padding
    mask[1, :3] = 0  # left padding
    mask[2, 4] = 0  # a hole
    mask[3, 1:] = 0  # one real token
    (hidden,) = session.run(
        ["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids}
    )
    expected = reference_forward(random_weights(0), SHAPE, ids, mask.astype(np.float64))
    real = mask.astype(bool)
    assert np.abs(hidden[real] - expected[real]).max() < 1e-4
    assert not hidden[~real].any()


async def test_truncation_at_the_maximum_sequence_length(manager: ModelManager) -> None:
    result = await manager.embed("tiny-bert", [" ".join(["fox"] * 50)])
    assert result.tokens == (16,)


async def test_concurrent_mixed_length_requests_batch_and_match_alone(manager: ModelManager) -> None:
    alone = [(await manager.embed("tiny-bert", [s])).vectors[0] for s in SENTENCES]
    before = manager.model_status("tiny-bert").stats
    assert before is not None
    many = [SENTENCES[i % len(SENTENCES)] for i in range(60)]
    results = await asyncio.gather(*(manager.embed("tiny-bert", [s]) for s in many))
    after = manager.model_status("tiny-bert").stats
    assert after is not None and after.largest_batch > 1 and after.batches - before.batches < 60
    for index, result in enumerate(results):
        assert float(result.vectors[0] @ alone[index % len(SENTENCES)]) > 0.9999


async def test_inputs_larger_than_a_batch_are_split_and_reassembled(manager: ModelManager) -> None:
    texts = [SENTENCES[i % len(SENTENCES)] + f" {'fox ' * (i % 5)}" for i in range(40)]  # max_batch_size 16
    result = await manager.embed("tiny-bert", texts)
    assert result.vectors.shape == (40, SHAPE.hidden) and len(result.tokens) == 40
    single = await manager.embed("tiny-bert", [texts[37]])
    assert float(result.vectors[37] @ single.vectors[0]) > 0.9999


def call(endpoint: Endpoint, body: dict[str, object], model: str = "tiny-bert") -> UpstreamCall:
    loop = asyncio.get_running_loop()
    now = loop.time()
    return UpstreamCall(
        endpoint=endpoint,
        body=body,
        model=model,
        stream=False,
        client_wants_usage=False,
        deadlines=Deadlines(now + 5, now + 30, now + 30),
        request_id="req-1",
    )


async def test_provider_serves_openai_embeddings_float_and_base64(tmp_path: Path) -> None:
    write_tiny_model(tmp_path)
    provider = OnnxProvider("local", OnnxConfig(kind="onnx", repository=str(tmp_path), watch_interval=None))
    await provider.start()
    try:
        assert provider.load().healthy
        floats = await provider.complete(call(Endpoint.EMBEDDINGS, {"model": "emb", "input": SENTENCES[:2]}))
        body = orjson.loads(floats.body)
        assert body["model"] == "tiny-bert" and len(body["data"]) == 2
        tokens = TextTokenizer(tmp_path / "tiny-bert" / "1" / "tokenizer.json", 16).encode(SENTENCES[:2])
        assert floats.usage is not None and floats.usage.prompt_tokens == sum(len(t) for t in tokens)
        assert not floats.usage.estimated
        assert body["usage"] == {
            "prompt_tokens": floats.usage.prompt_tokens,
            "total_tokens": floats.usage.prompt_tokens,
        }
        b64 = await provider.complete(
            call(Endpoint.EMBEDDINGS, {"model": "emb", "input": SENTENCES[:2], "encoding_format": "base64"})
        )
        raw = base64.b64decode(orjson.loads(b64.body)["data"][1]["embedding"])
        assert np.allclose(struct.unpack(f"<{SHAPE.hidden}f", raw), body["data"][1]["embedding"], atol=1e-7)

        with pytest.raises(UpstreamStatusError) as caught:
            await provider.complete(call(Endpoint.CHAT, {"messages": []}))
        assert caught.value.http_status == 404 and not caught.value.retryable
        with pytest.raises(UpstreamStatusError, match="dimensions") as caught:
            await provider.complete(call(Endpoint.EMBEDDINGS, {"input": "red", "dimensions": 8}))
        assert caught.value.http_status == 400
        with pytest.raises(LocalModelUnavailable) as unavailable:  # another deployment may have it: fail over
            await provider.complete(call(Endpoint.EMBEDDINGS, {"input": "red"}, model="nope"))
        assert unavailable.value.http_status == 503 and unavailable.value.retryable
    finally:
        await provider.aclose()


async def test_provider_bootstraps_the_iris_classifier_and_refuses_embeddings_from_it(tmp_path: Path) -> None:
    config = OnnxConfig(kind="onnx", repository=str(tmp_path / "models"), bootstrap=["iris"], watch_interval=None)
    provider = OnnxProvider("local", config)
    started = time.perf_counter()
    await provider.start()
    try:
        assert (tmp_path / "models" / "iris-classifier" / "1" / "model.onnx").is_file()
        assert provider.manager.names() == ["iris-classifier"] and provider.load().healthy
        with pytest.raises(UpstreamStatusError, match="classifier model, not an embedding model") as caught:
            await provider.complete(call(Endpoint.EMBEDDINGS, {"input": "x"}, model="iris-classifier"))
        assert caught.value.http_status == 400
    finally:
        await provider.aclose()
    assert time.perf_counter() - started < 30
    again = OnnxProvider("local", config)  # already imported: not built a second time
    await again.start()
    assert sorted(p.name for p in (tmp_path / "models" / "iris-classifier").iterdir()) == ["1", "model.yaml"]
    await again.aclose()


async def test_a_batch_of_very_different_lengths_runs_in_length_groups(tmp_path: Path) -> None:
    write_tiny_model(tmp_path, "wide", max_batch_size=64)
    manager = ModelManager(tmp_path)
    await manager.start()
    try:
        long = " ".join(["switchyard routes every request"] * 4)
        texts = ["red", "a cat"] * 25 + [long] * 6  # 50 short (3-4 tokens) and 6 truncated to 16
        result = await manager.embed("wide", texts)
        assert result.tokens[:2] == (3, 4) and result.tokens[-1] == 16
        short, cat, full = [(await manager.embed("wide", [t])).vectors[0] for t in ("red", "a cat", long)]
        assert float(result.vectors[0] @ short) > 0.9999 and float(result.vectors[49] @ cat) > 0.9999
        assert float(result.vectors[55] @ full) > 0.9999
    finally:
        await manager.aclose()
