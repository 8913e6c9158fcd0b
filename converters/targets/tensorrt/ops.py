"""Static check that TensorRT's ONNX parser can take a model: its opset, its operators, and its Q/DQ zero points.

The operator table (`ops.json`) is the parser's published support matrix for one TensorRT version; the
check needs no GPU and no TensorRT, so it runs on every conversion.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

TABLE = Path(__file__).with_name("ops.json")
STANDARD_DOMAINS = ("", "ai.onnx")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


@lru_cache(maxsize=1)
def op_table() -> dict:
    return json.loads(TABLE.read_text())


def check_model(path: Path) -> dict:
    """What TensorRT's parser would refuse in the ONNX model at `path`; `passed` is True when nothing.

    Reports the op types used, unsupported ops (named, with their node count), ops from non-standard domains (they
    need a TensorRT plugin), an opset outside the parser's range, and Q/DQ nodes with a non-zero zero point.
    """
    import onnx

    model = onnx.load(str(path))
    table = op_table()
    supported = set(table["supported"])
    opset = next((o.version for o in model.opset_import if o.domain in STANDARD_DOMAINS), None)
    counts, custom = Counter(), Counter()
    for node in _all_nodes(model.graph):
        if node.domain in STANDARD_DOMAINS:
            counts[node.op_type] += 1
        else:
            custom[f"{node.domain}::{node.op_type}"] += 1
    unsupported = {op: n for op, n in counts.items() if op not in supported}
    problems = [
        f"{op} ({n} node{'s' if n > 1 else ''}) is not supported by the TensorRT {table['tensorrt_version']} ONNX "
        "parser"
        for op, n in sorted(unsupported.items())
    ]
    problems += [
        f"{op} ({n} node{'s' if n > 1 else ''}) is a custom op: it needs a TensorRT plugin"
        for op, n in sorted(custom.items())
    ]
    if opset is None or not table["opset_min"] <= opset <= table["opset_max"]:
        problems.append(f"opset {opset} is outside the parser's range {table['opset_min']}-{table['opset_max']}")
    problems += _nonzero_zero_points(model)
    return {
        "tensorrt_version": table["tensorrt_version"],
        "table": table["source"],
        "opset": opset,
        "op_types": dict(sorted(counts.items())),
        "unsupported": sorted(unsupported) + sorted(custom),
        "problems": problems,
        "passed": not problems,
    }


def _all_nodes(graph):
    """Nodes of the graph and of its subgraphs (If/Loop/Scan bodies)."""
    import onnx

    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _all_nodes(g)


def _nonzero_zero_points(model) -> list[str]:
    """TensorRT quantization is symmetric: Q/DQ zero points must be 0."""
    from onnx import numpy_helper

    constants = {i.name: i for i in model.graph.initializer}
    constants.update(
        {
            n.output[0]: a.t
            for n in model.graph.node
            if n.op_type == "Constant"
            for a in n.attribute
            if a.name == "value"
        }
    )
    bad = []
    for node in model.graph.node:
        if node.op_type in QDQ_OPS and len(node.input) > 2 and node.input[2]:
            tensor = constants.get(node.input[2])
            if tensor is not None and np.any(numpy_helper.to_array(tensor).astype(np.float32) != 0):
                bad.append(node.name or node.output[0])
    return (
        [
            f"{len(bad)} Q/DQ node(s) have a non-zero zero point (TensorRT needs symmetric quantization): "
            f"{', '.join(bad[:5])}"
        ]
        if bad
        else []
    )
