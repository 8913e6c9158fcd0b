"""`bmsdk optimize` and `convert --precision auto`: the verdicts on hand-made cells (budget, float twin, reference
executor, objective), then real searches of the demo's MNIST CNN on onnxruntime and LiteRT."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bmsdk
from bmsdk.benchmarks.optimize import (
    fallback_round,
    judge,
    pruning_round,
    ranking,
    rejection,
    smoothing_round,
)
from bmsdk.cli import main as cli
from bmsdk.errors import BmsdkError, DataError, UnsupportedError

CNN = "bmsdk.benchmarks.zoo:mnist_cnn"


def _cell(target, precision, p50, drop=0.0, size=1.0, status="validated", **extra):
    return {
        "target": target,
        "precision": precision,
        "status": status,
        "task": "image-classification",
        "latency": {"1": {"p50_ms": p50}} if p50 is not None else {},
        "accuracy_change_pt": drop,
        "metric": {"accuracy": 0.99 + drop / 100},
        "size_mb": size,
        "device_real": True,
        "backend": "onnxruntime",
        **extra,
    }


def _report(cells):
    return {"batches": [1], "source_model": None, "cells": cells}


def test_the_fastest_candidate_within_the_budget_is_chosen():
    slower_int8 = {"accelerated": False, "artifact_ms": 0.2, "float_ms": 0.1}
    cells = [
        _cell("onnx", "fp32", 0.10, size=1.7),
        _cell("onnx", "int8", 0.05, drop=-0.8, size=0.4),  # fastest, but over the 0.5 pt budget
        _cell("tflite", "int8", 0.04, size=0.4, speed_vs_float=slower_int8),  # slower than its float twin
        _cell("coreml", "fp16", 0.01, size=0.8, device_real=False, backend="mil-reference"),
        _cell("tflite", "fp32", 0.08, size=1.7),
        _cell("executorch", "int8", None, status="failed", reason="boom"),
    ]
    verdicts = judge(_report(cells), 0.5, "latency")
    assert [v["chosen"] for v in verdicts] == [False, False, False, False, True, False]
    reasons = [v["reason"] for v in verdicts]
    assert "over the 0.5 pt budget" in reasons[1]
    assert "slower than its float twin (0.200 ms against 0.100 ms)" in reasons[2]
    assert "mil-reference, not on its device" in reasons[3]
    assert reasons[5] == "failed: boom"
    assert ranking(cells, 0.5, "latency") == [4, 0]
    # by size a reference executor's timing does not matter: the smallest that fits, then the faster of equals
    assert ranking(cells, 0.5, "size") == [3, 4, 0]
    assert rejection(cells[1], 1.0, "latency") is None  # a wider budget takes the int8


def test_the_pareto_front_is_latency_against_the_metric():
    cells = [_cell("onnx", "fp32", 0.1), _cell("onnx", "int8", 0.05, drop=-0.1), _cell("tflite", "fp32", 0.2)]
    pareto = [v["pareto"] for v in judge(_report(cells), 0.5, "latency")]
    assert pareto == [True, True, False]  # tflite fp32: slower than onnx fp32 at the same accuracy


def test_fallback_and_pruning_rounds():
    cells = [
        _cell("onnx", "int8", 0.05, drop=-2.0),  # over budget, onnx keeps layers in float: retried
        _cell("onnx", "fp32", 0.1, drop=-2.0),  # float: nothing to fall back to
        _cell("onnx", "int4", 0.05, drop=-0.1),  # within budget
        _cell("onnx", "int8", 0.05, drop=-2.0, task="feature-extraction"),  # no accuracy to budget
    ]
    assert fallback_round(cells, 0.5) == [("onnx", "int8", "fallback", {"max_accuracy_drop": 0.5})]
    # 0.5 pt lost, as float arithmetic computes it from accuracies, fits a 0.5 pt budget: nothing to fall back from
    at_the_budget = _cell("onnx", "int8", 0.05, drop=100 * (0.7185 - 0.7235))
    assert -at_the_budget["accuracy_change_pt"] > 0.5 and fallback_round([at_the_budget], 0.5) == []
    assert rejection(at_the_budget, 0.5, "latency") is None
    best = [{**cells[2]}, {**cells[0], "variant": "fallback"}]
    specs = pruning_round(best, [0.3], "train.npz", 0.5)
    assert specs == [
        ("onnx", "int4", "pruned-30%+recovery", {"prune": 0.3, "recover": "train.npz"}),
        ("onnx", "int8", "pruned-30%+recovery", {"prune": 0.3, "recover": "train.npz", "max_accuracy_drop": 0.5}),
    ]


def test_text_int8_over_the_budget_is_smoothed_before_layers_go_float():
    text = dict(task="text-classification")
    cells = [
        _cell("onnx", "int8", 5.0, drop=-1.0, **text),  # over budget: smoothed (static, given calibration)
        _cell("tflite", "int8-dynamic", 5.0, drop=-0.7, **text),  # over budget: smoothed
        _cell("tflite", "fp16", 9.0, drop=-0.7, **text),  # not int8: nothing to smooth
        _cell("tflite", "int8", 6.0, drop=-0.2, **text),  # within budget
        _cell("executorch", "int8", 6.0, drop=-2.0, **text),  # smoothing not measured there
        _cell("onnx", "int8", 0.05, drop=-2.0),  # an image model: SmoothQuant rescales linear layers only
    ]
    static = {"quant_scheme": "static"}
    assert smoothing_round(cells, 0.5, calibrated=True) == [  # each strength a candidate
        ("onnx", "int8", "smoothed-0.9", {"smooth_quant": 0.9, **static}),
        ("onnx", "int8", "smoothed-1", {"smooth_quant": 1.0, **static}),
        ("tflite", "int8-dynamic", "smoothed-0.9", {"smooth_quant": 0.9}),
        ("tflite", "int8-dynamic", "smoothed-1", {"smooth_quant": 1.0}),
    ]
    assert smoothing_round(cells, 0.5, calibrated=False)[0] == ("onnx", "int8", "smoothed-0.9", {"smooth_quant": 0.9})
    # a smoothed onnx int8 fits: the tflite int8-dynamic, neither of whose smoothed rebuilds does, keeps layers
    # float (and the fp16, never smoothed)
    cells = cells[:4] + [
        {**cells[0], "variant": "smoothed-0.9", "accuracy_change_pt": -0.7},
        {**cells[0], "variant": "smoothed-1", "accuracy_change_pt": -0.2},
        {**cells[1], "variant": "smoothed-0.9", "accuracy_change_pt": -0.6},
        {**cells[1], "variant": "smoothed-1", "accuracy_change_pt": -0.8},
    ]
    fallback = {"max_accuracy_drop": 0.5}
    assert fallback_round(cells, 0.5) == [
        ("tflite", "int8-dynamic", "fallback", fallback),
        ("tflite", "fp16", "fallback", fallback),
    ]
    assert pruning_round([cells[5]], [0.3], None, 0.5, calibrated=True) == [  # pruned with its own strength
        ("onnx", "int8", "pruned-30%", {"prune": 0.3, "smooth_quant": 1.0, **static})
    ]


# --- real searches ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_mnist(mnist, tmp_path_factory):
    test, calib = mnist
    path = tmp_path_factory.mktemp("optimize-data") / "mnist-300.npz"
    with np.load(test) as data:
        np.savez(path, x=data["x"][:300], y=data["y"][:300])
    return path, calib


@pytest.fixture(scope="module")
def searched(small_mnist, tmp_path_factory):
    root = tmp_path_factory.mktemp("optimize")
    test, calib = small_mnist
    result = bmsdk.optimize(
        CNN,
        ["onnx", "tflite"],
        str(test),
        output=root / "best.bmsdk",
        out_dir=root / "report",
        precisions=["fp32", "int8", "int8-dynamic"],
        calibration=str(calib),
    )
    return result, root


def test_optimize_ships_the_fastest_fitting_candidate(searched):
    result, root = searched
    cells, verdicts = result.report["cells"], result.report["optimize"]["verdicts"]
    assert [(c["target"], c["precision"]) for c in cells] == [
        ("onnx", "fp32"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8-dynamic"), ("tflite", "int8"),
    ]  # fmt: skip
    fits = [c for c, v in zip(cells, verdicts) if v["fits"]]
    assert fits, verdicts
    chosen = min(fits, key=lambda c: c["latency"]["1"]["p50_ms"])
    assert result.chosen is chosen and sum(v["chosen"] for v in verdicts) == 1
    assert -chosen["accuracy_change_pt"] <= 0.5
    assert all(v["reason"] for v in verdicts if not v["fits"])
    with bmsdk.load(result.path) as model:  # the shipped copy is a whole, verified artifact
        assert (model.manifest.target, model.manifest.precision) == (chosen["target"], chosen["precision"])
        assert model.predict(np.zeros((28, 28), np.uint8))["label"] is not None
    assert {"json", "md", "optimize", "png"} <= set(result.paths)
    saved = json.loads(result.paths["json"].read_text())
    assert saved["optimize"]["chosen"] == f"{chosen['target']} {chosen['precision']}"
    assert "**shipped**" in result.paths["optimize"].read_text()


def test_nothing_fits_ships_nothing_and_exits_1(small_mnist, tmp_path, capsys):
    test, _ = small_mnist
    out = tmp_path / "none.bmsdk"
    # CoreML here runs on the MIL reference executor: no candidate has a device latency to rank by
    args = ["optimize", CNN, "--targets", "coreml", "--precisions", "fp16", "--eval", str(test), "-o", str(out)]
    code = cli([*args, "--report", str(tmp_path / "report")])
    assert code == 1
    assert not out.exists() and not any(p.name.startswith(".none") for p in tmp_path.iterdir())
    printed = capsys.readouterr()
    assert "not on its device" in printed.out and "no candidate fits" in printed.err


def test_convert_precision_auto_searches_the_target(small_mnist, tmp_path, capsys, monkeypatch):
    test, calib = small_mnist
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "auto.bmsdk"
    code = cli(["convert", CNN, "--target", "onnx", "--precision", "auto", "--eval", str(test),
                "--calibration", str(calib), "-o", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "reports" / "optimize" / "report.json").read_text())
    assert {c["target"] for c in report["cells"]} == {"onnx"}
    assert {c["precision"] for c in report["cells"]} == {"fp32", "fp16", "int8", "int4"}
    with bmsdk.load(out) as model:
        assert f"onnx {model.manifest.precision}" == report["optimize"]["chosen"]


@pytest.mark.parametrize(
    "options,error,match",
    [
        (dict(targets=[]), UnsupportedError, "needs the targets"),
        (dict(targets=["nope"]), BmsdkError, "nope"),
        (dict(eval_data=None), DataError, "pass --eval"),
        (dict(objective="speed"), UnsupportedError, "unknown objective"),
        (dict(max_accuracy_drop=-1), UnsupportedError, "not a drop in points"),
        (dict(precisions=["int3"]), UnsupportedError, "no target of onnx has any of the precisions"),
        (dict(prune=[1.5]), UnsupportedError, "not a ratio"),
        (dict(time_budget_s=0), UnsupportedError, "not positive"),
    ],
)
def test_bad_requests_are_refused_before_any_work(options, error, match, tmp_path):
    kwargs = dict(targets=["onnx"], eval_data="data.npz", output=tmp_path / "x.bmsdk", out_dir=tmp_path / "r")
    with pytest.raises(error, match=match):
        bmsdk.optimize(CNN, **{**kwargs, **options})
    assert not (tmp_path / "r").exists()


def test_an_existing_output_is_refused_before_the_search(tmp_path):
    (tmp_path / "taken.bmsdk").mkdir()
    with pytest.raises(BmsdkError, match="already exists"):
        bmsdk.optimize(CNN, ["onnx"], "data.npz", output=tmp_path / "taken.bmsdk", out_dir=tmp_path / "r")
