"""ExecuTorch: torch.export lowered to XNNPACK as a `.pte` program (fp32, int8 through PT2E), run by executorch."""

from __future__ import annotations

from dataclasses import dataclass

from bmsdk.compare import FP32, INT8
from bmsdk.converters.target import Capabilities, Target, TargetOptions, option

from . import build


@dataclass
class ExecuTorchOptions(TargetOptions):
    # the same field (and flag) as the onnx target's: the int8 scheme, with the same choices
    quant_scheme: str | None = option(
        help="int8 scheme (default: dynamic for text; for images static with --calibration, else dynamic)",
        choices=list(build.QUANT_SCHEMES),
    )
    max_batch: int | None = option(
        help=f"executorch: the largest batch the .pte plans memory for (default {build.DEFAULT_MAX_BATCH}; "
        "bigger batches run in parts)",
        type=int,
    )


class ExecuTorchTarget(Target):
    name = "executorch"
    model_file = build.MODEL_FILE
    precisions = {"fp32": FP32, "int8": INT8}
    backend = "executorch"
    requirements = ("torch", "executorch")
    extra = "convert-executorch"
    options = ExecuTorchOptions
    capabilities = Capabilities(calibration=("int8",))
    demo_precisions = ("int8",)  # fp32 is exact (README); one row keeps the first demo run under 25 min

    def check_request(self, source, precision, has_calibration, options):
        build.check_request(source, precision, has_calibration, options.as_dict())

    def build(self, source, folder, precision, calibration, options, float_layers=None):
        return build.build(source, folder, precision, calibration, {**options.as_dict(), "float_layers": float_layers})
