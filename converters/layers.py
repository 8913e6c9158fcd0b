"""Source layers (torch module names) and the ops that carry them in an exported model.

A layer is a conv or linear module of `source.module`, named as in `named_modules()`. Exporters rename, transpose
and re-layout weights (ONNX MatMul takes W^T, TFLite convs are OHWI), so an exported op is matched to its layer
by its weight's values, sorted: the same multiset of numbers whatever the layout.
"""

from __future__ import annotations

import re

import numpy as np

from bmsdk.errors import UnsupportedError


def source_layers(module) -> dict[str, object]:
    """name -> module, for every conv and linear layer (the ones quantization turns to int8)."""
    import torch

    return {
        name: m
        for name, m in module.named_modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d))
    }


def _fingerprint(array: np.ndarray) -> tuple:
    flat = np.sort(np.asarray(array, dtype=np.float32).ravel())
    return flat.size, flat.tobytes()


def layer_fingerprints(module, names: list[str]) -> dict[tuple, str]:
    layers = source_layers(module)
    unknown = [n for n in names if n not in layers]
    if unknown:
        raise UnsupportedError(
            f"no conv/linear layer named {unknown[:3]} in the source",
            f"layer names look like: {', '.join(list(layers)[:4])}",
        )
    return {_fingerprint(layers[n].weight.detach().numpy()): n for n in names}


def onnx_nodes(path, module, names: list[str]) -> dict[str, str]:
    """Layer name -> the ONNX compute node (MatMul/Gemm/Conv) whose weight initializer holds that layer's weight."""
    import onnx
    from onnx import numpy_helper

    wanted = layer_fingerprints(module, names)
    sizes = {size for size, _ in wanted}
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    found = {}
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        for name in node.input[:2]:
            init = inits.get(name)
            if init is None or int(np.prod(init.dims)) not in sizes:
                continue
            layer = wanted.get(_fingerprint(numpy_helper.to_array(init)))
            if layer:
                found[layer] = node.name
    return found


def tflite_scopes(model: bytes, module, names: list[str]) -> dict[str, list[str]]:
    """Layer name -> the op scopes (ai-edge-quantizer's name for an op) of the TFLite ops using that layer's weight."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    wanted = layer_fingerprints(module, names)
    sizes = {size for size, _ in wanted}
    flat = tfl.read_model(bytearray(model))
    found: dict[str, list[str]] = {}
    for subgraph in flat.subgraphs:
        for op in subgraph.operators:
            for index in list(op.inputs)[1:2]:  # conv, depthwise conv and fully connected take the weight second
                if index < 0:
                    continue
                tensor = subgraph.tensors[index]
                data = tfl.get_tensor_data(tensor, flat.buffers)
                if data is None or data.size not in sizes or data.dtype != np.float32:
                    continue
                layer = wanted.get(_fingerprint(data))
                if layer:
                    found.setdefault(layer, []).append(tfl.get_op_scope(op, subgraph.tensors))
    missing = [n for n in names if n not in found]
    if missing:  # weights rewritten by the converter: fall back to the module path in the op's scope
        scopes = sorted({tfl.get_op_scope(op, sg.tensors) for sg in flat.subgraphs for op in sg.operators})
        found.update(match_by_scope(scopes, missing))
    return found


def _scope_path(scope: str) -> list[str]:
    """Attribute names along an op scope: "pkg.Class_attr/pkg.Other_0/...;N" -> ["attr", "0", ...]."""
    parts = scope.split(";")[0].split("/")
    return [p[p.rfind(".") + 1 :].partition("_")[2] for p in parts]


def _same_path(path: list[str], parts: list[str]) -> bool:
    """`parts` equals `path` but for container names (a part followed by an index, e.g. "layer" in "layer.0")."""
    i = 0
    for k, part in enumerate(parts):
        if i < len(path) and path[i] == part:
            i += 1
        elif not (k + 1 < len(parts) and parts[k + 1].isdigit()):
            return False
    return i == len(path)


def match_by_scope(scopes: list[str], names: list[str]) -> dict[str, list[str]]:
    """Layer name -> scopes whose module path ends at that layer (ModuleList names are missing from scopes).

    For converters that rewrite weights (TFLite folds normalisation constants into them), where values cannot match.
    Some ops cannot be found this way: LiteRT names an op after the tensor it writes, and an attention's query, key
    and value projections write tensors named after the LayerNorm folded into them.
    """
    found: dict[str, list[str]] = {}
    for scope in scopes:
        path = [p for p in _scope_path(scope) if p]
        for name in names:
            parts = name.split(".")
            if path and path[-1] == parts[-1] and any(_same_path(path, parts[k:]) for k in range(len(parts))):
                found.setdefault(name, []).append(scope)
    return found


def exact_regex(scope: str) -> str:
    return "^" + re.escape(scope) + "$"


def display(name: str) -> str:
    """A layer name without bmsdk's wrapper modules (`inner.`), as users know it from their model."""
    while name.startswith("inner."):
        name = name[len("inner.") :]
    return name
