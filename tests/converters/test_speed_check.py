"""Did it accelerate? A quantized onnx / tflite conversion is timed against its float twin on its own runtime
(real onnxruntime and LiteRT), the result is in the manifest and in `bmsdk convert`'s output, and the twin is gone
afterwards. Whether int8 is faster depends on the CPU, so the tests check consistency, not a direction."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

import bmsdk
from bmsdk.cli import main
from bmsdk.converters.speed import SLOWER_MARGIN


def twins() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("bmsdk-float-twin-*")}


@pytest.mark.parametrize(("target", "precision"), [("onnx", "int8"), ("tflite", "int8-dynamic"), ("onnx", "fp16")])
def test_quantized_artifact_is_timed_against_its_float_twin(
    cnn_factory, calib_npz, tmp_path, monkeypatch, target, precision
):
    # a temporary folder of this test's own: the other test worker's conversions make twins of their own meanwhile
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    before = twins()
    result = bmsdk.convert(
        cnn_factory, target=target, precision=precision, calibration=str(calib_npz), output=tmp_path / "a.bmsdk"
    )
    speed = result.manifest.validation.speed
    assert speed.measured and speed.backend == {"onnx": "onnxruntime", "tflite": "litert"}[target]
    assert speed.artifact_ms > 0 and speed.float_ms > 0
    assert speed.speedup == pytest.approx(speed.float_ms / speed.artifact_ms)
    assert speed.accelerated == (speed.artifact_ms <= speed.float_ms * SLOWER_MARGIN)
    assert twins() == before  # the twin was removed
    assert sorted(p.name for p in result.path.iterdir()) == sorted({*result.manifest.files, "bmsdk.json"} - {""})
    reread = bmsdk.load(result.path).manifest.validation.speed
    assert reread == speed


def test_fp32_has_no_twin(cnn_onnx_artifact):
    assert cnn_onnx_artifact.manifest.validation.speed is None


def test_convert_says_how_the_quantized_model_compares(cnn_factory, calib_npz, tmp_path, capsys):
    out = tmp_path / "cli.bmsdk"
    code = main(
        [
            "convert",
            cnn_factory,
            "--target",
            "onnx",
            "--precision",
            "int8",
            "--calibration",
            str(calib_npz),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    speed = bmsdk.load(out).manifest.validation.speed
    assert ("its fp32 twin" in printed) and (("SLOWER" in printed) == (not speed.accelerated))
