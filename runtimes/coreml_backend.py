"""CoreML backends: `coreml` (coremltools' MLModel, macOS only; compute units selectable) and `mil-reference`
(the numpy reference executor, everywhere; `device_real = False`: its latency is not a device latency).

CoreML takes int32 where the manifest says int64 (token ids): both cast at the boundary, and return the
manifest's dtypes. A stateful text-generation program (`target_config.states`) runs through the step-graph
contract's adapter (coreml_state.py), which keeps the KV cache in the program's states.
"""

from __future__ import annotations

import sys

import numpy as np

from bmsdk.errors import BackendUnavailableError, BmsdkError, ModelFileError, UnsupportedError
from bmsdk.runtimes.base import Backend, short_error
from bmsdk.runtimes.coreml_state import StatefulSteps
from bmsdk.runtimes.mil_executor import MilProgram

COMPUTE_UNITS = ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE")


def _to_coreml(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {
        k: v.astype(np.int32) if v.dtype.kind in "iub" else v.astype(np.float32, copy=False) for k, v in feeds.items()
    }


def _states(manifest) -> dict[str, list[int]] | None:
    return getattr(manifest.target_config, "states", None) or None


def _one_row(manifest) -> bool:
    """A program converted at a fixed batch of 1 (target_config.flexible_shapes batch [1, 1]: some graphs trace
    only so); its backends run a batch row by row."""
    return (getattr(manifest.target_config, "flexible_shapes", None) or {}).get("batch") == [1, 1]


def _row_by_row(run, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    batch = len(next(iter(feeds.values())))
    if batch == 1:
        return run(feeds)
    rows = [run({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(batch)]
    return {k: np.concatenate([np.asarray(r[k]) for r in rows]) for k in rows[0]}


class _MLModelProgram:
    """coremltools' MLModel as the stateful program the adapter drives (macOS 15: MLState)."""

    def __init__(self, model):
        self.model = model

    def make_state(self):
        return self.model.make_state()

    def run(self, feeds, state):
        return self.model.predict(feeds, state=state)

    def write_state(self, state, name, value):
        state.write_state(name, np.ascontiguousarray(value, np.float16))


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
        states = _states(self.manifest)
        self.steps = StatefulSteps(_MLModelProgram(self.model), states) if states else None

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = _to_coreml(feeds)
        if self.steps:
            result = self.steps(feeds)
        else:
            result = _row_by_row(self.model.predict, feeds) if _one_row(self.manifest) else self.model.predict(feeds)
        return {s.name: np.asarray(result[s.name]).astype(s.dtype, copy=False) for s in self.outputs}

    def close(self) -> None:
        self.model = None


class MilReferenceBackend(Backend):
    name = "mil-reference"
    runs = {"coreml": 1 if sys.platform == "darwin" else 0}
    requirements = ("coremltools",)
    device_real = False
    thread_safe = True  # every run has its own value table; the program is read-only after load (states: locked)

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
        self.steps = None
        if self.program.states:
            states = _states(self.manifest)
            if states is None or set(states) != set(self.program.states):
                raise UnsupportedError(
                    f"{self.manifest.model_file} keeps states {sorted(self.program.states)} that the manifest's "
                    "target_config.states does not describe",
                    "re-create the artifact with `bmsdk convert --target coreml --coreml-state`",
                )
            self.steps = StatefulSteps(self.program, states)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = _to_coreml(feeds)
        if self.steps:
            result = self.steps(feeds)
        else:
            result = _row_by_row(self.program.run, feeds) if _one_row(self.manifest) else self.program.run(feeds)
        return {s.name: np.asarray(result[s.name]).astype(s.dtype, copy=False) for s in self.outputs}

    def close(self) -> None:
        self.program = None
