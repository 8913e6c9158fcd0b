"""This Mac's Core ML: the local runner, on a worker that advertises the `coreml` resource (macOS only)."""

from __future__ import annotations

import platform
from pathlib import Path

from bmsdk.benchmarks.runners.local import LocalRunner
from bmsdk.errors import BackendUnavailableError


class CoreMLRunner(LocalRunner):
    name = "coreml"
    device = "coreml"

    def measure(self, path: Path, probe, cfg) -> dict:
        if platform.system() != "Darwin":
            raise BackendUnavailableError("Core ML runs only on macOS", "run the worker on a Mac (resource coreml)")
        return super().measure(path, probe, cfg)
