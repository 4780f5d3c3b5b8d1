"""Loading one version of one model: sessions on the chosen execution providers, the kind's runner,
checks of the model's signature against its model.yaml, and a warm-up run per instance.

`prepare()` is blocking (it reads files and runs the model) and is called in a thread;
`LoadedModel.serve()` then adds the batcher on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runtime.batcher import Batcher
from local_runtime.execution import (
    Environment,
    ExecutionChoice,
    ExecutionReport,
    SessionSettings,
    choose_providers,
    report,
)
from local_runtime.repository import Fingerprint, ModelEntry, ModelSpec, read_labels
from local_runtime.runners import Classify, EmbeddingRunner, TensorRunner, classifier_outputs
from local_runtime.tensors import Signature, TensorSpec, signature_of
from local_runtime.text import TextTokenizer

log = logging.getLogger("switchyard.local_runtime")

SessionFactory = Callable[[Path, ExecutionChoice, SessionSettings], Any]
"""(model file, providers, thread settings) → an onnxruntime InferenceSession (or a stand-in)."""


@dataclass(frozen=True, slots=True)
class PreparedModel:
    name: str
    version: int
    spec: ModelSpec
    signature: Signature
    execution: ExecutionReport
    runners: tuple[Callable[[list[Any]], Any], ...]
    max_batch_size: int
    """The spec's, or 1 when the model has a fixed batch dimension."""
    batchable: bool
    """Every input and output has a dynamic first dimension (the batch)."""
    inputs: dict[str, TensorSpec]
    outputs: tuple[TensorSpec, ...]
    """The outputs clients see (for classifiers: label, score, the scores, then the rest)."""
    labels: tuple[str, ...] | None
    scores_output: str | None
    dimensions: int | None
    fingerprint: Fingerprint
    load_seconds: float

    def serve(self) -> LoadedModel:
        batcher: Batcher[Any, Any] = Batcher(
            f"{self.name}-v{self.version}",
            self.runners,
            max_batch_size=self.max_batch_size,
            max_queue_delay=self.spec.max_queue_delay_ms / 1000,
            max_queue_size=self.spec.max_queue_size,
        )
        return LoadedModel(self, batcher, time.time())


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One version, serving. Requests go through `batcher`."""

    prepared: PreparedModel
    batcher: Batcher[Any, Any]
    loaded_at: float

    @property
    def name(self) -> str:
        return self.prepared.name

    @property
    def version(self) -> int:
        return self.prepared.version

    @property
    def spec(self) -> ModelSpec:
        return self.prepared.spec


def prepare(
    entry: ModelEntry,
    version: int,
    environment: Environment,
    session_factory: SessionFactory,
    fingerprint: Fingerprint,
) -> PreparedModel:
    """Load and warm up `version` of `entry`; any exception means the version cannot serve."""
    started = time.perf_counter()
    spec = entry.spec
    if spec is None:
        raise ValueError(entry.error or "no valid model.yaml")
    label = f"{entry.name} v{version}"
    choice = choose_providers(spec.execution_providers, environment)
    model_file = entry.model_file(version)
    settings = SessionSettings(spec.intra_op_threads, spec.allow_spinning)
    sessions = [session_factory(model_file, choice, settings) for _ in range(spec.instances)]
    execution = report(choice, sessions[0].get_providers(), label)
    signature = signature_of(sessions[0])
    labels: tuple[str, ...] | None = None
    scores_output: str | None = None
    dimensions: int | None = None
    outputs = signature.outputs
    runners: list[Any]
    if spec.kind == "embedding":
        assert spec.tokenizer is not None
        tokenizer = TextTokenizer(entry.resolve(version, spec.tokenizer), spec.max_sequence_length)
        embedding_runners = [EmbeddingRunner(s, signature, tokenizer, spec) for s in sessions]
        warm_dimensions = [r.warm_up() for r in embedding_runners]  # every instance, not just one
        dimensions = warm_dimensions[0]
        runners = embedding_runners
    else:
        tensor_runners = [TensorRunner(s, signature) for s in sessions]
        warm_outputs = [r.warm_up() for r in tensor_runners]
        runners = tensor_runners
        if spec.kind == "classifier":
            labels = (
                spec.labels if spec.labels is not None else read_labels(entry.resolve(version, spec.labels_file or ""))
            )
            scores_output = _scores_output(spec, signature)
            classes = warm_outputs[0][scores_output].shape[-1]
            if classes != len(labels):
                raise ValueError(
                    f"output {scores_output} has {classes} classes but model.yaml names {len(labels)} labels"
                )
            classify = Classify(scores_output, labels)
            runners = [TensorRunner(s, signature, classify) for s in sessions]
            runners[0].warm_up()
            outputs = classifier_outputs(signature, scores_output)
    max_batch_size = spec.max_batch_size
    batchable = signature.batchable
    if not batchable and max_batch_size > 1:
        log.warning("model %s has a fixed batch dimension: batching is off", label)
        max_batch_size = 1
    seconds = time.perf_counter() - started
    log.info("loaded model %s in %.2fs on %s", label, seconds, execution.primary)
    return PreparedModel(
        name=entry.name,
        version=version,
        spec=spec,
        signature=signature,
        execution=execution,
        runners=tuple(runners),
        max_batch_size=max_batch_size,
        batchable=batchable,
        inputs={t.name: t for t in signature.inputs},
        outputs=outputs,
        labels=labels,
        scores_output=scores_output,
        dimensions=dimensions,
        fingerprint=fingerprint,
        load_seconds=seconds,
    )


def _scores_output(spec: ModelSpec, signature: Signature) -> str:
    if spec.output is not None:
        found = signature.output(spec.output)
        if found is None:
            raise ValueError(f"no output named {spec.output!r}; the model has {[o.name for o in signature.outputs]}")
        return found.name
    for output in signature.outputs:
        if output.datatype in {"FP32", "FP64", "FP16"} and len(output.shape) == 2:
            return output.name
    raise ValueError("a classifier needs a [batch, classes] float output (name it with 'output' in model.yaml)")
