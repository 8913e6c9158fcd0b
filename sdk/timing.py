"""Latency measurement: warm-up, then percentiles over repeated calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def measure_latency(
    fn: Callable[[], object],
    warmup: int = 10,
    iterations: int = 100,
    max_seconds: float = 10.0,
    samples: list[float] | None = None,
) -> dict:
    """Milliseconds per call: p50/p90/p99/mean over up to `iterations` calls (fewer if `max_seconds` runs out);
    each call's time is also appended to `samples` when given."""
    for _ in range(warmup):
        fn()
    times = []
    deadline = time.perf_counter() + max_seconds
    while len(times) < iterations and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    if samples is not None:
        samples.extend(times)
    t = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(t, 50)),
        "p90_ms": float(np.percentile(t, 90)),
        "p99_ms": float(np.percentile(t, 99)),
        "mean_ms": float(t.mean()),
        "iterations": len(t),
    }


def repeated_latency(
    fn, warmup: int, iterations: int, seconds: float, repeats: int, max_noise_pct: float | None = None,
    max_repeats: int = 10,
) -> dict:  # fmt: skip
    """`repeats` timing runs; the reported percentiles are the medians across runs (robust to one noisy run). With
    `max_noise_pct`, runs are added (up to `max_repeats` in all) until the 95% interval of the median is within
    that many % of it; `noise_met` says whether it got there."""
    samples: list[float] = []
    runs: list[dict] = []
    while len(runs) < repeats or (
        max_noise_pct is not None and len(runs) < max_repeats and noise(samples)["noise_pct"] > max_noise_pct
    ):
        warm = warmup if not runs else max(1, warmup // 4)
        runs.append(measure_latency(fn, warmup=warm, iterations=iterations, max_seconds=seconds, samples=samples))
    keys = ("p50_ms", "p90_ms", "p99_ms", "mean_ms")
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    out["runs_p50_ms"] = [r["p50_ms"] for r in runs]
    out["iterations"] = sum(r["iterations"] for r in runs)
    spread = noise(samples)
    if max_noise_pct is not None:
        spread["noise_met"] = spread["noise_pct"] is not None and spread["noise_pct"] <= max_noise_pct
    return {**out, **spread}


def noise(samples: list[float]) -> dict:
    """How noisy the calls were: the coefficient of variation, a distribution-free 95% confidence interval of the
    median (order statistics, normal approximation of the binomial), and its half-width in % of the median."""
    t = np.sort(np.asarray(samples, dtype=float))
    n = len(t)
    if n < 2:
        return {"cv": None, "median_ci95_ms": None, "noise_pct": None}
    half = 1.96 * np.sqrt(n) / 2
    low, high = t[max(0, int(np.floor(n / 2 - half)))], t[min(n - 1, int(np.ceil(n / 2 + half)))]
    median = float(np.median(t))
    return {
        "cv": float(t.std(ddof=1) / t.mean()) if t.mean() > 0 else None,
        "median_ci95_ms": [float(low), float(high)],
        "noise_pct": float(100 * (high - low) / 2 / median) if median > 0 else None,
    }
