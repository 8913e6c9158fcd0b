"""Did it accelerate? A quantized artifact timed against its float twin on the runtime that validates it.

Whether int8 pays depends on the model and the CPU (DESIGN §5: static int8 of a depthwise CNN ran 4x slower than
fp32 on this machine's onnxruntime and LiteRT). A target that has the float model in hand while it builds a
quantized one (onnx, tflite) hands it over as a `FloatTwin`; validation times both at batch 1 on one thread in
interleaved rounds and records the result in the manifest, and `bmsdk convert` says so when the quantized model is
slower. The twin lives in a temporary folder and is removed once timed.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bmsdk.errors import BmsdkError
from bmsdk.runtimes import open_backend
from bmsdk.sections import Compression, SpeedCheck, TargetConfig

ROUNDS = 5
ROUND_SECONDS = 0.04  # per model and round: a check costs about ROUNDS * 2 * ROUND_SECONDS plus the loads
SLOWER_MARGIN = 1.05  # slower than the float twin by more than timing noise


@dataclass
class FloatTwin:
    """The float model a quantized artifact was made from: its file under the artifact's model file name in
    `folder`, and the target_config it runs with."""

    folder: Path
    target_config: TargetConfig | None = None

    @classmethod
    def new(cls) -> FloatTwin:
        return cls(Path(tempfile.mkdtemp(prefix="bmsdk-float-twin-")))

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def speed_check(folder: Path, manifest, twin: FloatTwin, feeds: dict) -> SpeedCheck:
    """The artifact against its float twin on the artifact's default backend, batch 1, one thread."""
    row = {name: value[:1] for name, value in feeds.items()}
    twin_manifest = dataclasses.replace(
        manifest, precision="fp32", target_config=twin.target_config, compression=Compression()
    )
    try:
        artifact = open_backend(folder, manifest, threads=1)
        float_twin = open_backend(twin.folder, twin_manifest, threads=1)
    except BmsdkError as e:
        return SpeedCheck(measured=False, reason=f"not timed: {e.problem}")
    with artifact, float_twin:
        runs = {"artifact": lambda: artifact.run(row), "float": lambda: float_twin.run(row)}
        calls = {k: _calls_per_round(fn) for k, fn in runs.items()}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for i in range(ROUNDS):
            for key in runs if i % 2 == 0 else reversed(runs):
                times[key].append(per_call_ms(runs[key], calls[key]))
    artifact_ms, float_ms = statistics.median(times["artifact"]), statistics.median(times["float"])
    return SpeedCheck(
        measured=True,
        backend=artifact.name,
        artifact_ms=artifact_ms,
        float_ms=float_ms,
        speedup=float_ms / artifact_ms,
        accelerated=artifact_ms <= float_ms * SLOWER_MARGIN,
    )


def per_call_ms(fn, calls: int) -> float:
    """Milliseconds per call of `fn` over `calls` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e3


def _calls_per_round(fn) -> int:
    """Calls that take about ROUND_SECONDS (after a warm-up call), at least one."""
    fn()
    once = per_call_ms(fn, 1) / 1e3
    return max(1, min(1000, int(ROUND_SECONDS / max(once, 1e-6))))
