"""Device runners: how a worker times an artifact on the hardware it is attached to, behind one interface.

`Runner.measure(path, probe, cfg)` returns the measurement part of a report cell (backend, load_ms, latency per
batch, ...). local: this process (the harness as it always was); adb: an Android phone; ssh: a Linux board;
coreml: this Mac's Core ML. `runner_for(device)` picks one from the Ray resource a cell was placed by.
"""

from __future__ import annotations

from bmsdk.benchmarks.runners.adb import AdbRunner
from bmsdk.benchmarks.runners.base import Runner
from bmsdk.benchmarks.runners.coreml import CoreMLRunner
from bmsdk.benchmarks.runners.local import LocalRunner
from bmsdk.benchmarks.runners.ssh import SshRunner


def runner_for(device: str | None) -> Runner:
    kind, _, name = (device or "").partition(":")
    if kind == "android":
        return AdbRunner(name)
    if kind == "ssh":
        return SshRunner(name)
    if kind == "coreml":
        return CoreMLRunner()
    return LocalRunner()


__all__ = ["AdbRunner", "CoreMLRunner", "LocalRunner", "Runner", "SshRunner", "runner_for"]
