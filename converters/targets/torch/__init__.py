"""torch: a `torch.export` program (`model.pt2`), the reference artifact run by the torch backend."""

from __future__ import annotations

from bmsdk.compare import FP32
from bmsdk.converters.target import Target

from . import build


class TorchTarget(Target):
    name = "torch"
    model_file = build.MODEL_FILE
    precisions = {"fp32": FP32}
    backend = "torch"
    requirements = ("torch",)

    def build(self, source, folder, precision, calibration, options, float_layers=None):
        return build.build(source, folder, precision, calibration, options.as_dict())
