"""TFLite / LiteRT: litert-torch export (no TensorFlow), ai-edge-quantizer int8, one signature per length bucket."""

from __future__ import annotations

from dataclasses import dataclass

from bmsdk.compare import FP16, FP32, INT8
from bmsdk.converters.target import Capabilities, Target, TargetOptions, option
from bmsdk.versions import package_version as version

from . import build, litertlm


@dataclass
class TFLiteOptions(TargetOptions):
    seq_buckets: str | list[int] | None = option(
        help="sequence lengths of a text model's signatures (default 16,32,64,128, capped at --max-length; text "
        "generation: prefill chunk lengths, default 1,8,32,128 capped at the cache length, 1 always kept for decode)",
        metavar="16,32,64,128",
    )
    litertlm: bool | None = option(
        help="text generation: also write model.litertlm, the bundle LiteRT-LM's engine runs (litert-torch "
        "generative export; fp32 or int8-dynamic), checked on LiteRT-LM's CPU engine",
        action="store_true",
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
        if options.litertlm:
            litertlm.check_request(source, precision)

    def build(self, source, folder, precision, calibration, options, float_layers=None):
        values = {**options.as_dict(), "float_layers": float_layers}
        result = build.build(source, folder, precision, calibration, values)
        if options.litertlm:
            result.target_config.litertlm = litertlm.export_bundle(
                source, folder, precision, result.target_config.sequence_buckets
            )
            result.toolchain["litert-lm-builder"] = version("litert-lm-builder")
        return result

    def check_bundle(self, folder, manifest, source_generator, prompts, progress):
        info = manifest.target_config.litertlm
        if info is None:
            return None
        with progress.step(f"checking {info.file} on LiteRT-LM's CPU engine ({len(prompts)} greedy prompts)"):
            return litertlm.check_bundle(folder, info, source_generator, prompts, manifest.precision)
