"""bmsdk's own cost per call: `Model.run(feeds)` against the raw runtime call a user would write by hand (the same
model file, feeds already converted), in interleaved rounds so that machine noise hits both alike.

    python -m bmsdk.benchmarks.overhead ARTIFACT... [--batch 1] [--threads 1] [--rounds 15] [--calls 100]

Prints, per artifact, the median per-call time of each and bmsdk's overhead as a ratio paired per round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from bmsdk.artifact import load_samples
from bmsdk.benchmarks.measure import batch_feeds, raw_runtime_call
from bmsdk.converters.speed import per_call_ms
from bmsdk.data import load_dataset
from bmsdk.runtimes.model import load


def overhead(path: str, probe, batch: int = 1, threads: int = 1, rounds: int = 15, calls: int = 100) -> dict:
    """Median µs per call of the raw runtime and of Model.run, and bmsdk's overhead (median of per-round ratios)."""
    with load(path, threads=threads) as model:
        feeds = batch_feeds(model, probe, batch)
        raw, how = raw_runtime_call(model, feeds)
        wrapped = lambda: model.run(feeds)  # noqa: E731
        for fn in (raw, wrapped):
            per_call_ms(fn, max(5, calls // 10))
        pairs = []
        for i in range(rounds):
            order = (raw, wrapped) if i % 2 == 0 else (wrapped, raw)
            times = {fn: 1e3 * per_call_ms(fn, calls) for fn in order}
            pairs.append((times[raw], times[wrapped]))
    return {
        "artifact": str(path),
        "backend": model.backend,
        "raw": how,
        "raw_us": statistics.median(r for r, _ in pairs),
        "bmsdk_us": statistics.median(w for _, w in pairs),
        "overhead_pct": 100 * (statistics.median(w / r for r, w in pairs) - 1),
    }


def probe_of(path: str, data: str | None):
    """The first example of `data`, else the artifact's first stored sample input."""
    if data:
        return load_dataset(data).items[0]
    inputs, _, raw = load_samples(Path(path))
    return raw[0] if raw is not None else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bmsdk.benchmarks.overhead", description=__doc__.split("\n\n")[0])
    parser.add_argument("artifacts", nargs="+")
    parser.add_argument("--data", help="take the probe input from this data file (default: the artifact's samples)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [
        overhead(a, probe_of(a, args.data), args.batch, args.threads, args.rounds, args.calls) for a in args.artifacts
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| artifact | backend | raw (µs) | Model.run (µs) | overhead |\n|---|---|---:|---:|---:|")
    for r in results:
        times = f"{r['raw_us']:.1f}", f"{r['bmsdk_us']:.1f}", f"{r['overhead_pct']:+.1f}%"
        cells = [r["artifact"], r["backend"], *times]
        print("| " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
