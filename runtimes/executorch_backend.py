"""ExecuTorch backend: runs a `model.pte` (XNNPACK-delegated) through `executorch.runtime` on CPU.

- torch is needed at run time: the executorch pip wheel's pybinding links libtorch and imports torch itself, and
  `Method.execute` takes torch tensors only (numpy arrays are converted here, and the outputs back).
- Memory is planned for the largest shape the program was exported with; the program's own metadata gives those
  bounds. A bigger batch is run in parts of at most that size; any other dim over its bound is refused.
- `threads`: the ExecuTorch (XNNPACK) threadpool is global to the process, so setting it changes every loaded
  program; it is set on load through executorch's `_unsafe_reset_threadpool` (an experimental API).
- Thread safety: a loaded method owns its planned memory, so calls are serialised with a lock (thread-safe).
"""

from __future__ import annotations

import threading

import numpy as np

from bmsdk.errors import BackendUnavailableError, InputError, ManifestError, ModelFileError
from bmsdk.runtimes.base import Backend, short_error

INSTALL = "pip install 'bmsdk[executorch]'"
REMAKE = "re-create the artifact with `bmsdk convert --target executorch`; never edit files inside an artifact"
# c10 ScalarType codes, as TensorInfo.dtype() returns them
SCALAR_TYPES = {0: "uint8", 1: "int8", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 11: "bool"}
_THREADS_LOCK = threading.Lock()


def set_threads(threads: int) -> None:
    """Resize the process-global ExecuTorch threadpool (every loaded program shares it)."""
    import executorch.extension.pybindings.portable_lib as portable

    with _THREADS_LOCK:
        if int(portable._threadpool_get_thread_count()) != int(threads):
            portable._unsafe_reset_threadpool(int(threads))


class ExecuTorchBackend(Backend):
    name = "executorch"
    runs = {"executorch": 0}
    requirements = ("executorch", "torch")  # the wheel does not declare torch, but needs it
    thread_safe = True  # calls into the method are serialised by a lock

    def _load(self) -> None:
        try:
            import torch
            from executorch.runtime import Runtime
        except ImportError as e:
            raise BackendUnavailableError(
                f"the executorch runtime is not available ({short_error(e, 120)}); its Python wheel needs torch",
                INSTALL,
            ) from None
        self.torch = torch
        if self.threads:
            set_threads(int(self.threads))
        path = self.folder / self.manifest.model_file
        try:
            program = Runtime.get().load_program(path)
            if "forward" not in program.method_names:
                raise ValueError(f"it has no 'forward' method (methods: {sorted(program.method_names)})")
            self.method = program.load_method("forward")
            meta = self.method.metadata
            self.max_shapes = [tuple(meta.input_tensor_meta(i).sizes()) for i in range(meta.num_inputs())]
            dtypes = [SCALAR_TYPES.get(int(meta.input_tensor_meta(i).dtype())) for i in range(meta.num_inputs())]
            num_outputs = meta.num_outputs()
        except Exception as e:  # noqa: BLE001 - the pybinding raises RuntimeError / ValueError with ExecuTorch codes
            raise ModelFileError(
                f"executorch cannot load {self.manifest.model_file}: {short_error(e)}", REMAKE
            ) from None
        self._program = program  # holds the method's program alive
        self._check_program(dtypes, num_outputs)
        self._lock = threading.Lock()

    def _check_program(self, dtypes: list, num_outputs: int) -> None:
        """The .pte must take what bmsdk.json declares: as many inputs, of the same dtypes and ranks."""
        if len(self.max_shapes) != len(self.inputs) or num_outputs != len(self.outputs):
            raise ManifestError(
                f"{self.manifest.model_file} takes {len(self.max_shapes)} inputs and gives {num_outputs} outputs, "
                f"but bmsdk.json declares {len(self.inputs)} and {len(self.outputs)}",
                REMAKE,
            )
        for spec, shape, dtype in zip(self.inputs, self.max_shapes, dtypes):
            fixed = [(w, d) for w, d in zip(spec.shape, shape) if isinstance(w, int)]
            if dtype != spec.dtype or len(shape) != len(spec.shape) or any(w != d for w, d in fixed):
                raise ManifestError(
                    f"{self.manifest.model_file} input '{spec.name}' is {dtype}{list(shape)} but bmsdk.json "
                    f"declares {spec.describe()}",
                    REMAKE,
                )

    @property
    def max_dims(self) -> dict[str, int]:
        """The largest size of each named dim that the program's memory is planned for."""
        bounds: dict[str, int] = {}
        for spec, shape in zip(self.inputs, self.max_shapes):
            for want, hi in zip(spec.shape, shape):
                if isinstance(want, str):
                    bounds[want] = min(bounds.get(want, hi), int(hi))
        return bounds

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        bounds = self.max_dims
        for spec in self.inputs:
            for want, got in zip(spec.shape, feeds[spec.name].shape):
                if isinstance(want, str) and want != "batch" and got > bounds[want]:
                    raise InputError(
                        f"input '{spec.name}' has {want}={got}, more than this .pte was built for ({bounds[want]})",
                        f"truncate it to {bounds[want]}, or convert again with a larger bound "
                        "(text models: --max-length)",
                    )
        limit = bounds.get("batch")
        first = next((s for s in self.inputs if "batch" in s.shape), None)
        batch = feeds[first.name].shape[first.shape.index("batch")] if limit and first else 0
        if not limit or batch <= limit:
            return self._execute(feeds)
        if not all("batch" in s.shape for s in self.inputs + self.outputs):
            raise InputError(f"a batch of {batch} is more than this .pte was built for ({limit})", "pass fewer inputs")
        parts = []
        for start in range(0, batch, limit):
            part = {s.name: _take(feeds[s.name], s.shape.index("batch"), start, limit) for s in self.inputs}
            parts.append(self._execute(part))
        return {s.name: np.concatenate([p[s.name] for p in parts], axis=s.shape.index("batch")) for s in self.outputs}

    def _execute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[s.name])) for s in self.inputs]
        with self._lock:
            results = self.method.execute(tensors)
        results = [r for r in results if isinstance(r, torch.Tensor)]
        return {s.name: r.detach().numpy().copy() for s, r in zip(self.outputs, results)}

    def close(self) -> None:
        self.method = self._program = None


def _take(array: np.ndarray, axis: int, start: int, size: int) -> np.ndarray:
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, start + size)
    return array[tuple(index)]
