"""What a worker thread does with one batch: stack the requests, run the session, split the outputs.

`TensorRunner` serves classifier and tensor models (requests are dicts of arrays sharing a batch
dimension); `EmbeddingRunner` serves text embedding models (requests are lists of texts: tokenize,
pad runs of similar length with an attention mask, run, pool, normalise). Both are plain callables, called
in a worker thread by the batcher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from local_runtime.bert_onnx import PADDING_METADATA
from local_runtime.repository import ModelSpec
from local_runtime.tensors import Signature, TensorSpec, warm_up_feed
from local_runtime.text import FloatArray, TextTokenizer, length_groups, pad_batch, pool


@dataclass(frozen=True, slots=True)
class TensorRequest:
    inputs: dict[str, np.ndarray]
    """Every model input, each with `rows` rows on its first dimension."""
    rows: int


TensorResult = dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class Classify:
    """Adds `label` (the label of each row's top score) and `score` (that score) to a batch's outputs."""

    scores_output: str
    labels: tuple[str, ...]

    def __call__(self, outputs: TensorResult) -> TensorResult:
        scores = outputs[self.scores_output]
        top = scores.argmax(axis=1)
        names = np.asarray(self.labels, dtype=object)
        return {
            "label": names[top],
            "score": np.take_along_axis(scores, top[:, None], axis=1)[:, 0].astype(np.float32),
            **{k: v for k, v in outputs.items() if k not in {"label", "score"}},
        }


def classifier_outputs(signature: Signature, scores_output: str) -> tuple[TensorSpec, ...]:
    """What a classifier answers with: label, score, the scores, then its other outputs."""
    scores = next(o for o in signature.outputs if o.name == scores_output)
    synthetic = (TensorSpec("label", "BYTES", (-1,)), TensorSpec("score", "FP32", (-1,)), scores)
    taken = {t.name for t in synthetic}
    return synthetic + tuple(o for o in signature.outputs if o.name not in taken)


class TensorRunner:
    def __init__(self, session: Any, signature: Signature, classify: Classify | None = None) -> None:
        self._session = session
        self._signature = signature
        self._output_names = [o.name for o in signature.outputs]
        self._classify = classify

    def __call__(self, items: list[TensorRequest]) -> list[TensorResult]:
        if len(items) == 1:
            feed = items[0].inputs
        else:
            feed = {name: np.concatenate([item.inputs[name] for item in items]) for name in items[0].inputs}
        outputs = dict(zip(self._output_names, self._session.run(self._output_names, feed), strict=True))
        if self._classify is not None:
            outputs = self._classify(outputs)
        if len(items) == 1:
            return [outputs]
        total = sum(item.rows for item in items)
        for name, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != total:
                raise ValueError(f"output {name} has shape {list(array.shape)}, not {total} rows")
        bounds = np.cumsum([item.rows for item in items])[:-1]
        parts = {name: np.split(array, bounds) for name, array in outputs.items()}
        return [{name: parts[name][index] for name in outputs} for index in range(len(items))]

    def warm_up(self) -> TensorResult:
        return self([TensorRequest(warm_up_feed(self._signature.inputs), rows=1)])[0]


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    vectors: FloatArray
    """[texts, dimensions], float32."""
    tokens: tuple[int, ...]
    """Tokens the model read for each text, special tokens included."""


class EmbeddingRunner:
    def __init__(self, session: Any, signature: Signature, tokenizer: TextTokenizer, spec: ModelSpec) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._spec = spec
        names = {t.name: t for t in signature.inputs}
        if "input_ids" not in names:
            raise ValueError(f"an embedding model needs an 'input_ids' input; it has {sorted(names)}")
        unknown = set(names) - {"input_ids", "attention_mask", "token_type_ids"}
        if unknown:
            raise ValueError(f"unexpected inputs for a text model: {sorted(unknown)}")
        self._inputs: dict[str, TensorSpec] = names
        output = spec.output or signature.outputs[0].name
        if signature.output(output) is None:
            raise ValueError(f"no output named {output!r}; the model has {[o.name for o in signature.outputs]}")
        self._output = output
        self._pad_cost = pad_cost(session)

    def __call__(self, items: list[list[str]]) -> list[EmbeddingResult]:
        texts = [text for item in items for text in item]
        sequences = self._tokenizer.encode(texts)
        parts = []
        for group in length_groups([len(s) for s in sequences], pad_cost=self._pad_cost):
            parts.append((group, self._run([sequences[i] for i in group])))
        dimensions = parts[0][1].shape[1]
        vectors = np.empty((len(sequences), dimensions), dtype=np.float32)
        for group, pooled in parts:
            vectors[group] = pooled
        results = []
        start = 0
        for item in items:
            end = start + len(item)
            counts = tuple(len(s) for s in sequences[start:end])
            results.append(EmbeddingResult(vectors[start:end], counts))
            start = end
        return results

    def _run(self, sequences: list[list[int]]) -> FloatArray:
        ids, mask = pad_batch(sequences, self._tokenizer.pad_id)
        feed: dict[str, np.ndarray] = {"input_ids": ids}
        if "attention_mask" in self._inputs:
            feed["attention_mask"] = mask
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        feed = {name: array.astype(self._inputs[name].dtype, copy=False) for name, array in feed.items()}
        (output,) = self._session.run([self._output], feed)
        return pool(output, mask, self._spec.pooling, normalize=self._spec.normalize)

    def warm_up(self) -> int:
        """Run once; return the embedding's dimensions."""
        (result,) = self([["Switchyard warms this model up."]])
        return int(result.vectors.shape[1])


ATTENTION_ONLY_PAD_COST = 0.25
"""What a padded position costs next to a real token in a graph that packs its token-wise layers
(`bert_onnx`). Measured on all-MiniLM-L6-v2 on 2 CPU cores: padding a batch to twice its real tokens
took 5-20% more time, to four times 35-105% (attention grows with the padded length)."""


def pad_cost(session: Any) -> float:
    """The `length_groups` pad cost for a session's graph: all of a token, unless its metadata says
    padding costs attention work only."""
    try:
        metadata = session.get_modelmeta().custom_metadata_map
    except AttributeError:  # a stand-in session
        return 1.0
    key, value = PADDING_METADATA
    return ATTENTION_ONLY_PAD_COST if metadata.get(key) == value else 1.0
