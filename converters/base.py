"""What a target declares, and the argument check every conversion runs before any work starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bmsdk.errors import UnsupportedError
from bmsdk.sections import Compression, TargetConfig


@dataclass(frozen=True)
class TargetSpec:
    name: str
    precisions: tuple[str, ...]
    backend: str  # the runtime that validates the artifact
    model_file: str
    tasks: tuple[str, ...] = ("text-classification", "image-classification", "feature-extraction")
    options: tuple[str, ...] = ()  # target-specific keyword options it accepts
    # (backend, what it runs) that checks the artifact's numerics where `backend` cannot run here, e.g. the
    # TensorRT target's prepared ONNX on onnxruntime CPU; the validation result says that it was a stand-in
    stand_in: tuple[str, str] | None = None

    def check(self, precision: str, options: dict[str, Any]) -> None:
        if precision not in self.precisions:
            raise UnsupportedError(f"target '{self.name}' does not support precision '{precision}'",
                                   f"use one of: {', '.join(self.precisions)}")
        unknown = sorted(k for k, v in options.items() if v is not None and k not in self.options)
        if unknown:
            raise UnsupportedError(f"target '{self.name}' does not take the option(s) {unknown}",
                                   f"options it takes: {', '.join(self.options) or 'none'}")

    def check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise UnsupportedError(f"target '{self.name}' does not support task '{task}'", f"tasks it supports: {', '.join(self.tasks)}")


@dataclass
class BuildResult:
    """What a target's build step reports for the manifest."""

    model_file: str
    compression: Compression = field(default_factory=Compression)
    target_config: TargetConfig | None = None
    toolchain: dict = field(default_factory=dict)
