"""The local runner: times the artifact in this process with the harness's own measurement."""

from __future__ import annotations

from pathlib import Path

from bmsdk.benchmarks.measure import measure_artifact
from bmsdk.benchmarks.runners.base import Runner


class LocalRunner(Runner):
    name = "local"

    def measure(self, path: Path, probe, cfg) -> dict:
        return measure_artifact(
            path, probe, cfg.batches, cfg.threads, cfg.warmup, cfg.iterations, cfg.seconds, cfg.repeats,
            cfg.max_noise_pct, cfg.max_repeats, cfg.seq_lengths,
        )  # fmt: skip
