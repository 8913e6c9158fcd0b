"""What a target is: one class per target package (`converters/targets/<name>/`) that declares everything about it.

A target declares, in one place: its precisions and the tolerance each is validated against (an unknown precision
is an error), a typed options dataclass whose fields are also its CLI flags, the pip packages it needs to convert
(read by `bmsdk doctor`; tests check the extra in pyproject.toml lists them), the runtime backend that runs its
artifacts, and its capabilities. Targets are found through the `bmsdk.targets` entry points (see registry.py).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from bmsdk.errors import UnsupportedError
from bmsdk.sections import Compression, TargetConfig, Tolerance

from .speed import FloatTwin


def option(default: Any = None, help: str = "", **argparse_kwargs) -> Any:
    """A field of a target's options dataclass; `help` and `argparse_kwargs` (choices, type, metavar) make its flag."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass
class TargetOptions:
    """Base of every target's options. Each field `some_name` is the flag `--some-name` in `bmsdk convert`."""

    @classmethod
    def flag(cls, name: str) -> str:
        return "--" + name.replace("_", "-")

    def uncovered_inputs(self, manifest, feeds: dict) -> list[str]:
        """Inputs the artifact was not built for although the manifest accepts them (TensorRT: outside a profile)."""
        return []

    def check_bundle(self, folder: Path, manifest, source_generator, prompts: list[list[int]], progress):
        """A bundle the artifact carries for another engine, checked on that engine against the source's greedy
        decoding (tflite --litertlm: LiteRT-LM); a BundleCheck, or None where there is none (the default)."""
        return None

    @classmethod
    def add_arguments(cls, group, taken: set[str]) -> None:
        """Add this target's flags to an argparse group; a flag another target already added is shared."""
        for f in dataclasses.fields(cls):
            if f.name in taken:
                continue
            taken.add(f.name)
            kwargs = {k: v for k, v in f.metadata.items() if k != "help"}
            group.add_argument(cls.flag(f.name), dest=f.name, default=None, help=f.metadata.get("help"), **kwargs)

    @classmethod
    def from_values(cls, target: str, values: dict[str, Any]) -> TargetOptions:
        """The options from keyword values (None = not given); a value this target does not take is an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k, v in values.items() if v is not None and k not in names)
        if unknown:
            raise UnsupportedError(
                f"target '{target}' does not take the option(s) {unknown}",
                f"options it takes: {', '.join(sorted(names)) or 'none'}",
            )
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Capabilities:
    float_fallback: bool = False  # can keep named source layers in float (the accuracy-budget search uses it)
    sparsity: bool = False  # turns zeroed weights (magnitude / 2:4 pruning) into smaller or faster models
    calibration: tuple[str, ...] = ()  # precisions that use calibration data


@dataclass
class BuildResult:
    """What a target's build step reports for the manifest."""

    model_file: str
    compression: Compression = field(default_factory=Compression)
    target_config: TargetConfig | None = None
    toolchain: dict = field(default_factory=dict)
    float_twin: FloatTwin | None = None  # a quantized build's float model, timed against it by validation


class Target:
    """Subclasses set the class attributes and implement `build`; `check_request` refuses bad requests early."""

    name: ClassVar[str]
    model_file: ClassVar[str]
    precisions: ClassVar[dict[str, Tolerance]]  # precision -> tolerance (FP32, FP16, INT8 from bmsdk.compare)
    backend: ClassVar[str]  # the runtime backend that runs and validates the artifact
    requirements: ClassVar[tuple[str, ...]]  # pip packages the conversion needs
    extra: ClassVar[str] = "convert"  # the bmsdk extra that installs them: pip install 'bmsdk[EXTRA]'
    options: ClassVar[type[TargetOptions]] = TargetOptions
    capabilities: ClassVar[Capabilities] = Capabilities()
    tasks: ClassVar[tuple[str, ...] | None] = None  # the tasks it supports; None: every task
    demo_precisions: ClassVar[tuple[str, ...]] = ()  # the rows this target adds to the demo's table (make demo)
    demo_generation_precisions: ClassVar[tuple[str, ...]] = ()  # its rows in the demo's text-generation table
    # (backend, what it runs) that checks the artifact's numerics where `backend` cannot run here, e.g. the
    # TensorRT target's prepared ONNX on onnxruntime CPU; the validation result says it was a stand-in
    stand_in: ClassVar[tuple[str, str] | None] = None

    def tolerance(self, precision: str) -> Tolerance:
        self.check_precision(precision)
        return self.precisions[precision]

    def artifact_tolerance(self, manifest) -> Tolerance:
        """The tolerance a built artifact is validated against: its precision's, unless the target knows better
        from the artifact (a CoreML stateful program keeps its KV cache in fp16 whatever the precision)."""
        return self.tolerance(manifest.precision)

    def check_precision(self, precision: str) -> None:
        if precision not in self.precisions:
            raise UnsupportedError(
                f"target '{self.name}' does not support precision '{precision}'",
                f"use one of: {', '.join(self.precisions)}",
            )

    def parse_options(self, values: dict[str, Any] | TargetOptions | None) -> TargetOptions:
        if isinstance(values, self.options):
            return values
        return self.options.from_values(self.name, dict(values or {}))

    def check_task(self, task: str) -> None:
        if self.tasks is not None and task not in self.tasks:
            raise UnsupportedError(
                f"target '{self.name}' does not support task '{task}'", f"tasks it supports: {', '.join(self.tasks)}"
            )

    def check_request(self, source, precision: str, has_calibration: bool, options: TargetOptions) -> None:
        """Refuse, before any export work, what build() would refuse later. Default: nothing more to check."""

    def build(
        self,
        source,
        folder: Path,
        precision: str,
        calibration: list[dict] | None,
        options: TargetOptions,
        float_layers: list[str] | None = None,
    ) -> BuildResult:
        raise NotImplementedError

    def uncovered_inputs(self, manifest, feeds: dict) -> list[str]:
        """Inputs the artifact was not built for although the manifest accepts them (TensorRT: outside a profile)."""
        return []

    def check_bundle(self, folder: Path, manifest, source_generator, prompts: list[list[int]], progress):
        """A bundle the artifact carries for another engine, checked on that engine against the source's greedy
        decoding (tflite --litertlm: LiteRT-LM); a BundleCheck, or None where there is none (the default)."""
        return None

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, taken: set[str]) -> None:
        fields = [f for f in dataclasses.fields(cls.options) if f.name not in taken]
        if fields:
            cls.options.add_arguments(parser.add_argument_group(f"{cls.name} options"), taken)

    def __repr__(self) -> str:
        return f"<target {self.name}>"
