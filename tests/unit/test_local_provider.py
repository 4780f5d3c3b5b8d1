"""The `kind: onnx` provider's pure parts: config, OpenAI embeddings body, input checks."""

from __future__ import annotations

import base64
import struct

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from local_runtime.onnx_provider import OnnxConfig, _texts, embeddings_body
from providers.errors import UpstreamStatusError


def test_config() -> None:
    config = OnnxConfig.model_validate({"kind": "onnx", "repository": "models", "watch_interval": "500ms"})
    assert config.watch_interval == 0.5 and config.enabled and config.models is None and config.bootstrap == []
    assert OnnxConfig.model_validate({"kind": "onnx", "repository": "m", "watch_interval": None}).watch_interval is None
    assert not OnnxConfig.model_validate({"kind": "onnx", "repository": "m", "enabled": ""}).enabled
    with pytest.raises(ValidationError):
        OnnxConfig.model_validate({"kind": "onnx", "repository": "m", "bootstrap": ["gpt"]})
    with pytest.raises(ValidationError):
        OnnxConfig.model_validate({"kind": "onnx"})


def test_embeddings_body_float_and_base64() -> None:
    vectors = np.array([[0.25, -0.5, 1.0], [0.1, 0.2, 0.3]], dtype=np.float32)
    floats = orjson.loads(embeddings_body(vectors, "minilm", 7, base64_format=False))
    assert floats["object"] == "list" and floats["model"] == "minilm"
    assert floats["usage"] == {"prompt_tokens": 7, "total_tokens": 7}
    assert [d["index"] for d in floats["data"]] == [0, 1] and floats["data"][0]["object"] == "embedding"
    assert floats["data"][0]["embedding"] == [0.25, -0.5, 1.0]
    assert floats["data"][1]["embedding"] == [0.1, 0.2, 0.3]  # float32 values in their shortest form
    encoded = orjson.loads(embeddings_body(vectors, "minilm", 7, base64_format=True))
    raw = base64.b64decode(encoded["data"][1]["embedding"])
    assert struct.unpack("<3f", raw) == tuple(vectors[1].tolist())


def test_inputs_must_be_text() -> None:
    assert _texts("hello") == ["hello"]
    assert _texts(["a", "b"]) == ["a", "b"]
    for bad in ([1, 2, 3], [[1, 2]], [], None, ["ok", 3]):
        with pytest.raises(UpstreamStatusError) as caught:
            _texts(bad)
        assert caught.value.http_status == 400 and caught.value.param == "input" and not caught.value.retryable
    with pytest.raises(UpstreamStatusError, match="empty string"):
        _texts(["a", ""])
