"""Noise-aware latency: the 95% interval of the median from the calls' times, and a gate that never fails a cell on
noise alone while a real 2x regression always fails."""

from __future__ import annotations

import numpy as np
import pytest

from bmsdk.benchmarks.gate import NOISE_CAP_PCT, check, latency_allowance
from bmsdk.timing import noise


def test_the_median_interval_holds_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(400):
        sample = rng.lognormal(0.0, 0.3, 200)  # latency-like: skewed; its true median is exp(0) = 1
        low, high = noise(list(sample))["median_ci95_ms"]
        hits += low <= 1.0 <= high
    assert 0.91 <= hits / 400 <= 0.99


def test_noise_grows_with_spread():
    rng = np.random.default_rng(1)
    calm, noisy = noise(list(1 + 0.01 * rng.standard_normal(300))), noise(list(1 + 0.3 * rng.standard_normal(300)))
    assert calm["noise_pct"] < noisy["noise_pct"] and calm["cv"] < noisy["cv"]
    assert noise([1.0]) == {"cv": None, "median_ci95_ms": None, "noise_pct": None}


def _report(p50: float, noise_pct: float) -> dict:
    cell = {"target": "onnx", "precision": "fp32", "status": "validated"}
    return {"cells": [{**cell, "latency": {"1": {"p50_ms": p50, "noise_pct": noise_pct}}}]}


@pytest.mark.parametrize(
    ("new_p50", "noise_pct", "fails"),
    [
        (1.30, 1.0, True),  # +30% on calm runs: over the 25% budget
        (1.30, 5.0, False),  # the same +30% when each run's median is only known to ±5%: noise, not a regression
        (2.00, 60.0, True),  # a real 2x regression fails however noisy the runs were
    ],
)
def test_the_gate_widens_its_budget_by_the_measured_noise(new_p50, noise_pct, fails):
    problems = check(_report(new_p50, noise_pct), _report(1.0, noise_pct), None, 25)
    assert bool(problems) == fails, problems


def test_the_allowance_is_capped_below_a_doubling():
    assert latency_allowance(25, _report(1, 80)["cells"][0], _report(1, 80)["cells"][0], "1") == NOISE_CAP_PCT
    assert latency_allowance(25, {}, {}, "1") == 25


def _on(report: dict, cpu: str, isa: list[str] | None) -> dict:
    return {**report, "environment": {"cpu": cpu, **({"isa": isa} if isa is not None else {})}}


@pytest.mark.parametrize(
    ("baseline_cpu", "baseline_isa", "reason"),
    [
        ("Intel Xeon", ["avx2", "avx512_vnni"], "measured on 'Intel Xeon'"),
        ("AMD EPYC", ["avx2", "avx512_vnni"], "lacks (['avx512_vnni'])"),  # one name, another generation
        ("AMD EPYC", None, "does not record its CPU's ISA flags"),
    ],
)
def test_latency_is_gated_only_against_a_baseline_of_the_same_hardware(baseline_cpu, baseline_isa, reason):
    from bmsdk.benchmarks.gate import hardware_change

    new, old = _on(_report(3.0, 1.0), "AMD EPYC", ["avx2"]), _on(_report(1.0, 1.0), baseline_cpu, baseline_isa)
    assert reason in hardware_change(new, old)
    assert check(new, old, None, 25) == []  # 3x slower, on other hardware: not a regression of this code
    slower_same_cpu = _on(_report(3.0, 1.0), "AMD EPYC", ["avx2"])
    assert hardware_change(slower_same_cpu, _on(_report(1.0, 1.0), "AMD EPYC", ["avx2"])) is None
    assert check(slower_same_cpu, _on(_report(1.0, 1.0), "AMD EPYC", ["avx2"]), None, 25)
    failed = _on({"cells": [{"target": "onnx", "precision": "fp32", "status": "failed"}]}, "AMD EPYC", ["avx2"])
    assert check(failed, old, None, 25)  # a cell that stopped working fails on any hardware
