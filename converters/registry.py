"""The targets bmsdk knows: its own and third parties', through the `bmsdk.targets` entry points."""

from __future__ import annotations

import functools

from bmsdk.plugins import load_plugin, plugin_names
from bmsdk.runtimes import backend_class, backend_names

from .target import Target

GROUP = "bmsdk.targets"
# the order `bmsdk --help` and `doctor` list them in; third-party targets follow, sorted
PREFERRED_ORDER = ("onnx", "tensorrt", "tflite", "coreml", "executorch", "torch")


@functools.cache
def get_target(name: str) -> Target:
    """The target named `name`; raises UnsupportedError naming the known targets for an unknown one."""
    return load_plugin(GROUP, name, "target")()


def target_names() -> list[str]:
    names = plugin_names(GROUP)
    return [n for n in PREFERRED_ORDER if n in names] + [n for n in names if n not in PREFERRED_ORDER]


def all_targets() -> list[Target]:
    return [get_target(n) for n in target_names()]


def toolchain_packages() -> list[str]:
    """Every pip package a target converts with or a backend runs on, in a stable order (doctor, bench reports)."""
    packages = [p for t in all_targets() for p in t.requirements]
    packages += [p for name in backend_names() for p in backend_class(name).requirements]
    return list(dict.fromkeys(packages))
