"""Building and caching TensorRT engines from a package's prepared ONNX (TensorRT 10.x / 11 Python API).

An engine is tied to one GPU model and one TensorRT version, so it is keyed by both and by the hash of the build
config (ONNX checksum, profiles, workspace, sparsity). Engines are stored as TensorRT serializes them, with no
header (so `trtexec --loadEngine` accepts them); what they are lives in the key and in bmsdk.json.
Every function here that touches TensorRT is only called after a CUDA device was found (see cuda_memory.open_cuda):
the lean runtime was seen to segfault without a driver.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from bmsdk.errors import BackendUnavailableError, ConversionError, InputError
from bmsdk.sections import BuildConfig, Profile

TRT_FIX = "install TensorRT 10.x or newer from NVIDIA's index (`pip install tensorrt`) on the GPU machine"


def import_tensorrt():
    try:
        import tensorrt as trt
    except Exception as e:  # PyPI's placeholder package raises at import when the real wheels are absent
        raise BackendUnavailableError(
            f"TensorRT cannot be imported ({type(e).__name__}: {str(e).strip()[:200]})", TRT_FIX
        ) from None
    if int(trt.__version__.split(".")[0]) < 10:
        raise BackendUnavailableError(
            f"TensorRT {trt.__version__} is too old (strongly typed networks and the v3 "
            "execution API need 10.x or newer)",
            TRT_FIX,
        )
    return trt


def config_hash(onnx_sha256: str, build: BuildConfig) -> str:
    """Identifies what an engine is built from: the ONNX file and the build settings (unset ones as null, so
    that hashes are those of schema v1)."""
    text = json.dumps({"onnx_sha256": onnx_sha256, **dataclasses.asdict(build)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def engine_key(gpu: dict, trt_version: str, cfg_hash: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", gpu["name"]).strip("-").lower()
    return f"{name}-sm{gpu['compute_capability'].replace('.', '')}-trt{trt_version}-{cfg_hash}"


def cache_dir(override: str | Path | None = None) -> Path:
    """Where built engines are kept: `override`, else $BMSDK_ENGINE_CACHE, else $BMSDK_CACHE/engines
    (~/.cache/bmsdk)."""
    if override:
        path = Path(override)
    elif os.environ.get("BMSDK_ENGINE_CACHE"):
        path = Path(os.environ["BMSDK_ENGINE_CACHE"])
    else:
        path = Path(os.environ.get("BMSDK_CACHE", Path.home() / ".cache" / "bmsdk")) / "engines"
    path.mkdir(parents=True, exist_ok=True)
    return path


def build_engine(trt, onnx_path: Path, build: BuildConfig, timing_cache: Path | None = None) -> bytes:
    """Parse the ONNX into a strongly typed network, add the optimization profile, build and serialize the engine.

    `build` gives the profiles, the workspace limit (or None) and the sparsity ("2:4" or None).
    The timing cache at `timing_cache` is read when present and written back (merged) after the build.
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)  # always on in TensorRT 11
    network = builder.create_network(1 << int(strongly_typed) if strongly_typed is not None else 0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ConversionError(
            f"TensorRT's ONNX parser refused {onnx_path.name}: {errors[:500]}",
            "check the package's op-support report (bmsdk inspect) and re-convert",
        )
    config = builder.create_builder_config()
    if build.workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, build.workspace_bytes)
    if build.sparsity:
        config.set_flag(trt.BuilderFlag.SPARSE_WEIGHTS)
    profile = builder.create_optimization_profile()
    for name, shapes in build.profiles.items():
        profile.set_shape(name, shapes.min, shapes.opt, shapes.max)
    config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.is_file() else b""
    config.set_timing_cache(config.create_timing_cache(cache_bytes), ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ConversionError(
            "TensorRT failed to build the engine (see the TensorRT log above)",
            "check the GPU memory and the --workspace limit, then retry",
        )
    if timing_cache:
        write_atomic(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    return bytes(memoryview(serialized))


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary sibling and rename, so a concurrent reader never sees half an engine."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def outside(profiles: dict[str, Profile], feeds: dict[str, np.ndarray]) -> list[str]:
    """Each input whose shape falls outside its profile, described; empty when every feed fits."""
    problems = []
    for name, p in profiles.items():
        if name not in feeds:
            continue
        shape = list(np.shape(feeds[name]))
        if len(shape) != len(p.min) or any(not lo <= d <= hi for d, lo, hi in zip(shape, p.min, p.max)):
            problems.append(f"'{name}' has shape {shape}, outside the profile {p.min}..{p.max}")
    return problems


def check_within(profiles: dict[str, Profile], feeds: dict[str, np.ndarray]) -> None:
    problems = outside(profiles, feeds)
    if problems:
        raise InputError(
            f"input shape outside the engine's optimization profile: {'; '.join(problems)}",
            "split the batch, or re-convert with --shapes covering it",
        )
