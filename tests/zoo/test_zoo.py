"""The test zoo in CI: every architecture converts and validates on ONNX fp32, and on one more target and
precision in rotation, so that every target and precision column meets two or three architectures of the zoo in
every run. The full matrix (every target at fp32 and its default int8, 170 cells, about an hour on two cores) is
`make zoo`, which also writes the README's support table.

A cell fails here exactly when bmsdk's own verdict is a failure (a typed error or a validation that did not
pass); the reason is in the assertion message.
"""

from __future__ import annotations

import pytest
from architectures import ARCHITECTURES, build, calibration_data
from cells import COLUMNS, run_cell

NAMES = list(ARCHITECTURES)
OTHERS = [c for c in COLUMNS if c != ("onnx", "fp32")]


def ci_cells() -> list[tuple[str, str, str]]:
    cells = []
    for i, name in enumerate(NAMES):
        cells.append((name, "onnx", "fp32"))
        cells.append((name, *OTHERS[(i * 2) % len(OTHERS)]))
    return cells


@pytest.fixture(scope="session")
def zoo_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="session")
def checkpoint(zoo_dir):
    built = {}

    def get(name):
        if name not in built:
            built[name] = build(name, zoo_dir / name)
        return built[name]

    return get


def test_every_column_meets_the_zoo():
    assert {(t, p) for _, t, p in ci_cells()} == set(COLUMNS)


@pytest.mark.parametrize("name,target,precision", ci_cells(), ids=lambda v: str(v))
def test_zoo_cell(name, target, precision, checkpoint, zoo_dir):
    kind = ARCHITECTURES[name].kind
    cell = run_cell(
        name,
        checkpoint(name),
        target,
        precision,
        zoo_dir / "out" / f"{name}-{target}-{precision}",
        calibration_data(kind, zoo_dir / f"calibration-{kind}"),
    )
    assert cell.status == "pass", f"{name} {target} {precision}: {cell.reason}"
