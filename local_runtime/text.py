"""Text models: tokenizing (a `tokenizer.json` through the `tokenizers` library), padding a batch of
sequences of different lengths with an attention mask, and pooling token embeddings into one vector.
Pure functions on numpy arrays, apart from reading the tokenizer file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float32]


class TextTokenizer:
    """A tokenizer.json, set to truncate at the model's maximum length and never to pad: batches are
    padded together, to their longest sequence, by `pad_batch`."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self._tokenizer: Any = Tokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length)
        self.max_length = max_length
        padding = _pad_id(self._tokenizer)
        self.pad_id = padding

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        # One text at a time: `encode_batch` wakes a thread pool that competes with onnxruntime's
        # threads for the same cores, which costs far more than it saves on sentence-sized inputs.
        return [self._tokenizer.encode(text, add_special_tokens=True).ids for text in texts]


def _pad_id(tokenizer: Any) -> int:
    for token in ("[PAD]", "<pad>", "<|pad|>"):
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return int(token_id)
    return 0


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[IntArray, IntArray]:
    """Right-pad to the longest sequence: (input_ids, attention_mask), both int64 [batch, longest]."""
    if not sequences:
        raise ValueError("nothing to pad")
    longest = max(len(s) for s in sequences)
    if longest == 0:
        raise ValueError("every sequence is empty")
    ids = np.full((len(sequences), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(sequences), longest), dtype=np.int64)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return ids, mask


def length_groups(
    lengths: Sequence[int], *, max_waste: float = 0.25, min_tokens: int = 128, pad_cost: float = 1.0
) -> list[list[int]]:
    """Indices of a batch's sequences in runs of similar length, shortest first.

    Padding a whole batch to its longest sequence wastes compute on every shorter one; splitting it
    costs matrix-multiply efficiency when the parts get small. A new run starts only when padding
    would pass `max_waste` of the run's real tokens and the run already holds `min_tokens`. A padded
    position costs `pad_cost` of a real token: all of it in most graphs, a fraction in one that runs
    only attention on the padded layout (`bert_onnx`).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for index in order:
        length = lengths[index]
        padding = (len(current) + 1) * length - (tokens + length)
        if current and tokens >= min_tokens and pad_cost * padding > max_waste * (tokens + length):
            groups.append(current)
            current, tokens = [], 0
        current.append(index)
        tokens += length
    if current:
        groups.append(current)
    return groups


def mean_pool(hidden: FloatArray, mask: IntArray) -> FloatArray:
    """The mean of each row's token embeddings over its unmasked tokens: [B, T, H] → [B, H]."""
    weights = mask.astype(np.float32)[:, :, None]
    summed = (hidden * weights).sum(axis=1)
    counts = np.clip(weights.sum(axis=1), 1e-9, None)
    return (summed / counts).astype(np.float32)


def cls_pool(hidden: FloatArray) -> FloatArray:
    return np.ascontiguousarray(hidden[:, 0, :], dtype=np.float32)


def l2_normalize(vectors: FloatArray) -> FloatArray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


def pool(output: FloatArray, mask: IntArray, mode: Literal["mean", "cls", "none"], *, normalize: bool) -> FloatArray:
    """Sentence vectors from a model output: [B, T, H] pooled by `mode`, or [B, H] as is ('none')."""
    if mode == "none":
        if output.ndim != 2:
            raise ValueError(f"pooling 'none' needs a [batch, dim] output, got shape {list(output.shape)}")
        vectors = output.astype(np.float32, copy=False)
    else:
        if output.ndim != 3:
            raise ValueError(f"pooling '{mode}' needs a [batch, tokens, dim] output, got {list(output.shape)}")
        vectors = mean_pool(output, mask) if mode == "mean" else cls_pool(output)
    return l2_normalize(vectors) if normalize else vectors
