"""Converters: one module per target, each exposing `TARGET` (a TargetSpec) and `build(...)`."""

from __future__ import annotations

import importlib

from bmsdk.errors import UnsupportedError

from .base import BuildResult, TargetSpec

TARGET_MODULES = {
    "onnx": "bmsdk.converters.onnx",
    "torch": "bmsdk.converters.torch_export",
    "tflite": "bmsdk.converters.tflite",
    "coreml": "bmsdk.converters.coreml",
    "tensorrt": "bmsdk.converters.tensorrt",
}


def get_target(name: str):
    """The target's module (with TARGET and build); raises UnsupportedError for unknown targets."""
    if name not in TARGET_MODULES:
        raise UnsupportedError(f"unknown target '{name}'", f"use one of: {', '.join(TARGET_MODULES)}")
    return importlib.import_module(TARGET_MODULES[name])


__all__ = ["BuildResult", "TargetSpec", "TARGET_MODULES", "get_target"]
