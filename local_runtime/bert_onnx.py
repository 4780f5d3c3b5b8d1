"""A BERT encoder (as in sentence-transformers' MiniLM models) written as an ONNX graph straight from
its weights, with numpy and the `onnx` helpers: no torch, no network.

Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64 [batch, tokens]); output
`last_hidden_state` (float32 [batch, tokens, hidden], zero at padded positions). Pooling and
normalisation happen outside the graph, as model.yaml says. The layer maths follows Hugging Face's
`BertModel` (post-LayerNorm, exact erf GELU, absolute positions 0..tokens-1, additive attention mask
of float32's lowest value).

Padding costs little: every token-wise layer (embeddings, projections, feed-forward, LayerNorms)
runs on the batch's real tokens only, packed into [real tokens, hidden] rows, and only attention,
where each sequence needs its own keys, gathers them back into the padded [batch, tokens] layout.
A padded position then costs attention work alone, so one batch can mix lengths; the model's
metadata says so (`PADDING_METADATA`) for the runner's length grouping.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file (8-byte little-endian header length, JSON header, raw data)."""
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    base = 8 + length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"tensor {name}: dtype {info['dtype']} is not supported")
        start, end = info["data_offsets"]
        array = np.frombuffer(data[base + start : base + end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = array.reshape(info["shape"]).astype(dtype)
    return tensors


@dataclass(frozen=True, slots=True)
class BertShape:
    hidden: int
    heads: int
    layers: int
    intermediate: int
    layer_norm_eps: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BertShape:
        if config.get("model_type", "bert") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            raise ValueError("only BERT encoders with GELU activations are supported")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        return cls(
            hidden=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            layers=int(config["num_hidden_layers"]),
            intermediate=int(config["intermediate_size"]),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        )


PADDING_METADATA = ("switchyard.padding", "attention-only")
"""Model metadata (key, value) saying padded positions cost attention work only, not a whole token's."""


def build_bert(weights: dict[str, np.ndarray], shape: BertShape, opset: int = 17) -> Any:
    """The encoder as an `onnx.ModelProto`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
    nodes: list[Any] = []
    initializers: list[Any] = []

    def weight(name: str, array: np.ndarray | None = None) -> str:
        value = weights[prefix + name] if array is None else array
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=value.dtype), name))
        return name

    def const(name: str, value: Any, dtype: Any = np.int64) -> str:
        return weight(name, np.asarray(value, dtype=dtype))

    counter = iter(range(1_000_000))

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{op.lower()}_{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def split(x: str, parts: int) -> list[str]:
        """Equal parts of the last axis."""
        outs = [f"split_{next(counter)}" for _ in range(parts)]
        nodes.append(helper.make_node("Split", [x], outs, axis=-1))
        return outs

    def linear(x: str, name: str, parts: Sequence[str] | None = None) -> str:
        # `parts`: layers sharing the input, run as one wider matrix (the query, key and value projections).
        # On 2-D rows onnxruntime fuses the MatMul and the bias Add into one Gemm.
        parts = parts or [name]
        kernel = np.concatenate([weights[prefix + f"{part}.weight"].T for part in parts], axis=1)
        bias = np.concatenate([weights[prefix + f"{part}.bias"] for part in parts])
        return node("Add", [node("MatMul", [x, weight(f"{name}.weight.T", kernel)]), weight(f"{name}.bias", bias)])

    def layer_norm(x: str, name: str) -> str:
        gamma, beta = weight(f"{name}.weight"), weight(f"{name}.bias")
        return node("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=shape.layer_norm_eps)

    head = shape.hidden // shape.heads
    const("flat", [-1])
    const("axis_zero", [0])
    const("zero", 0)
    const("one", 1)
    const("rows_shape", [-1, shape.hidden])
    const("hidden_width", [shape.hidden])
    const("heads_width", [shape.heads, head])
    const("mask_axes", [1, 2])
    const("last_axis", [2])
    const("sqrt_two", np.float32(np.sqrt(2)), np.float32)
    const("half", np.float32(0.5), np.float32)
    const("f_one", np.float32(1.0), np.float32)
    const("scale", np.float32(1 / np.sqrt(head)), np.float32)
    const("mask_min", np.finfo(np.float32).min, np.float32)

    # Real tokens: their flat positions in [batch * tokens] (row-major, so packed row k is the k-th real
    # token) and, for every padded position, the packed row it reads (pads read a neighbour's row: as
    # keys they are masked, as queries their result is dropped).
    dims = node("Shape", ["input_ids"])
    tokens = node("Shape", ["input_ids"], start=1, end=2)
    real_mask = node("Cast", [node("Reshape", ["attention_mask", "flat"])], to=TensorProto.BOOL)
    real = node("Squeeze", [node("NonZero", [real_mask]), "axis_zero"])
    counts = node("CumSum", [node("Cast", [real_mask], to=TensorProto.INT64), "zero"])
    to_packed = node("Max", [node("Sub", [counts, "one"]), "zero"])

    hidden_shape = node("Concat", [dims, "hidden_width"], axis=0)
    heads_shape = node("Concat", [dims, "heads_width"], axis=0)

    def packed(name: str) -> str:
        return node("Gather", [node("Reshape", [name, "flat"]), real])

    def padded(rows: str, layout: str) -> str:
        """[real tokens, hidden] → `layout`, [batch, tokens, ...]."""
        return node("Reshape", [node("Gather", [rows, to_packed]), layout])

    def heads(rows: str, perm: list[int]) -> str:
        """[real tokens, hidden] → [batch, heads, tokens, head] (perm [0, 2, 1, 3]) or [.., head, tokens]."""
        return node("Transpose", [padded(rows, heads_shape)], perm=perm)

    # Embeddings: word + position (each token's column) + token type, then LayerNorm.
    words = node("Gather", [weight("embeddings.word_embeddings.weight"), packed("input_ids")])
    where = node("Gather", [weight("embeddings.position_embeddings.weight"), node("Mod", [real, tokens])])
    types = node("Gather", [weight("embeddings.token_type_embeddings.weight"), packed("token_type_ids")])
    x = layer_norm(node("Add", [node("Add", [words, where]), types]), "embeddings.LayerNorm")

    # Additive mask [batch, 1, 1, tokens]: 0 where attended, float32's lowest value where padded.
    attended = node("Cast", [node("Cast", ["attention_mask"], to=TensorProto.BOOL)], to=TensorProto.FLOAT)
    mask = node("Unsqueeze", [node("Mul", [node("Sub", ["f_one", attended]), "mask_min"]), "mask_axes"])

    for index in range(shape.layers):
        base = f"encoder.layer.{index}"
        parts = [f"{base}.attention.self.{part}" for part in ("query", "key", "value")]
        query, key, value = split(linear(x, f"{base}.attention.self.qkv", parts), 3)
        query, key, value = heads(query, [0, 2, 1, 3]), heads(key, [0, 2, 3, 1]), heads(value, [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [query, key]), "scale"]), mask])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), value])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), "rows_shape"])
        context = node("Gather", [context, real])
        out = linear(context, f"{base}.attention.output.dense")
        x = layer_norm(node("Add", [out, x]), f"{base}.attention.output.LayerNorm")
        inner = linear(x, f"{base}.intermediate.dense")
        # Written as onnxruntime's GELU pattern, x * (1 + erf(x / sqrt 2)) * 0.5, which it fuses.
        erf = node("Erf", [node("Div", [inner, "sqrt_two"])])
        gelu = node("Mul", [node("Mul", [inner, node("Add", [erf, "f_one"])]), "half"])
        out = linear(gelu, f"{base}.output.dense")
        x = layer_norm(node("Add", [out, x]), f"{base}.output.LayerNorm")

    hidden = node("Mul", [padded(x, hidden_shape), node("Unsqueeze", [attended, "last_axis"])])
    nodes.append(helper.make_node("Identity", [hidden], ["last_hidden_state"]))
    ids = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", shape.hidden])
    graph = helper.make_graph(nodes, "bert_encoder", ids, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="switchyard")
    name, flag = PADDING_METADATA
    helper.set_model_props(model, {name: flag})
    onnx.checker.check_model(model)
    return model
