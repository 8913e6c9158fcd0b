"""TFLite / LiteRT: litert-torch export (no TensorFlow), ai-edge-quantizer int8, one signature per length bucket."""

from __future__ import annotations

from dataclasses import dataclass

from bmsdk.compare import FP16, FP32, INT8
from bmsdk.converters.target import Capabilities, Target, TargetOptions, option

from . import build


@dataclass
class TFLiteOptions(TargetOptions):
    seq_buckets: str | list[int] | None = option(
        help="sequence lengths of a text model's signatures (default 16,32,64,128, capped at --max-length; text "
        "generation: prefill chunk lengths, default 1,8,32,128 capped at the cache length, 1 always kept for decode)",
        metavar="16,32,64,128",
    )


class TFLiteTarget(Target):
    name = "tflite"
    model_file = build.MODEL_FILE
    precisions = {"fp32": FP32, "fp16": FP16, "int8-dynamic": INT8, "int8": INT8}
    backend = "litert"
    requirements = ("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert")
    extra = "convert-litert"
    options = TFLiteOptions
    capabilities = Capabilities(float_fallback=True, calibration=("int8",))
    demo_precisions = ("fp32", "int8-dynamic", "int8")

    def check_request(self, source, precision, has_calibration, options):
        build.check_request(source, precision, has_calibration, options.as_dict())

    def build(self, source, folder, precision, calibration, options, float_layers=None):
        return build.build(source, folder, precision, calibration, {**options.as_dict(), "float_layers": float_layers})
