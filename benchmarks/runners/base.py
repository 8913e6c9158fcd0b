"""The runner interface."""

from __future__ import annotations

from pathlib import Path


class Runner:
    name = "runner"
    device = "cpu"  # the Ray resource a worker must hold to run this runner's cells

    def measure(self, path: Path, probe, cfg) -> dict:
        raise NotImplementedError
