"""The test zoo in CI: every architecture converts and validates on one target and precision, chosen so that every
target and precision column meets one or two architectures of the zoo in every run. The full matrix (every target
at fp32 and its default int8, 180 cells, about an hour on two cores) is `make zoo`, which also writes the README's
support table.

A cell fails here exactly when bmsdk's own verdict is a failure (a typed error or a validation that did not
pass); the reason is in the assertion message.
"""

from __future__ import annotations

import pytest
from architectures import ARCHITECTURES, build, calibration_data
from cells import COLUMNS, run_cell

# One cell per architecture, every column met by one or two architectures; the slowest cells of the full matrix
# (ExecuTorch int8 of large-vocabulary and depthwise models) and its known failures stay in `make zoo`.
CI_COLUMNS = {
    "bert": ("onnx", "int8"),
    "distilbert": ("coreml", "int8"),
    "roberta": ("coreml", "fp16"),
    "xlm-roberta": ("onnx", "fp32"),
    "albert": ("tensorrt", "int8"),
    "electra": ("executorch", "fp32"),
    "mobilebert": ("tflite", "int8-dynamic"),
    "deberta-v2": ("tensorrt", "fp32"),
    "modernbert": ("tflite", "fp32"),
    "resnet": ("executorch", "int8"),
    "mobilenet-v2": ("onnx", "int8"),
    "mobilenet-v3": ("coreml", "int8"),
    "efficientnet": ("tflite", "fp32"),
    "convnext": ("tensorrt", "int8"),
    "vit": ("coreml", "fp16"),
    "deit": ("executorch", "fp32"),
    "swin": ("onnx", "fp32"),
    "mobilevit": ("tensorrt", "fp32"),
}


def ci_cells() -> list[tuple[str, str, str]]:
    return [(name, *CI_COLUMNS[name]) for name in ARCHITECTURES]


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


def test_every_architecture_and_every_column_meets_ci():
    assert set(CI_COLUMNS) == set(ARCHITECTURES)
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
