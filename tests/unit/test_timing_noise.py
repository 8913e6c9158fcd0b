"""Timing runs added until the median's 95% interval is narrow enough, or a cap."""

from __future__ import annotations

import itertools

import pytest

from bmsdk.checks import check_noise_settings
from bmsdk.errors import UnsupportedError
from bmsdk.timing import repeated_latency


def _sleeper(pattern):
    """A call whose duration follows `pattern` (seconds), cycling."""
    import time

    durations = itertools.cycle(pattern)
    return lambda: time.sleep(next(durations))


def test_a_steady_call_stops_at_the_base_repeats():
    out = repeated_latency(_sleeper([0.001]), warmup=1, iterations=20, seconds=5, repeats=2, max_noise_pct=50)
    assert len(out["runs_p50_ms"]) == 2 and out["noise_met"] is True


def test_a_noisy_call_gets_more_runs_up_to_the_cap():
    # half the calls 1 ms, half 4 ms: the interval of the median spans both, far wider than 0.1 %
    noisy = _sleeper([0.001, 0.004])
    out = repeated_latency(noisy, warmup=0, iterations=10, seconds=5, repeats=2, max_noise_pct=0.1, max_repeats=4)
    assert len(out["runs_p50_ms"]) == 4 and out["noise_met"] is False
    plain = repeated_latency(noisy, warmup=0, iterations=10, seconds=5, repeats=2)
    assert len(plain["runs_p50_ms"]) == 2 and "noise_met" not in plain


@pytest.mark.parametrize("pct,repeats", [(0, None), (-1, None), (float("nan"), None), (True, None), (None, 0)])
def test_bad_noise_settings(pct, repeats):
    with pytest.raises(UnsupportedError):
        check_noise_settings(pct, repeats)
