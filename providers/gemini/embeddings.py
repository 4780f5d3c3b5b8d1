"""OpenAI `/v1/embeddings` ↔ Gemini `embedContent` / `batchEmbedContents`
(https://ai.google.dev/api/embeddings). Pure.

One string input goes to `embedContent`; a list goes to `batchEmbedContents`, in batches of at most
`BATCH_LIMIT` requests (Google's limit per call), each request naming its model as `models/<name>`.
`dimensions` becomes `outputDimensionality`. Gemini's embed API reports no token counts, so usage is
counted with the gateway's tokenizer and marked `estimated`. `encoding_format: base64` is produced here,
as OpenAI does: little-endian float32 values, base64-encoded.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from providers import tokens
from providers.base import Usage
from providers.errors import InvalidRequest, UpstreamProtocolError

BATCH_LIMIT = 100


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts to embed; token-array inputs raise `InvalidRequest` (Gemini embeds text only)."""
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    texts = [item for item in inputs if isinstance(item, str)]
    if not texts or len(texts) != len(inputs):
        raise InvalidRequest(
            "Gemini deployments embed text: 'input' must be a string or a list of strings.", param="input"
        )
    return texts


def embed_requests(body: dict[str, Any], model: str) -> tuple[str, list[dict[str, Any]]]:
    """(method, payloads): `embedContent` with one payload for a single string, else `batchEmbedContents`
    with one payload per batch."""
    texts = embedding_inputs(body)
    name = f"models/{model.removeprefix('models/')}"
    dimensions = body.get("dimensions")

    def one(text: str) -> dict[str, Any]:
        request: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if isinstance(dimensions, int):
            request["outputDimensionality"] = dimensions
        return request

    if isinstance(body.get("input"), str):
        return "embedContent", [one(texts[0])]
    batches = [texts[i : i + BATCH_LIMIT] for i in range(0, len(texts), BATCH_LIMIT)]
    return "batchEmbedContents", [{"requests": [one(text) for text in batch]} for batch in batches]


def embedding_vectors(method: str, responses: list[Any]) -> list[list[float]]:
    """The vectors of the answers to `embed_requests`, in input order."""
    vectors: list[list[float]] = []
    for response in responses:
        if not isinstance(response, dict):
            raise UpstreamProtocolError("upstream returned JSON that is not an object")
        items = [response.get("embedding")] if method == "embedContent" else response.get("embeddings")
        for item in items if isinstance(items, list) else [None]:
            values = item.get("values") if isinstance(item, dict) else None
            if not isinstance(values, list):
                raise UpstreamProtocolError("upstream returned an embedding response without values")
            vectors.append(values)
    return vectors


def embeddings_to_openai(
    body: dict[str, Any], vectors: list[list[float]], *, model: str
) -> tuple[dict[str, Any], Usage]:
    """OpenAI's embedding list for the request `body`, and its estimated usage."""
    texts = embedding_inputs(body)
    if len(vectors) != len(texts):
        raise UpstreamProtocolError(f"upstream returned {len(vectors)} embeddings for {len(texts)} inputs")
    as_base64 = body.get("encoding_format") == "base64"
    data = [
        {"object": "embedding", "index": index, "embedding": _base64(vector) if as_base64 else vector}
        for index, vector in enumerate(vectors)
    ]
    prompt_tokens = sum(tokens.count_text(text) for text in texts)
    usage = Usage(prompt_tokens=prompt_tokens, estimated=True)
    out = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return out, usage


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
