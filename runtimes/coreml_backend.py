"""CoreML backends: `coreml` (coremltools' MLModel, macOS only; compute units selectable) and `mil-reference`
(the numpy reference executor, everywhere; `device_real = False`: its latency is not a device latency).

CoreML takes int32 where the manifest says int64 (token ids): both cast at the boundary, and return the
manifest's dtypes.
"""

from __future__ import annotations

import sys

import numpy as np

from bmsdk.errors import BackendUnavailableError, BmsdkError, ModelFileError, UnsupportedError
from bmsdk.runtimes.base import Backend, short_error
from bmsdk.runtimes.mil_executor import MilProgram

COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


def _to_coreml(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        k: v.astype(np.int32) if v.dtype.kind in "iub" else v.astype(np.float32, copy=False) for k, v in feeds.items()
    }


class CoreMLBackend(Backend):
    name = "coreml"
    # CoreML itself runs on macOS only; elsewhere the reference executor of the ML program is the default
    runs = {"coreml": 0 if sys.platform == "darwin" else 1}
    requirements = ("coremltools",)

    def __init__(self, *args, compute_units: str | None = None, **kwargs):
        self.compute_units = (compute_units or "ALL").upper()
        if self.compute_units not in COMPUTE_UNITS:
            raise UnsupportedError(
                f"unknown compute units '{compute_units}'", f"use one of: {', '.join(COMPUTE_UNITS)}"
            )
        super().__init__(*args, **kwargs)

    def _load(self) -> None:
        if sys.platform != "darwin":
            raise BackendUnavailableError(
                "CoreML runs only on macOS/iOS",
                "use backend 'mil-reference' (the numpy reference executor) on this machine",
            )
        try:
            import coremltools as ct
        except ImportError:
            raise BackendUnavailableError("coremltools is not installed", "pip install 'bmsdk[coreml]'") from None
        self.model = ct.models.MLModel(
            str(self.folder / self.manifest.model_file), compute_units=getattr(ct.ComputeUnit, self.compute_units)
        )

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.model.predict(_to_coreml(feeds))
        return {s.name: np.asarray(result[s.name]).astype(s.dtype, copy=False) for s in self.outputs}

    def close(self) -> None:
        self.model = None


class MilReferenceBackend(Backend):
    name = "mil-reference"
    runs = {"coreml": 1 if sys.platform == "darwin" else 0}
    requirements = ("coremltools",)
    device_real = False
    thread_safe = True  # every run has its own value table; the program is read-only after load

    def _load(self) -> None:
        try:
            self.program = MilProgram(self.folder / self.manifest.model_file)
        except BmsdkError:
            raise
        except Exception as e:  # noqa: BLE001 - coremltools raises many types for a damaged .mlpackage
            raise ModelFileError(
                f"coremltools cannot read {self.manifest.model_file}: {short_error(e)}",
                "re-create the artifact with `bmsdk convert --target coreml`",
            ) from None

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.program.run(_to_coreml(feeds))
        return {s.name: np.asarray(result[s.name]).astype(s.dtype, copy=False) for s in self.outputs}

    def close(self) -> None:
        self.program = None
