"""A BERT encoder (as in sentence-transformers' MiniLM models) written as an ONNX graph straight from
its weights, with numpy and the `onnx` helpers: no torch, no network.

Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64 [batch, tokens]); output
`last_hidden_state` (float32 [batch, tokens, hidden]). Pooling and normalisation happen outside the
graph, as model.yaml says. The layer maths follows Hugging Face's `BertModel` (post-LayerNorm,
exact erf GELU, additive attention mask of float32's lowest value).
"""

from __future__ import annotations

import json
import struct
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

    def linear(x: str, name: str) -> str:
        kernel = weight(f"{name}.weight.T", weights[prefix + f"{name}.weight"].T)
        return node("Add", [node("MatMul", [x, kernel]), weight(f"{name}.bias")])

    def layer_norm(x: str, name: str) -> str:
        gamma, beta = weight(f"{name}.weight"), weight(f"{name}.bias")
        return node("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=shape.layer_norm_eps)

    head = shape.hidden // shape.heads
    const("axis_zero", [0])
    const("heads_shape", [0, 0, shape.heads, head])
    const("hidden_shape", [0, 0, shape.hidden])
    const("mask_axes", [1, 2])
    const("sqrt_half", np.float32(1 / np.sqrt(2)), np.float32)
    const("half", np.float32(0.5), np.float32)
    const("f_one", np.float32(1.0), np.float32)
    const("scale", np.float32(1 / np.sqrt(head)), np.float32)
    const("mask_min", np.finfo(np.float32).min, np.float32)

    # Embeddings: word + position (0..tokens-1) + token type, then LayerNorm.
    tokens = node("Shape", ["input_ids"], start=1, end=2)
    where = node("Slice", [weight("embeddings.position_embeddings.weight"), "axis_zero", tokens, "axis_zero"])
    words = node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"])
    types = node("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])
    x = layer_norm(node("Add", [node("Add", [words, where]), types]), "embeddings.LayerNorm")

    # Additive mask [batch, 1, 1, tokens]: 0 where attended, float32's lowest value where padded.
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask = node("Mul", [node("Sub", ["f_one", mask]), "mask_min"])
    mask = node("Unsqueeze", [mask, "mask_axes"])

    for index in range(shape.layers):
        base = f"encoder.layer.{index}"

        def heads(t: str) -> str:
            return node("Transpose", [node("Reshape", [t, "heads_shape"])], perm=[0, 2, 1, 3])

        query = heads(linear(x, f"{base}.attention.self.query"))
        key = node(
            "Transpose", [node("Reshape", [linear(x, f"{base}.attention.self.key"), "heads_shape"])], perm=[0, 2, 3, 1]
        )
        value = heads(linear(x, f"{base}.attention.self.value"))
        scores = node("Add", [node("Mul", [node("MatMul", [query, key]), "scale"]), mask])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), value])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), "hidden_shape"])
        attended = linear(context, f"{base}.attention.output.dense")
        x = layer_norm(node("Add", [attended, x]), f"{base}.attention.output.LayerNorm")
        inner = linear(x, f"{base}.intermediate.dense")
        gelu = node(
            "Mul",
            [node("Mul", [inner, "half"]), node("Add", ["f_one", node("Erf", [node("Mul", [inner, "sqrt_half"])])])],
        )
        out = linear(gelu, f"{base}.output.dense")
        x = layer_norm(node("Add", [out, x]), f"{base}.output.LayerNorm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    ids = [
        helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "tokens"])
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "tokens", shape.hidden])
    graph = helper.make_graph(nodes, "bert_encoder", ids, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="switchyard")
    onnx.checker.check_model(model)
    return model
