"""Runtime backends behind one interface. Each needs numpy and its own runtime only."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from bmsdk.errors import UnsupportedError
from bmsdk.manifest import Manifest

from .base import Backend, check_feeds

# backend name -> "module:class"; imported only when used so that no runtime is a hard dependency
BACKENDS = {
    "onnxruntime": "bmsdk.runtimes.onnxruntime_backend:OnnxRuntimeBackend",
    "torch": "bmsdk.runtimes.torch_backend:TorchBackend",
    "litert": "bmsdk.runtimes.litert_backend:LiteRTBackend",
    "coreml": "bmsdk.runtimes.coreml_backend:CoreMLBackend",
    "mil-reference": "bmsdk.runtimes.coreml_backend:MilReferenceBackend",
    "tensorrt": "bmsdk.runtimes.tensorrt_backend:TensorRTBackend",
}
# which backends can run which artifact target, the default first
BACKENDS_FOR_TARGET = {
    "onnx": ["onnxruntime"],
    "torch": ["torch"],
    "tflite": ["litert"],
    # CoreML itself runs on macOS only; elsewhere the numpy reference executor of the ML program is the default
    "coreml": ["coreml", "mil-reference"] if sys.platform == "darwin" else ["mil-reference", "coreml"],
    # onnxruntime runs the package's prepared ONNX on CPU (same numerics as the engine's ONNX, not TensorRT's kernels)
    "tensorrt": ["tensorrt", "onnxruntime"],
}


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise UnsupportedError(f"unknown backend '{name}'", f"use one of: {', '.join(BACKENDS)}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def open_backend(folder: Path, manifest: Manifest, backend: str | None = None, threads: int | None = None, **options) -> Backend:
    choices = BACKENDS_FOR_TARGET.get(manifest.target)
    if not choices:
        raise UnsupportedError(f"no backend runs '{manifest.target}' artifacts in this bmsdk", "upgrade bmsdk")
    name = backend or choices[0]
    if name not in choices:
        raise UnsupportedError(f"backend '{name}' cannot run a '{manifest.target}' artifact", f"use one of: {', '.join(choices)}")
    return backend_class(name)(folder, manifest, threads=threads, **options)


__all__ = ["Backend", "BACKENDS", "BACKENDS_FOR_TARGET", "backend_class", "check_feeds", "open_backend"]
