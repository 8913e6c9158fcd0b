"""TensorRT: a prepared ONNX with precision in the graph (ModelOpt Q/DQ, fp16) plus the engine build config; the
engine is built on an NVIDIA GPU (here or on first load). Validated on onnxruntime CPU where no GPU is present."""

from __future__ import annotations

from dataclasses import dataclass

from bmsdk.compare import FP16, FP32, INT8
from bmsdk.converters.target import Capabilities, Target, TargetOptions, option
from bmsdk.runtimes.tensorrt_engine import outside

from . import build


@dataclass
class TensorRTOptions(TargetOptions):
    shapes: list[str] | dict | None = option(
        help="optimization profile range of a dynamic dim (batch=1:8:32) or a whole input "
        "(input=1x3x224x224:8x3x224x224:32x3x224x224); repeat per name",
        action="append",
        metavar="NAME=MIN:OPT:MAX",
    )
    sparsity: str | None = option(
        help="let the engine use 2:4 sparse kernels where weights allow", choices=list(build.SPARSITY)
    )
    workspace: float | None = option(help="builder workspace limit in GB", type=float, metavar="GB")
    calibration_method: str | None = option(
        help="int8/fp8: ModelOpt calibration (default max)", choices=["max", "entropy"]
    )
    exclude_ops: str | list[str] | None = option(
        help="op types kept out of quantization / fp16 (e.g. Softmax,Gemm)", metavar="OP,OP"
    )
    opset: int | None = option(help="ONNX opset (default 18)", type=int)


class TensorRTTarget(Target):
    name = "tensorrt"
    model_file = build.MODEL_FILE
    precisions = {"fp32": FP32, "fp16": FP16, "int8": INT8, "fp8": INT8}
    backend = "tensorrt"
    requirements = (
        "torch",
        "onnx",
        "onnxscript",
        "onnxslim",
        "onnxruntime",
        "nvidia-modelopt",
        "onnx-graphsurgeon",
        "ml_dtypes",
    )
    extra = "convert-tensorrt"
    options = TensorRTOptions
    capabilities = Capabilities(sparsity=True, calibration=("int8", "fp8"))
    stand_in = ("onnxruntime", "TensorRT-prepared ONNX, engine not built")

    def build(self, source, folder, precision, calibration, options, float_layers=None):
        return build.build(source, folder, precision, calibration, options.as_dict())

    def uncovered_inputs(self, manifest, feeds):
        config = manifest.target_config
        return outside(config.build.profiles, feeds) if config is not None and config.build.profiles else []
