"""Precision in the ONNX, the TensorRT 11 way, with NVIDIA Model Optimizer (ModelOpt).

TensorRT 11 builds every network strongly typed: it runs each tensor in the type the ONNX gives it. So int8/fp8
become explicit QuantizeLinear/DequantizeLinear pairs (`modelopt.onnx.quantization.quantize`, calibrated on CPU),
and fp16 becomes a mixed-precision graph (`modelopt.onnx.autocast.convert_to_mixed_precision`) whose inputs and
outputs stay fp32.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from bmsdk.converters.targets.onnx.build import COMPUTE_OPS, float_compute_nodes
from bmsdk.errors import ConversionError, DataError, UnsupportedError
from bmsdk.sections import Calibration, Quantization

CALIBRATION_METHODS = ("max", "entropy")
QDQ_MODES = ("int8", "fp8")


def to_qdq(
    src: Path,
    dst: Path,
    mode: str,
    calibration: list[dict] | None,
    method: str | None,
    exclude_ops: list[str] | None,
    keep_nodes: list[str] | None = None,
) -> Quantization:
    """Explicit Q/DQ (`mode` int8 or fp8) calibrated on `calibration`; the rest of the graph, `exclude_ops` op types
    and the nodes named in `keep_nodes` run in fp16."""
    if not calibration:
        raise DataError(
            f"TensorRT {mode} needs calibration data for its Q/DQ scales",
            "pass --calibration DATA (a few hundred representative inputs)",
        )
    method = method or "max"
    if method not in CALIBRATION_METHODS:
        raise UnsupportedError(
            f"unknown calibration method '{method}'", f"use one of: {', '.join(CALIBRATION_METHODS)}"
        )
    from modelopt.onnx.quantization import quantize

    _quiet_modelopt()
    try:
        with _ort_quantization_restored():
            quantize(
                onnx_path=str(src),
                quantize_mode=mode,
                calibration_data_reader=_Reader(calibration),
                calibration_method=method,
                calibration_eps=["cpu"],
                op_types_to_exclude=exclude_ops or None,
                nodes_to_exclude=[re.escape(n) for n in keep_nodes or []] or None,
                high_precision_dtype="fp16",
                output_path=str(dst),
                log_level="ERROR",
            )
    except Exception as e:
        raise ConversionError(
            f"ModelOpt {mode} quantization failed: "
            f"{str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__}",
            "try --calibration-method max, or --exclude-ops with the failing op type",
        ) from e
    examples = int(sum(next(iter(b.values())).shape[0] for b in calibration))
    return Quantization(
        scheme=f"{mode}-qdq (ModelOpt)",
        format="explicit QuantizeLinear/DequantizeLinear",
        weights=f"{mode} per-channel",
        activations=f"{mode} per-tensor",
        other_ops="fp16",
        calibration=Calibration(method=method, batches=len(calibration), examples=examples, provider="cpu"),
        excluded_op_types=list(exclude_ops or []),
        kept_in_fp16=list(keep_nodes or []),
        float_nodes=float_compute_nodes(dst),
    )


def to_fp16(src: Path, dst: Path, exclude_ops: list[str] | None, feeds: dict[str, np.ndarray]) -> Quantization:
    """Mixed fp16: ModelOpt AutoCast keeps numerically risky nodes in fp32; inputs and outputs stay fp32.

    AutoCast runs the model once to find the ranges; `feeds` are shaped as the model needs (its own random
    inputs give every dynamic dim the same size, which a graph with related dims such as a KV cache rejects)."""
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision

    _quiet_modelopt()
    try:
        with tempfile.TemporaryDirectory(prefix="bmsdk-autocast-") as tmp, _ort_quantization_restored():
            data = Path(tmp) / "inputs.npz"
            np.savez(data, **feeds)
            model = convert_to_mixed_precision(
                onnx_path=str(src),
                low_precision_type="fp16",
                keep_io_types=True,
                op_types_to_exclude=exclude_ops or None,
                calibration_data=str(data),
            )
    except Exception as e:
        raise ConversionError(
            "ModelOpt AutoCast fp16 failed: "
            f"{str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__}",
            "try --exclude-ops with the failing op type",
        ) from e
    model.graph.ClearField("value_info")  # AutoCast's inferred shapes can be wrong for dynamic dims; re-inferred
    onnx.save(model, str(dst))
    return Quantization(
        scheme="fp16 (ModelOpt AutoCast)",
        io_types="float32",
        excluded_op_types=list(exclude_ops or []),
        float_nodes=fp32_compute_nodes(dst),
    )


def fp32_compute_nodes(path: Path) -> list[str]:
    """Compute nodes (MatMul/Gemm/Conv) whose output is still fp32 in a mixed-precision model."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.output]}
    return [
        f"{n.op_type}:{n.name}"
        for n in model.graph.node
        if n.op_type in COMPUTE_OPS and types.get(n.output[0]) == onnx.TensorProto.FLOAT
    ]


@contextlib.contextmanager
def _ort_quantization_restored():
    """ModelOpt patches onnxruntime.quantization in place (modelopt's ort_patching and ort_utils): methods of its
    calibrators and quantizers, and the op registries that quantize_static reads. A later onnxruntime static int8
    in the same process then failed or quantized another op set, so put back every class attribute and the contents
    of every module-level dict, list and set."""
    import onnxruntime.quantization  # noqa: F401  (loads the modules to snapshot)

    modules = [m for n, m in list(sys.modules.items()) if n.startswith("onnxruntime.quantization") and m]
    classes = {
        v
        for m in modules
        for v in vars(m).values()
        if isinstance(v, type) and v.__module__.startswith("onnxruntime.quantization")
    }
    saved = [(cls, dict(vars(cls))) for cls in classes]
    containers = [
        (c, copy.copy(c))
        for m in modules
        for k, c in vars(m).items()
        if type(c) in (dict, list, set) and not k.startswith("__")
    ]
    try:
        yield
    finally:
        for cls, attrs in saved:
            for key, value in attrs.items():
                if key not in ("__dict__", "__weakref__") and vars(cls).get(key) is not value:
                    setattr(cls, key, value)
            for key in [k for k in vars(cls) if k not in attrs]:
                delattr(cls, key)
        for container, contents in containers:
            container.clear()
            if isinstance(container, list):
                container.extend(contents)
            else:
                container.update(contents)


def _quiet_modelopt() -> None:
    for name in ("modelopt", "modelopt.onnx", "modelopt.onnx.autocast"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _Reader:
    """The calibration reader ModelOpt's calibrators call: get_next, get_first and rewind over feed dicts.

    (onnxruntime's quantize_static gets the plain one in converters/onnx.py: given `rewind`, it fails.)"""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self.batches = batches
        self._it = iter(batches)

    def get_next(self):
        return next(self._it, None)

    def get_first(self):
        return self.batches[0]

    def rewind(self):
        self._it = iter(self.batches)
