"""PyTorch reference backend: runs a `model.pt2` (torch.export) artifact in eager PyTorch on CPU."""

from __future__ import annotations

import threading

import numpy as np

from bmsdk.errors import BackendUnavailableError, ModelFileError, SourceError
from bmsdk.runtimes.base import Backend
from bmsdk.runtimes.pt2_archive import load_exported_program


class TorchBackend(Backend):
    name = "torch"
    runs = {"torch": 0}
    requirements = ("torch",)
    thread_safe = True  # calls into the module are serialised by a lock

    def _load(self) -> None:
        try:
            import torch
        except ImportError:
            raise BackendUnavailableError("PyTorch is not installed", "pip install 'bmsdk[convert]'") from None
        self.torch = torch
        try:
            program = load_exported_program(self.folder / self.manifest.model_file)
        except SourceError as e:
            raise ModelFileError(e.problem, e.fix) from None
        self.module = program.module()
        self._lock = threading.Lock()
        if self.threads:
            torch.set_num_threads(int(self.threads))  # process-wide in PyTorch: set once, on load

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self.torch
        with self._lock, torch.inference_mode():
            result = self.module(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()})
        if isinstance(result, torch.Tensor):
            result = (result,)
        return {spec.name: t.detach().numpy() for spec, t in zip(self.outputs, result)}
