"""What the test zoos found each architecture to support (support.json, written by tests/zoo/support_table.py):
the architectures `bmsdk tasks` lists for each task, with the cells that passed. The classification zoo's cells
take their task from the architecture; the task zoo's cells name theirs."""

from __future__ import annotations

import functools
import json
from pathlib import Path

SUPPORT_FILE = Path(__file__).with_name("support.json")


@functools.cache
def zoo_support() -> dict:
    """The last zoo run's record; empty when this install has none."""
    if not SUPPORT_FILE.is_file():
        return {"architectures": {}, "cells": []}
    return json.loads(SUPPORT_FILE.read_text(encoding="utf-8"))


def architectures_for(task: str) -> dict[str, dict]:
    """{architecture: {"passed": n, "cells": m, "targets": {target: passed precisions}}} for `task`."""
    record = zoo_support()
    tasks = {name: arch["task"] for name, arch in record["architectures"].items()}
    mine = [c for c in record["cells"] if tasks.get(c["architecture"]) == task]
    mine += [c for c in record.get("task_cells", []) if c["task"] == task]
    found: dict[str, dict] = {}
    for name in dict.fromkeys(c["architecture"] for c in mine):
        cells = [c for c in mine if c["architecture"] == name]
        targets: dict[str, list[str]] = {}
        for c in cells:
            if c["status"] == "pass":
                targets.setdefault(c["target"], []).append(c["precision"])
        found[name] = {"passed": sum(c["status"] == "pass" for c in cells), "cells": len(cells), "targets": targets}
    return found
