"""The test zoo in CI: every architecture converts and validates on one target and precision, chosen so that every
target and precision column meets one or two architectures of the zoo in every run. The full matrix (every target
at fp32 and its default int8, 180 cells, about an hour on two cores) is `make zoo`, which also writes the README's
support table.

A cell fails here exactly when bmsdk's own verdict is a failure (a typed error or a validation that did not
pass); the reason is in the assertion message.
"""

from __future__ import annotations

import numpy as np
import pytest
from architectures import ARCHITECTURES, build, calibration_data
from cells import COLUMNS, run_cell
from task_zoo import TASKS

import bmsdk

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
    "mobilenet-v2": ("tflite", "int8-dynamic"),  # its static int8 is out of tolerance (README table)
    "mobilenet-v3": ("coreml", "int8"),
    "efficientnet": ("tflite", "fp32"),
    "convnext": ("tensorrt", "int8"),
    "vit": ("coreml", "fp16"),
    "deit": ("executorch", "fp32"),
    "swin": ("coreml", "fp16"),  # traced at a fixed batch of 1, run row by row
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


def test_the_task_zoo_holds_every_task_beyond_classification():
    from bmsdk.tasks import task_names

    classification = {"text-classification", "image-classification", "feature-extraction"}
    assert set(TASKS) == set(task_names()) - classification
    assert all(len(zoo.architectures) >= 2 for zoo in TASKS.values())


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


def test_a_model_that_traces_only_at_batch_one_runs_a_batch_row_by_row(checkpoint, zoo_dir):
    """Swin's window partition traces for CoreML only at a fixed batch: the program takes one row, and the backend
    runs a batch of three row by row, equal to the checkpoint in transformers."""
    import torch
    import transformers

    folder = checkpoint("swin")
    result = bmsdk.convert(folder, target="coreml", precision="fp32", output=zoo_dir / "swin-batch-one.bmsdk")
    assert result.manifest.target_config.flexible_shapes["batch"] == [1, 1]
    pixels = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with bmsdk.load(result.path) as model:
        got = model.run({"pixel_values": pixels})["logits"]
    source = transformers.SwinForImageClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        want = source(pixel_values=torch.from_numpy(pixels)).logits.numpy()
    assert got.shape == (3, 2)
    np.testing.assert_allclose(got, want, atol=1e-4)
