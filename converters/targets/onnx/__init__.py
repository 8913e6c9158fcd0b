"""ONNX: dynamo export with dynamic batch/sequence, onnxslim, fp16, int8 (dynamic or static QDQ), int4 weights
(MatMulNBits), run by onnxruntime."""

from __future__ import annotations

from dataclasses import dataclass

from bmsdk.compare import FP16, FP32, INT4, INT8
from bmsdk.converters.target import Capabilities, Target, TargetOptions, option

from . import build


@dataclass
class OnnxOptions(TargetOptions):
    quant_scheme: str | None = option(
        help="int8 scheme, dynamic or static (calibrated); the default is per target (onnx: dynamic for text, "
        "static for images)",
        choices=list(build.QUANT_SCHEMES),
    )
    opset: int | None = option(help=f"ONNX opset (default {build.DEFAULT_OPSET})", type=int)
    int4_block_size: int | None = option(help="int4: input channels per quantization group (default 32)", type=int)
    int4_method: str | None = option(
        help="int4: hqq (default; fits scales without data) or rtn (round to nearest)", choices=list(build.INT4_METHODS)
    )


class OnnxTarget(Target):
    name = "onnx"
    model_file = build.MODEL_FILE
    precisions = {"fp32": FP32, "fp16": FP16, "int8": INT8, "int4": INT4}
    backend = "onnxruntime"
    requirements = ("torch", "onnx", "onnxscript", "onnxslim", "onnxruntime")
    options = OnnxOptions
    capabilities = Capabilities(float_fallback=True, calibration=("int8",))
    demo_precisions = ("fp32", "int8")
    demo_generation_precisions = ("fp32", "int8", "int4")

    def check_request(self, source, precision, has_calibration, options):
        build.check_request(source, precision, has_calibration, options.as_dict())

    def build(self, source, folder, precision, calibration, options, float_layers=None):
        return build.build(source, folder, precision, calibration, {**options.as_dict(), "float_layers": float_layers})
