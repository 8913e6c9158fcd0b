"""The demo's whole matrix twice from cold (fresh artifact folders): serially, then as Ray tasks on a local cluster;
the wall-clock of each and whether both give the same cells (status, accuracy, perplexity).

    python -m bmsdk.benchmarks.cluster_timing [--cluster local:2] [--models mnist-cnn] [--out reports/cluster-timing]

Latencies differ between the runs (on a local cluster the cells' measurements share the machine), so they are not
compared; what must be equal is everything a conversion and its evaluation decide.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bmsdk.logs import configure_logging, third_party_output

from . import demo

# what both runs must decide alike, with the relative tolerance of each (sizes: a format may stamp its metadata)
COMPARED = {"status": 0, "accuracy": 1e-6, "macro_f1": 1e-6, "agreement": 1e-6, "perplexity": 1e-6, "size_mb": 1e-3}


def key(row: dict) -> tuple:
    return row["model"], row["target"], row["precision"], row.get("variant", "")


def differences(serial: list[dict], clustered: list[dict]) -> list[str]:
    """What the two runs decided differently, cell by cell (a cell missing from one run is a difference too)."""
    one, other = {key(r): r for r in serial}, {key(r): r for r in clustered}
    only = one.keys() ^ other.keys()
    found = [f"{' '.join(k).strip()}: only in the {'serial' if k in one else 'cluster'} run" for k in only]
    for k in sorted(one.keys() & other.keys()):
        for field, tolerance in COMPARED.items():
            a, b = one[k].get(field), other[k].get(field)
            numbers = isinstance(a, float) and isinstance(b, float)
            if a != b and not (numbers and abs(a - b) <= tolerance * max(1, abs(a))):
                found.append(f"{' '.join(k).strip()}: {field} {a} (serial) vs {b} (cluster)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bmsdk.benchmarks.cluster_timing", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--cluster", default="local:2", help="where the second run's cells go (default local:2)")
    parser.add_argument("--out", type=Path, default=Path("reports/cluster-timing"))
    parser.add_argument("--targets", help="only these targets' rows, comma-separated")
    parser.add_argument("--models", help="only these models' rows, comma-separated (e.g. mnist-cnn)")
    args = parser.parse_args(argv)
    configure_logging(0)
    third_party_output(0)
    targets = args.targets.split(",") if args.targets else None
    models = args.models.split(",") if args.models else None
    timings, tables = {}, {}
    for name, cluster in (("serial", None), ("cluster", args.cluster)):
        out = args.out / name
        start = time.perf_counter()
        tables[name] = demo.run(
            out, threads=1, targets=targets, cluster=cluster, artifacts=out / "artifacts", models=models
        )
        timings[name] = time.perf_counter() - start
    diff = differences(tables["serial"], tables["cluster"])
    summary = {
        "cluster": args.cluster,
        "cells": len(tables["serial"]),
        "serial_s": round(timings["serial"], 1),
        "cluster_s": round(timings["cluster"], 1),
        "speedup": round(timings["serial"] / timings["cluster"], 2),
        "same_cells": not diff,
        "differences": diff,
    }
    (args.out / "timing.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
