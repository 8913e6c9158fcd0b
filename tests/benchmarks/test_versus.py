"""benchmarks/versus.py on the demo's MNIST CNN: every by-hand variant is built, run on real onnxruntime and LiteRT,
scored and timed beside bmsdk's artifact; variants that run the same graph agree with it on accuracy."""

from __future__ import annotations

import json

import pytest

import bmsdk
from bmsdk.benchmarks.versus import versus

CASE = "benchmarks/cases/ci-smoke.json"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("versus")
    shipped = bmsdk.convert("bmsdk.benchmarks.zoo:mnist_cnn", target="onnx", output=out / "shipped.bmsdk").path
    return versus(CASE, str(shipped), {"the same file by path": str(shipped / "model.onnx")}, out, 2, 60), out


def test_every_by_hand_variant_is_built_scored_and_timed(report):
    result, out = report
    names = [r["variant"] for r in result["rows"]]
    assert names[0] == "bmsdk onnx fp32 (Model.run)"
    for expected in ("torch eager", "onnxruntime fp32", "onnxruntime int8 static QDQ", "LiteRT fp32",
                     "LiteRT int8-dynamic", "LiteRT int8 static", "the same file by path"):  # fmt: skip
        assert expected in names
    assert all(r["us"] > 0 and 0 <= r["accuracy"] <= 100 for r in result["rows"])
    assert result["rows"][0]["ratio_to_bmsdk"] == 1.0
    assert json.loads((out / "versus.json").read_text())["rows"] == result["rows"]
    assert "| LiteRT int8 static |" in (out / "versus.md").read_text()


def test_the_same_graph_scores_the_same(report):
    rows = {r["variant"]: r for r in report[0]["rows"]}
    ours = rows["bmsdk onnx fp32 (Model.run)"]["accuracy"]
    assert rows["onnxruntime fp32"]["accuracy"] == ours == rows["the same file by path"]["accuracy"]
    assert abs(rows["torch eager"]["accuracy"] - ours) <= 100 / 60  # at most one image of 60 differs
    assert ours > 90  # the pretrained CNN on real MNIST digits
