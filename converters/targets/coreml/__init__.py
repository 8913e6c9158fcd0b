"""CoreML: an `mlprogram` (`model.mlpackage/`), fp32/fp16 and weight compression; validated on Linux by the MIL
reference executor, run by CoreML itself on macOS. Text generation: the step graph, or with --coreml-state its
stateful form (the KV cache in CoreML states)."""

from __future__ import annotations

from dataclasses import dataclass

from bmsdk.compare import FP16, FP32, INT8, WEIGHT_COMPRESSED
from bmsdk.converters.target import Capabilities, Target, TargetOptions, option

from . import build


@dataclass
class CoreMLOptions(TargetOptions):
    minimum_deployment_target: str | None = option(
        help="oldest OS the model runs on (default iOS17; int4 needs iOS18)", metavar="iOS17"
    )
    coreml_frontend: str | None = option(
        help="torch.jit.trace (default) or torch.export", choices=list(build.FRONTENDS)
    )
    granularity: str | None = option(
        help="int8/int4: weight scale granularity", choices=["per_tensor", "per_channel", "per_block"]
    )
    block_size: int | None = option(help="per_block quantization: block size (default 32)", type=int)
    weight_threshold: int | None = option(help="weights with fewer elements stay float (default 2048)", type=int)
    coreml_state: bool | None = option(
        help="text generation: keep the KV cache in CoreML states (iOS18 / macOS15; fp16 cache)", action="store_true"
    )


class CoreMLTarget(Target):
    name = "coreml"
    model_file = build.MODEL_FILE
    precisions = {
        "fp32": FP32,
        "fp16": FP16,
        "int8": INT8,
        **{p: WEIGHT_COMPRESSED for p in ("int4", "palettize4", "palettize6", "palettize8", "sparse50")},
    }
    backend = "coreml"
    requirements = ("torch", "coremltools")
    extra = "convert-coreml"
    options = CoreMLOptions
    capabilities = Capabilities(sparsity=True)
    demo_precisions = ("fp16", "int8", "palettize4")  # accuracy via the MIL reference executor

    def build(self, source, folder, precision, calibration, options, float_layers=None):
        return build.build(source, folder, precision, calibration, options.as_dict())

    def artifact_tolerance(self, manifest):
        """A stateful program's cache is fp16 (CoreML states are): fp32 is held to fp16's tolerance."""
        tolerance = self.tolerance(manifest.precision)
        if getattr(manifest.target_config, "states", None) and manifest.precision == "fp32":
            return FP16
        return tolerance
