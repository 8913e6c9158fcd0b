"""Checks on what a caller asks for, made before any work starts (the CLI, `bmsdk.convert`, `bmsdk.benchmark`)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from bmsdk.errors import SourceError, UnsupportedError
from bmsdk.manifest import MAX_TEXT_LENGTH


def check_labels(labels: Sequence[str] | None) -> None:
    """Class names given with --labels: at least one, none empty, no name twice."""
    if labels is None:
        return
    fix = "pass names comma-separated (negative,positive) or a file with one name per line"
    if not labels:
        raise SourceError("--labels names no classes", fix)
    if any(not isinstance(label, str) or not label.strip() for label in labels):
        raise SourceError(f"--labels has an empty or non-text class name: {_show(labels)}", fix)
    repeated = sorted(label for label, n in Counter(labels).items() if n > 1)
    if repeated:
        raise SourceError(f"--labels names {_show(repeated)} more than once", "give each class its own name")


def check_mean_std(mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
    """Per-channel normalisation given with --mean/--std: finite numbers, std never 0."""
    for name, values in (("mean", mean), ("std", std)):
        if values is None:
            continue
        if not values or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise SourceError(f"--{name} must be finite numbers, got {_show(values)}", "e.g. --mean 0.485,0.456,0.406")
    if std is not None and any(v == 0 for v in std):
        raise SourceError(
            f"--std must not contain 0, got {_show(std)}", "pass each channel's standard deviation, e.g. 0.229"
        )


def check_max_length(max_length: int | None) -> None:
    if max_length is None:
        return
    if not isinstance(max_length, int) or isinstance(max_length, bool) or not 1 <= max_length <= MAX_TEXT_LENGTH:
        raise SourceError(
            f"--max-length must be an integer from 1 to {MAX_TEXT_LENGTH}, got {_show(max_length)}",
            "pass the longest token count the model should see, e.g. --max-length 128",
        )


def check_convert_args(labels=None, mean=None, std=None, max_length=None) -> None:
    """What `bmsdk.convert` can check about its overrides before loading the source."""
    check_labels(labels)
    check_mean_std(mean, std)
    check_max_length(max_length)


def check_overrides(labels, mean, std, num_classes: int | None, channels: int | None) -> None:
    """After the source loads: --labels must name every class, --mean/--std give one value per channel."""
    check_convert_args(labels, mean, std)
    if labels is not None and num_classes is not None and len(labels) != num_classes:
        raise SourceError(
            f"--labels names {len(labels)} classes but the model has {num_classes}",
            f"pass {num_classes} names, in the order of the model's outputs",
        )
    for name, values in (("mean", mean), ("std", std)):
        if values is not None and channels is not None and len(values) != channels:
            raise SourceError(
                f"--{name} has {len(values)} values but the model takes {channels} channels",
                f"pass {channels} comma-separated values",
            )


def check_count(option: str, value, minimum: int) -> None:
    """An integer option (threads, warm-up calls, ...) of at least `minimum`; None means the default."""
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UnsupportedError(
            f"{option} must be an integer >= {minimum}, got {_show(value)}", f"use {minimum} or more"
        )


def check_noise_settings(max_noise_pct=None, max_repeats=None) -> None:
    """`--max-noise PCT` (a width in % of the median, > 0) and `--max-repeats N` (at least 1)."""
    check_count("--max-repeats", max_repeats, 1)
    if max_noise_pct is not None and (
        not isinstance(max_noise_pct, (int, float)) or isinstance(max_noise_pct, bool)
        or not math.isfinite(max_noise_pct) or max_noise_pct <= 0
    ):  # fmt: skip
        raise UnsupportedError(
            f"--max-noise must be a width in % > 0, got {_show(max_noise_pct)}", "e.g. --max-noise 2"
        )


def check_bench_settings(
    batches=None, threads=None, warmup=None, iterations=None, seconds=None, repeats=None, flag: str = "--"
) -> None:
    """Timing settings of `bmsdk bench` / `bmsdk.benchmark`; `flag` prefixes each name in messages ("--batch")."""
    if batches is not None:
        if not isinstance(batches, list) or not batches:
            raise UnsupportedError(f"{flag}batch must list batch sizes, got {_show(batches)}", "e.g. --batch 1,8")
        for batch in batches:
            check_count(f"{flag}batch", batch, 1)
    check_count(f"{flag}threads", threads, 1)
    check_count(f"{flag}warmup", warmup, 0)
    check_count(f"{flag}iterations", iterations, 1)
    check_count(f"{flag}repeats", repeats, 1)
    if seconds is not None and (
        not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0
    ):
        raise UnsupportedError(f"{flag}seconds must be a number > 0, got {_show(seconds)}", "e.g. --seconds 10")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
