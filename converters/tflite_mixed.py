"""Static int8 that holds the int8 tolerance: op groups whose int8 breaks it stay float.

Per-tensor int8 activations are too coarse for some models (a fine-tuned MiniLM flipped 16% of its decisions
with every matmul in int8: its FFN outputs carry outlier channels). So after calibrating, bmsdk checks the
quantized model against the float one on held-out calibration rows. If fewer than `SHARE` of them meet the
precision's cosine tolerance, it ranks the op groups (the ops of one source module) by how much their int8 alone
costs, then adds them back to int8 from the least harmful, keeping each one only if the check still holds.
The groups left float go into the manifest.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from bmsdk.runtimes.litert_io import from_signature, to_signature

SHARE = 0.95  # of held-out rows that must meet the cosine tolerance
WEIGHTED_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")


def op_groups(model: bytes, ops: tuple[str, ...] = WEIGHTED_OPS) -> list[str]:
    """Module paths (op scopes without their tensor suffix) of the ops in `ops`, an op fused into its parent
    module's ops (e.g. an attention's query projection) counted with the parent."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    flat = tfl.read_model(bytearray(model))
    paths = set()
    for subgraph in flat.subgraphs:
        for op in subgraph.operators:
            name = tfl.TFL_OP_CODE_TO_NAME.get(flat.operatorCodes[op.opcodeIndex].builtinCode)
            if name is not None and str(getattr(name, "value", name)) in ops:
                paths.add(tfl.get_op_scope(op, subgraph.tensors).split(";")[0])
    return sorted(p for p in paths if p.rpartition("/")[0] not in paths)


def group_regex(path: str) -> str:
    """Every op scoped to the module at `path` or inside it, in every signature."""
    return "^" + re.escape(path) + "[/;]"


def group_name(path: str) -> str:
    """A module path as users know it: "pkg.BertLayer_5/pkg.BertOutput_output" -> "5.output" (wrappers dropped);
    a scope that is no module path (an op named after a signature output) as it is."""
    if "." not in path:
        return path
    parts = [p[p.rfind(".") + 1:].partition("_")[2] for p in path.split("/")]
    return ".".join(p for p in parts if p and p != "inner")


def faithfulness(float_outputs: np.ndarray, quantized: bytes, held_out: dict[str, list[dict]], min_cosine: float) -> dict:
    """How closely `quantized` follows the float model on the held-out rows: per-row cosine of all outputs."""
    got = run_rows(quantized, held_out)
    cos = np.sum(got * float_outputs, 1) / np.maximum(np.linalg.norm(got, axis=1) * np.linalg.norm(float_outputs, axis=1), 1e-12)
    return {"p5_cosine": float(np.percentile(cos, 5)), "min_cosine": float(cos.min()),
            "share_within": float(np.mean(cos >= min_cosine)), "rows": int(len(cos))}


def run_rows(model: bytes, rows: dict[str, list[dict]]) -> np.ndarray:
    """Every row through its signature; one flat vector of all outputs (sorted by name) per row."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
    result = []
    for signature, feeds in rows.items():
        runner = interpreter.get_signature_runner(signature)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        for feed in feeds:
            got = runner(**{k: to_signature(v, _tensor(ins[k])) for k, v in feed.items()})
            result.append(np.concatenate([from_signature(got[n], _tensor(outs[n]), "float32").ravel() for n in sorted(got)]))
    return np.stack(result)


def _tensor(details: dict) -> dict:
    scale, zero_point = details["quantization"]
    return {"dtype": np.dtype(details["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None}


def hold_tolerance(build: Callable[[list[str]], bytes], float_model: bytes, groups: list[str],
                   held_out: dict[str, list[dict]], min_cosine: float, rows_are: str = "held-out calibration rows") -> tuple[bytes, dict]:
    """`build(float_groups)` quantizes all but `float_groups`. A model that keeps `SHARE` of the held-out rows within
    `min_cosine` (greedy, so not always the fewest float groups), and what the search found (for the manifest)."""
    reference = run_rows(float_model, held_out)

    def share(model: bytes) -> float:
        return faithfulness(reference, model, held_out, min_cosine)["share_within"]

    model = build([])
    check = faithfulness(reference, model, held_out, min_cosine)
    report = {"criterion": f"{SHARE:.0%} of {check['rows']} {rows_are} within cosine {min_cosine} of the float model",
              "all_int8": check}
    if check["share_within"] >= SHARE:
        return model, {**report, "float_groups": []}
    cost = {}
    for group in groups:  # one group in int8, the rest float
        cost[group] = share(build([g for g in groups if g != group]))
    int8: list[str] = []
    for group in sorted(groups, key=lambda g: -cost[g]):
        trial = build([g for g in groups if g not in int8 and g != group])
        if share(trial) >= SHARE:
            int8.append(group)
            model = trial
    float_groups = [g for g in groups if g not in int8]
    if not int8:
        model = build(float_groups)
    report.update(float_groups=[group_name(g) for g in float_groups], int8_groups=len(int8), groups=len(groups),
                  result=faithfulness(reference, model, held_out, min_cosine))
    return model, report
