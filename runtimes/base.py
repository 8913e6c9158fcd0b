"""The one interface every runtime implements. Subclasses only load the model and run checked feeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np

from bmsdk.errors import BmsdkError, InputError, RunError
from bmsdk.manifest import Manifest, TensorSpec


class Backend:
    """`run(feeds)` checks names, dtypes and shapes against the manifest, then calls the runtime.

    Subclasses set `name`, implement `_load()` and `_run(feeds)`, and may override `close()`.
    `device_real` is False for reference executors whose latency is not that of the real device.
    """

    name = "base"
    runs: ClassVar[dict[str, int]] = {}  # artifact target -> preference (0 first) for the targets this backend runs
    requirements: ClassVar[tuple[str, ...]] = ()  # pip packages it needs (listed by `bmsdk doctor`)
    device_real = True
    thread_safe = False

    def __init__(self, folder: Path, manifest: Manifest, threads: int | None = None):
        self.folder = Path(folder)
        self.manifest = manifest
        self.threads = threads
        self.inputs: list[TensorSpec] = manifest.inputs
        self.outputs: list[TensorSpec] = manifest.outputs
        self._feed_check = FeedCheck(self.inputs)
        self._load()

    def _load(self) -> None:
        raise NotImplementedError

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self._feed_check(feeds)
        try:
            return self._run(feeds)
        except BmsdkError:
            raise
        except Exception as e:  # noqa: BLE001 - the runtime failed on inputs that passed the manifest's checks
            raise RunError(
                f"{self.name} failed on these inputs: {short_error(e)}",
                "check the inputs against `bmsdk inspect`; report it if they are valid",
            ) from None

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FeedCheck:
    """check_feeds compiled once per backend: what the specs require, as plain tuples, so that a call with valid
    feeds costs a few comparisons and one vectorised compare per ranged input. Feeds it does not pass go through
    check_feeds, which names the problem (or accepts them: a dict or ndarray subclass)."""

    def __init__(self, specs: Sequence[TensorSpec]):
        self.specs = list(specs)
        self.names = frozenset(s.name for s in specs)
        self.checks = [
            (
                s.name,
                np.dtype(s.dtype),
                len(s.shape),
                tuple((axis, dim) for axis, dim in enumerate(s.shape) if isinstance(dim, int)),
                tuple((axis, dim, (s.max_dims or {}).get(dim)) for axis, dim in _named_axes(s)),
                _range_test(s),
            )
            for s in specs
        ]

    def __call__(self, feeds: dict[str, np.ndarray]) -> None:
        if not self._valid(feeds):  # stricter than needed (a dict or ndarray subclass): the full check decides
            check_feeds(self.specs, feeds)

    def _valid(self, feeds) -> bool:
        if type(feeds) is not dict or feeds.keys() != self.names:
            return False
        dims: dict[str, int] = {}
        for name, dtype, ndim, fixed, named, out_of_range in self.checks:
            value = feeds[name]
            if type(value) is not np.ndarray or value.dtype != dtype or value.ndim != ndim or value.size == 0:
                return False
            shape = value.shape
            if any(shape[axis] != size for axis, size in fixed):
                return False
            for axis, dim, most in named:
                if dims.setdefault(dim, shape[axis]) != shape[axis] or (most is not None and shape[axis] > most):
                    return False
            if out_of_range is not None and out_of_range(value):
                return False
        return True


def _named_axes(spec: TensorSpec) -> list[tuple[int, str]]:
    return [(axis, dim) for axis, dim in enumerate(spec.shape) if isinstance(dim, str)]


def _range_test(spec: TensorSpec):
    """A function telling whether an array holds values outside the spec's range (None: no range): for ids and masks
    ([0, high]) the maximum of the values read as unsigned, which also catches negatives."""
    if spec.value_range is None:
        return None
    low, high = spec.value_range
    dtype = np.dtype(spec.dtype)
    if low == 0 and dtype.kind == "i":
        unsigned = np.dtype(f"u{dtype.itemsize}")
        return lambda value: value.view(unsigned).max() > high  # one reduction, no temporary array
    return lambda value: bool(value.min() < low or value.max() > high)


def check_feeds(specs: Sequence[TensorSpec], feeds: dict[str, np.ndarray]) -> None:
    """Raise InputError naming what was expected when feeds do not match the declared inputs."""
    expected = {s.name for s in specs}
    if not isinstance(feeds, dict):
        raise InputError(
            f"inputs must be a dict of name -> array, got {type(feeds).__name__}",
            f"pass {{{', '.join(repr(n) for n in expected)}}}",
        )
    missing, unexpected = expected - set(feeds), set(feeds) - expected
    if missing or unexpected:
        parts = [
            f"missing {sorted(missing)}" if missing else "",
            f"unexpected {sorted(unexpected)}" if unexpected else "",
        ]
        raise InputError(
            f"wrong input names: {', '.join(p for p in parts if p)}",
            f"the model takes {', '.join(s.describe() for s in specs)}",
        )
    dims: dict[str, int] = {}
    for spec in specs:
        value = feeds[spec.name]
        if not isinstance(value, np.ndarray):
            raise InputError(
                f"input '{spec.name}' is a {type(value).__name__}, not a numpy array", f"pass {spec.describe()}"
            )
        if value.dtype != np.dtype(spec.dtype):
            raise InputError(
                f"input '{spec.name}' has dtype {value.dtype}",
                f"expected {spec.describe()}; cast with .astype('{spec.dtype}')",
            )
        if value.ndim != len(spec.shape):
            raise InputError(
                f"input '{spec.name}' has shape {list(value.shape)} ({value.ndim} dims)", f"expected {spec.describe()}"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, value.shape)):
            if isinstance(want, int) and want != got:
                raise InputError(f"input '{spec.name}' has size {got} on axis {axis}", f"expected {spec.describe()}")
            if isinstance(want, str) and dims.setdefault(want, got) != got:
                raise InputError(
                    f"input '{spec.name}' has {want}={got} but another input has {want}={dims[want]}",
                    "inputs that share a named dim must agree on its size",
                )
            if isinstance(want, str) and spec.max_dims and got > spec.max_dims.get(want, got):
                raise InputError(
                    f"input '{spec.name}' has {want}={got}, more than the model takes ({spec.max_dims[want]})",
                    f"truncate it to {spec.max_dims[want]} (the text pre-processing truncates for you)",
                )
        if value.size == 0:
            raise InputError(f"input '{spec.name}' is empty (shape {list(value.shape)})", "pass at least one example")
        if spec.value_range is not None:
            low, high = spec.value_range
            if value.min() < low or value.max() > high:
                raise InputError(
                    f"input '{spec.name}' holds values outside [{low}, {high}] (token ids outside the "
                    "vocabulary, or a mask that is not 0/1)",
                    "encode texts with the artifact's tokenizer",
                )


def short_error(error: BaseException, limit: int = 300) -> str:
    """The first line of a third-party error, cut to a readable length."""
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:limit]
