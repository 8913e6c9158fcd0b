"""Progress lines on stderr for long steps: `with progress.step("exporting"): ...`."""

from __future__ import annotations

import contextlib
import sys
import time


class Progress:
    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr

    def info(self, message: str) -> None:
        if self.enabled:
            print(message, file=self.stream, flush=True)

    @contextlib.contextmanager
    def step(self, message: str):
        start = time.perf_counter()
        if self.enabled:
            print(f"  {message} ...", end="", file=self.stream, flush=True)
        try:
            yield
        except BaseException:
            if self.enabled:
                print(" failed", file=self.stream, flush=True)
            raise
        if self.enabled:
            print(f" done ({time.perf_counter() - start:.1f}s)", file=self.stream, flush=True)


SILENT = Progress(enabled=False)
