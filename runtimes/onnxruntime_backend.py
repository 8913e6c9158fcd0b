"""ONNX Runtime backend (CPU by default; CUDA/TensorRT providers when installed and asked for)."""

from __future__ import annotations

import numpy as np

from bmsdk.errors import BackendUnavailableError, ManifestError, ModelFileError
from bmsdk.manifest import TensorSpec
from bmsdk.runtimes.base import Backend, short_error

ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    # ONNX artifacts; and the TensorRT package's prepared ONNX on CPU (its numerics, not TensorRT's kernels)
    runs = {"onnx": 0, "tensorrt": 1}
    requirements = ("onnxruntime",)
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
            raise BackendUnavailableError(
                f"onnxruntime has no {unavailable} here (available: {available})",
                "install the matching onnxruntime build or use the CPU provider",
            )
        model_file = self.folder / self.manifest.model_file
        try:
            self.session = ort.InferenceSession(str(model_file), options, providers=self.requested_providers)
        except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidGraph/InvalidProtobuf types
            raise ModelFileError(
                f"onnxruntime cannot load {self.manifest.model_file}: {short_error(e)}",
                "re-create the artifact with `bmsdk convert`; custom-domain ops need their "
                "onnxruntime extension library, which bmsdk does not load",
            ) from None
        check_session_inputs(self.session, self.inputs, self.manifest.model_file)
        # onnxruntime silently falls back to CPU when a provider fails to initialise: report it
        if self.session.get_providers()[0] != self.requested_providers[0]:
            raise BackendUnavailableError(
                f"onnxruntime fell back to {self.session.get_providers()} instead of {self.requested_providers[0]}",
                "check the GPU driver and CUDA libraries",
            )
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))

    def close(self) -> None:
        self.session = None


def check_session_inputs(session, specs: list[TensorSpec], model_file: str) -> None:
    """The model file must take what bmsdk.json declares: same names, dtypes and ranks, and its fixed dims."""
    actual = {i.name: i for i in session.get_inputs()}
    declared = {s.name: s for s in specs}
    if set(actual) != set(declared):
        raise ManifestError(
            f"{model_file} takes inputs {sorted(actual)} but bmsdk.json declares {sorted(declared)}",
            "re-create the artifact with `bmsdk convert`; never edit files inside an artifact",
        )
    for name, spec in declared.items():
        real = actual[name]
        dims = list(real.shape or [])
        fixed_mismatch = any(isinstance(d, int) and isinstance(w, int) and d != w for d, w in zip(dims, spec.shape))
        if ORT_DTYPES.get(real.type, real.type) != spec.dtype or len(dims) != len(spec.shape) or fixed_mismatch:
            raise ManifestError(
                f"{model_file} input '{name}' is {real.type}{dims} but bmsdk.json declares {spec.describe()}",
                "re-create the artifact with `bmsdk convert`; never edit files inside an artifact",
            )
