"""`bmsdk doctor`: which converters and runtimes are installed, their versions, and whether a GPU is present."""

from __future__ import annotations

import platform
import shutil
import subprocess
from importlib import metadata

RUNTIMES = ("onnxruntime", "onnxruntime-gpu", "ai-edge-litert", "tflite-runtime", "coremltools", "tensorrt", "cuda-python", "torch")
CONVERTERS = ("torch", "transformers", "onnx", "onnxscript", "onnxslim", "torch-pruning", "litert-torch", "ai-edge-quantizer",
              "coremltools", "nvidia-modelopt", "onnx-graphsurgeon", "ml_dtypes", "polygraphy")
# target -> packages it needs to convert (all of them)
TARGET_NEEDS = {"onnx": ("torch", "onnx", "onnxscript", "onnxslim", "onnxruntime"), "torch": ("torch",),
                "tflite": ("torch", "litert-torch", "ai-edge-quantizer", "ai-edge-litert"),
                "coreml": ("torch", "coremltools"),
                "tensorrt": ("torch", "onnx", "onnxscript", "onnxslim", "onnxruntime", "nvidia-modelopt", "onnx-graphsurgeon",
                             "ml_dtypes")}
# target -> packages its own runtime needs to run (build) engines here, besides an NVIDIA GPU
RUN_NEEDS = {"tensorrt": ("tensorrt",)}


def version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def gpu() -> str | None:
    """The NVIDIA GPUs that nvidia-smi lists, without importing any CUDA library."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().replace("\n", "; ") or None if out.returncode == 0 else None


def diagnose() -> dict:
    from bmsdk import __version__

    versions = {p: version(p) for p in set(RUNTIMES + CONVERTERS)}
    targets = {}
    for target, needs in TARGET_NEEDS.items():
        missing = [p for p in needs if not versions.get(p)]
        targets[target] = (not missing, ", ".join(missing))
    device = gpu()
    runs = {}
    for target, needs in RUN_NEEDS.items():
        missing = [p for p in needs if not versions.get(p)] + ([] if device else ["an NVIDIA GPU"])
        if not (versions.get("cuda-python") or versions.get("torch")):
            missing.append("cuda-python")
        runs[target] = (not missing, ", ".join(missing))
    return {"bmsdk": __version__, "python": platform.python_version(), "platform": f"{platform.system()} {platform.machine()}",
            "gpu": device, "runtimes": {p: versions[p] for p in RUNTIMES}, "converters": {p: versions[p] for p in CONVERTERS},
            "targets": targets, "run_targets": runs}
