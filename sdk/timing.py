"""Latency measurement: warm-up, then percentiles over repeated calls."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


def measure_latency(fn: Callable[[], object], warmup: int = 10, iterations: int = 100, max_seconds: float = 10.0) -> dict:
    """Milliseconds per call: p50/p90/p99/mean over up to `iterations` calls (fewer if `max_seconds` runs out)."""
    for _ in range(warmup):
        fn()
    times = []
    deadline = time.perf_counter() + max_seconds
    while len(times) < iterations and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    t = np.asarray(times)
    return {"p50_ms": float(np.percentile(t, 50)), "p90_ms": float(np.percentile(t, 90)),
            "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(t.mean()), "iterations": len(t)}
