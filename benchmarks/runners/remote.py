"""`python -m bmsdk.benchmarks.runners.remote ARTIFACT ...`: the local runner on an artifact, the cell as JSON.

What the SSH runner runs on a board.
"""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

from bmsdk.artifact import load_samples
from bmsdk.benchmarks.runners.local import LocalRunner


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bmsdk.benchmarks.runners.remote")
    p.add_argument("artifact")
    p.add_argument("--batches", default="1")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args(argv)
    cfg = SimpleNamespace(**{**vars(a), "batches": [int(b) for b in a.batches.split(",")]})
    inputs, _, raw = load_samples(a.artifact)
    probe = (str(raw[0]) if raw.dtype.kind in "US" else raw[0]) if raw is not None else next(iter(inputs.values()))[:1]
    print(json.dumps(LocalRunner().measure(a.artifact, probe, cfg)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
