"""Tensor signatures: a model's inputs and outputs with Open Inference Protocol datatypes and shapes
(-1 for a dimension of any size), read from an onnxruntime session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# ONNX type string → (OIP datatype, numpy dtype)
ONNX_TYPES: dict[str, tuple[str, Any]] = {
    "tensor(bool)": ("BOOL", np.bool_),
    "tensor(uint8)": ("UINT8", np.uint8),
    "tensor(uint16)": ("UINT16", np.uint16),
    "tensor(uint32)": ("UINT32", np.uint32),
    "tensor(uint64)": ("UINT64", np.uint64),
    "tensor(int8)": ("INT8", np.int8),
    "tensor(int16)": ("INT16", np.int16),
    "tensor(int32)": ("INT32", np.int32),
    "tensor(int64)": ("INT64", np.int64),
    "tensor(float16)": ("FP16", np.float16),
    "tensor(float)": ("FP32", np.float32),
    "tensor(double)": ("FP64", np.float64),
    "tensor(string)": ("BYTES", np.object_),
}
NUMPY_DTYPES: dict[str, Any] = {oip: dtype for oip, dtype in ONNX_TYPES.values()}


def oip_datatype(array: np.ndarray) -> str:
    if array.dtype.kind in {"U", "S", "O"}:
        return "BYTES"
    for name, dtype in NUMPY_DTYPES.items():
        if array.dtype == np.dtype(dtype):
            return name
    raise ValueError(f"no Open Inference Protocol datatype for numpy {array.dtype}")


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    """-1 for a dynamic dimension."""

    @property
    def dtype(self) -> Any:
        return NUMPY_DTYPES[self.datatype]

    def describe(self) -> str:
        return f"{self.name} ({self.datatype} {list(self.shape)})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def batchable(self) -> bool:
        """Every input and output has a dynamic first dimension, so requests can be stacked on it."""
        return all(t.shape and t.shape[0] == -1 for t in (*self.inputs, *self.outputs))

    def input(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)

    def output(self, name: str) -> TensorSpec | None:
        return next((t for t in self.outputs if t.name == name), None)


def _spec(arg: Any) -> TensorSpec:
    datatype = ONNX_TYPES.get(arg.type, (None,))[0]
    if datatype is None:
        raise ValueError(f"tensor {arg.name} has type {arg.type}, which the protocol cannot carry")
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or []))
    return TensorSpec(arg.name, datatype, shape)


def signature_of(session: Any) -> Signature:
    return Signature(
        inputs=tuple(_spec(i) for i in session.get_inputs()),
        outputs=tuple(_spec(o) for o in session.get_outputs()),
    )


def warm_up_feed(inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """One row of zeros (empty strings) per input, dynamic dimensions set to 1."""
    feed: dict[str, np.ndarray] = {}
    for spec in inputs:
        shape = tuple(1 if d == -1 else d for d in spec.shape)
        if spec.datatype == "BYTES":
            feed[spec.name] = np.full(shape, "", dtype=object)
        else:
            feed[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return feed
