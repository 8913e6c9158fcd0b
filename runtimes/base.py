"""The one interface every runtime implements. Subclasses only load the model and run checked feeds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from bmsdk.errors import InputError
from bmsdk.manifest import Manifest, TensorSpec


class Backend:
    """`run(feeds)` checks names, dtypes and shapes against the manifest, then calls the runtime.

    Subclasses set `name`, implement `_load()` and `_run(feeds)`, and may override `close()`.
    `device_real` is False for reference executors whose latency is not that of the real device.
    """

    name = "base"
    device_real = True
    thread_safe = False

    def __init__(self, folder: Path, manifest: Manifest, threads: int | None = None):
        self.folder = Path(folder)
        self.manifest = manifest
        self.threads = threads
        self.inputs: list[TensorSpec] = manifest.inputs
        self.outputs: list[TensorSpec] = manifest.outputs
        self._load()

    def _load(self) -> None:
        raise NotImplementedError

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_feeds(self.inputs, feeds)
        return self._run(feeds)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_feeds(specs: Sequence[TensorSpec], feeds: dict[str, np.ndarray]) -> None:
    """Raise InputError naming what was expected when feeds do not match the declared inputs."""
    expected = {s.name for s in specs}
    if not isinstance(feeds, dict):
        raise InputError(f"inputs must be a dict of name -> array, got {type(feeds).__name__}",
                         f"pass {{{', '.join(repr(n) for n in expected)}}}")
    missing, unexpected = expected - set(feeds), set(feeds) - expected
    if missing or unexpected:
        parts = [f"missing {sorted(missing)}" if missing else "", f"unexpected {sorted(unexpected)}" if unexpected else ""]
        raise InputError(f"wrong input names: {', '.join(p for p in parts if p)}",
                         f"the model takes {', '.join(s.describe() for s in specs)}")
    dims: dict[str, int] = {}
    for spec in specs:
        value = feeds[spec.name]
        if not isinstance(value, np.ndarray):
            raise InputError(f"input '{spec.name}' is a {type(value).__name__}, not a numpy array", f"pass {spec.describe()}")
        if value.dtype != np.dtype(spec.dtype):
            raise InputError(f"input '{spec.name}' has dtype {value.dtype}", f"expected {spec.describe()}; cast with .astype('{spec.dtype}')")
        if value.ndim != len(spec.shape):
            raise InputError(f"input '{spec.name}' has shape {list(value.shape)} ({value.ndim} dims)", f"expected {spec.describe()}")
        for axis, (want, got) in enumerate(zip(spec.shape, value.shape)):
            if isinstance(want, int) and want != got:
                raise InputError(f"input '{spec.name}' has size {got} on axis {axis}", f"expected {spec.describe()}")
            if isinstance(want, str) and dims.setdefault(want, got) != got:
                raise InputError(f"input '{spec.name}' has {want}={got} but another input has {want}={dims[want]}",
                                 "inputs that share a named dim must agree on its size")
