"""ONNX Runtime backend (CPU by default; CUDA/TensorRT providers when installed and asked for)."""

from __future__ import annotations

import numpy as np

from bmsdk.errors import BackendUnavailableError

from .base import Backend


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    thread_safe = True  # InferenceSession.run may be called from several threads at once

    def __init__(self, *args, providers: list[str] | None = None, **kwargs):
        self.requested_providers = providers or ["CPUExecutionProvider"]
        super().__init__(*args, **kwargs)

    def _load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("onnxruntime is not installed", "pip install 'bmsdk[onnx]'") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
            options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        unavailable = [p for p in self.requested_providers if p not in available]
        if unavailable:
            raise BackendUnavailableError(f"onnxruntime has no {unavailable} here (available: {available})",
                                          "install the matching onnxruntime build or use the CPU provider")
        self.session = ort.InferenceSession(str(self.folder / self.manifest.model_file), options,
                                            providers=self.requested_providers)
        # onnxruntime silently falls back to CPU when a provider fails to initialise: report it
        if self.session.get_providers()[0] != self.requested_providers[0]:
            raise BackendUnavailableError(f"onnxruntime fell back to {self.session.get_providers()} instead of {self.requested_providers[0]}",
                                          "check the GPU driver and CUDA libraries")
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))

    def close(self) -> None:
        self.session = None
