"""Device buffers and a CUDA stream for the TensorRT backend: cuda-python when installed, else torch's CUDA.

Both give the same small interface: `gpu()` (name and compute capability), `upload(name, array) -> pointer`,
`output(name, shape, dtype) -> pointer`, `download(name) -> ndarray`, `stream` (the handle TensorRT enqueues on),
`synchronize()`, `close()`. Neither is imported until a TensorRT artifact is loaded.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from bmsdk.errors import BackendUnavailableError

NO_CUDA_FIX = (
    "run on a machine with an NVIDIA GPU and driver, with `pip install 'bmsdk[tensorrt]'` (cuda-python) and TensorRT; "
    "or run the packaged ONNX on CPU with --backend onnxruntime"
)


def open_cuda():
    """A memory manager for GPU 0, or BackendUnavailableError when there is no CUDA device (checked before TensorRT)."""
    problems = []
    for module, memory in (("cuda", CudaPythonMemory), ("torch", TorchMemory)):
        if importlib.util.find_spec(module) is not None:
            try:
                return memory()
            except BackendUnavailableError as e:
                problems.append(e.problem)
    raise BackendUnavailableError(
        "; ".join(problems) or "neither cuda-python nor torch is installed, so no CUDA device can be used", NO_CUDA_FIX
    )


def _cudart():
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart as runtime  # older cuda-python
        except ImportError:
            raise BackendUnavailableError(
                "cuda-python is installed without its runtime bindings", "pip install -U cuda-python"
            ) from None
    return runtime


class CudaPythonMemory:
    def __init__(self):
        try:
            self.rt = _cudart()
            err, count = self.rt.cudaGetDeviceCount()
        except BackendUnavailableError:
            raise
        except Exception as e:  # the CUDA runtime library itself failed to load
            raise BackendUnavailableError(f"the CUDA runtime cannot be loaded ({e})", NO_CUDA_FIX) from None
        if err != self.rt.cudaError_t.cudaSuccess or count < 1:
            raise BackendUnavailableError(f"no CUDA GPU is usable here (cudaGetDeviceCount: {err})", NO_CUDA_FIX)
        self._stream = self._call(self.rt.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)
        self._outputs: dict[str, np.ndarray] = {}

    def _call(self, result):
        err, *values = result
        if err != self.rt.cudaError_t.cudaSuccess:
            raise RuntimeError(f"CUDA error {err}")
        return values[0] if len(values) == 1 else values

    def gpu(self) -> dict:
        props = self._call(self.rt.cudaGetDeviceProperties(0))
        name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
        return {"name": name.strip("\x00 "), "compute_capability": f"{props.major}.{props.minor}"}

    @property
    def stream(self) -> int:
        return int(self._stream)

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                self._call(self.rt.cudaFree(ptr))
            ptr = int(self._call(self.rt.cudaMalloc(max(nbytes, 1))))
            self._buffers[name] = (ptr, nbytes)
        return ptr

    def upload(self, name: str, array: np.ndarray) -> int:
        ptr = self._buffer(name, array.nbytes)
        self._call(
            self.rt.cudaMemcpyAsync(
                ptr, array.ctypes.data, array.nbytes, self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream
            )
        )
        return ptr

    def output(self, name: str, shape, dtype) -> int:
        self._outputs[name] = np.empty(tuple(shape), dtype=dtype)
        return self._buffer(name, self._outputs[name].nbytes)

    def download(self, name: str) -> np.ndarray:
        host = self._outputs[name]
        self._call(
            self.rt.cudaMemcpyAsync(
                host.ctypes.data,
                self._buffers[name][0],
                host.nbytes,
                self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                self._stream,
            )
        )
        return host

    def synchronize(self) -> None:
        self._call(self.rt.cudaStreamSynchronize(self._stream))

    def close(self) -> None:
        for ptr, _ in self._buffers.values():
            self.rt.cudaFree(ptr)
        self._buffers.clear()
        if self._stream is not None:
            self.rt.cudaStreamDestroy(self._stream)
            self._stream = None


class TorchMemory:
    def __init__(self):
        import torch

        if not torch.cuda.is_available():
            raise BackendUnavailableError(
                "torch sees no CUDA GPU here (torch.cuda.is_available() is False)", NO_CUDA_FIX
            )
        self.torch = torch
        self._stream = torch.cuda.Stream()
        self._tensors: dict = {}

    def gpu(self) -> dict:
        props = self.torch.cuda.get_device_properties(0)
        return {"name": props.name, "compute_capability": f"{props.major}.{props.minor}"}

    @property
    def stream(self) -> int:
        return self._stream.cuda_stream

    def upload(self, name: str, array: np.ndarray) -> int:
        with self.torch.cuda.stream(self._stream):
            self._tensors[name] = self.torch.from_numpy(np.ascontiguousarray(array)).to("cuda", non_blocking=False)
        return self._tensors[name].data_ptr()

    def output(self, name: str, shape, dtype) -> int:
        torch_dtype = self.torch.from_numpy(np.empty(0, dtype=dtype)).dtype
        with self.torch.cuda.stream(self._stream):
            self._tensors[name] = self.torch.empty(tuple(shape), dtype=torch_dtype, device="cuda")
        return self._tensors[name].data_ptr()

    def download(self, name: str) -> np.ndarray:
        self._stream.synchronize()
        return self._tensors[name].cpu().numpy()

    def synchronize(self) -> None:
        self._stream.synchronize()

    def close(self) -> None:
        self._tensors.clear()
