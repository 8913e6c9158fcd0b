"""TensorRT backend: runs a `tensorrt` package's engine on an NVIDIA GPU.

On load it finds a CUDA device first (cuda-python, else torch) and only then imports TensorRT, so a machine without
a GPU gets a BackendUnavailableError instead of a crash. The engine comes from, in order: the package (when it was
built for this GPU, TensorRT version and build config), the engine cache, or a build from the package's ONNX that is
then cached. Inputs may take any shape within the optimization profile; outputs come back as numpy arrays.
Not thread-safe: one execution context per backend (open one backend per thread).
"""

from __future__ import annotations

import shutil

import numpy as np

from bmsdk.errors import InputError, ManifestError
from bmsdk.runtimes.base import Backend
from bmsdk.runtimes.cuda_memory import open_cuda
from bmsdk.runtimes.tensorrt_engine import (
    build_engine,
    cache_dir,
    check_within,
    engine_key,
    import_tensorrt,
    write_atomic,
)
from bmsdk.sections import TensorRTConfig


class TensorRTBackend(Backend):
    name = "tensorrt"
    runs = {"tensorrt": 0}
    requirements = ("tensorrt",)  # CUDA itself comes from cuda-python or torch
    thread_safe = False

    def __init__(self, *args, engine_cache=None, **kwargs):
        self.engine_cache = engine_cache
        self.memory = None
        super().__init__(*args, **kwargs)

    def _load(self) -> None:
        config = self.manifest.target_config
        if not isinstance(config, TensorRTConfig):
            raise ManifestError(
                "this artifact has no TensorRT build config", "re-create it with `bmsdk convert --target tensorrt`"
            )
        self.config, self.build = config, config.build
        self.memory = open_cuda()  # BackendUnavailableError here, before any TensorRT object exists
        try:
            self._load_engine(config.config_hash)
        except BaseException:
            self.close()
            raise

    def _load_engine(self, cfg_hash: str) -> None:
        self.trt = import_tensorrt()
        self.gpu = self.memory.gpu()
        self.key = engine_key(self.gpu, self.trt.__version__, cfg_hash)
        self.engine_origin, data = self._engine_bytes()
        self.runtime = self.trt.Runtime(self.trt.Logger(self.trt.Logger.WARNING))  # kept alive as long as the engine
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise ManifestError(
                f"TensorRT could not load the engine ({self.engine_origin})",
                f"delete {cache_dir(self.engine_cache)}/{self.key}.engine and load again to rebuild it",
            )
        self.context = self.engine.create_execution_context()
        io_names = {self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)}
        self.engine_inputs = [s.name for s in self.inputs if s.name in io_names]  # TensorRT drops inputs nothing uses
        self.output_names = [s.name for s in self.outputs]

    def _engine_bytes(self) -> tuple[str, bytes]:
        packaged = self.config.engine
        if packaged and packaged.key == self.key and (self.folder / packaged.file).is_file():
            return "packaged", (self.folder / packaged.file).read_bytes()
        cache = cache_dir(self.engine_cache)
        cached = cache / f"{self.key}.engine"
        if cached.is_file():
            return "cache", cached.read_bytes()
        timing = cache / f"{self.key.rsplit('-', 1)[0]}.timing"  # one timing cache per GPU and TensorRT version
        shipped = self.config.timing_cache
        if not timing.is_file() and shipped and packaged and packaged.key.rsplit("-", 1)[0] == timing.stem:
            shutil.copyfile(self.folder / shipped, timing)
        data = build_engine(self.trt, self.folder / self.manifest.model_file, self.build, timing)
        write_atomic(cached, data)
        return "built", data

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_within(self.build.profiles, feeds)
        ctx, engine = self.context, self.engine
        for name in self.engine_inputs:
            array = np.ascontiguousarray(feeds[name], dtype=self.trt.nptype(engine.get_tensor_dtype(name)))
            if not ctx.set_input_shape(name, array.shape):
                profile = self.build.profiles.get(name)
                raise InputError(
                    f"TensorRT refused the shape {list(array.shape)} for input '{name}'",
                    f"use shapes within the profile {profile.min}..{profile.max}"
                    if profile
                    else "use shapes within the optimization profile",
                )
            ctx.set_tensor_address(name, self.memory.upload(name, array))
        for name in self.output_names:
            shape = tuple(ctx.get_tensor_shape(name))
            ctx.set_tensor_address(
                name, self.memory.output(name, shape, self.trt.nptype(engine.get_tensor_dtype(name)))
            )
        if not ctx.execute_async_v3(self.memory.stream):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the TensorRT log)")
        host = {name: self.memory.download(name) for name in self.output_names}
        self.memory.synchronize()
        return {s.name: host[s.name].astype(s.dtype, copy=False) for s in self.outputs}

    def close(self) -> None:
        self.context = self.engine = self.runtime = None
        if self.memory is not None:
            self.memory.close()
            self.memory = None
