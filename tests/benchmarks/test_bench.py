"""`bmsdk bench`: the matrix with failing and skipped cells, the reports, the Pareto front and the baseline gate."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from conftest import digit_images

import bmsdk
from bmsdk.benchmarks.gate import check
from bmsdk.benchmarks.report import pareto_front
from bmsdk.cli import main

FAST = dict(warmup=3, iterations=30, seconds=2.0, repeats=3)

MODELS = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, width, extra_layers):
            super().__init__()
            self.stem = nn.Conv2d(1, width, 3, padding=1)
            self.extra = nn.Sequential(*[nn.Conv2d(width, width, 3, padding=1) for _ in range(extra_layers)])
            self.head = nn.Linear(width, 10)

        def forward(self, x):
            x = torch.relu(self.extra(torch.relu(self.stem(x))))
            return self.head(x.mean(dim=(2, 3)))


    def _make(width, extra_layers, noise=0.0):
        torch.manual_seed(0)
        model = Net(width, extra_layers).eval()
        if noise:
            with torch.no_grad():
                torch.manual_seed(1)
                for p in model.head.parameters():
                    p.add_(noise * torch.randn_like(p))
        model.bmsdk_spec = {"input_shapes": {"input": [1, 1, 28, 28]}, "task": "image-classification"}
        return model


    def fast():
        return _make(8, 0)


    def slow():
        """Wider, with six more convolutions: a real latency regression."""
        return _make(64, 6)


    def damaged():
        """fast() with noise on its classifier: a real accuracy regression."""
        return _make(8, 0, noise=2.0)
''')


@pytest.fixture(scope="module")
def bench_models(tmp_path_factory):
    import sys

    folder = tmp_path_factory.mktemp("benchmods")
    (folder / "bmsdk_benchmods.py").write_text(MODELS)
    sys.path.insert(0, str(folder))
    import bmsdk_benchmods

    images = digit_images(200, seed=3)
    with __import__("torch").inference_mode():
        x = __import__("torch").from_numpy(images).float()[:, None] / 255.0
        labels = bmsdk_benchmods.fast()(x).argmax(-1).numpy()  # the fast model is right by construction
    data = folder / "eval.npz"
    np.savez(data, x=images, y=labels)
    yield data
    sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def fast_report(bench_models, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-fast")
    return bmsdk.benchmark(
        "bmsdk_benchmods:fast",
        out,
        targets=["onnx", "nosuch"],
        precisions=["fp32", "int8", "int8-dynamic"],
        eval_data=str(bench_models),
        batches=[1, 4],
        **FAST,
    ), out


def test_matrix_cells_reports_and_plot(fast_report):
    result, out = fast_report
    cells = {(c["target"], c["precision"]): c for c in result.report["cells"]}
    assert len(cells) == 6  # the full matrix, failures included
    fp32 = cells[("onnx", "fp32")]
    assert fp32["status"] == "validated" and fp32["metric"]["accuracy"] == 1.0 and fp32["top1_agreement"] == 1.0
    assert set(fp32["latency"]) == {"1", "4"} and fp32["latency"]["4"]["throughput_per_s"] > 0
    assert fp32["device_real"] is True and fp32["load_ms"] > 0 and fp32["end_to_end"]["p50_ms"] > 0
    assert (
        fp32["speedup_vs_source"]["1"] > 0 and "overhead" in fp32 and fp32["overhead"]["raw"].startswith("onnxruntime")
    )
    # static int8 without calibration data: the cell fails with the reason, the matrix goes on
    assert cells[("onnx", "int8")]["status"] == "failed" and "calibration" in cells[("onnx", "int8")]["reason"]
    assert (
        cells[("onnx", "int8-dynamic")]["status"] == "skipped"
        and "int8-dynamic" in cells[("onnx", "int8-dynamic")]["reason"]
    )
    assert cells[("nosuch", "fp32")]["status"] == "skipped" and "unknown target" in cells[("nosuch", "fp32")]["reason"]
    assert result.report["source_model"]["latency"]["1"]["p50_ms"] > 0
    saved = json.loads((out / "report.json").read_text())
    assert (
        saved["schema_version"] == 1
        and saved["environment"]["threads"] == 1
        and "onnxruntime" in saved["environment"]["libraries"]
    )
    md = (out / "report.md").read_text()
    assert "| onnx | fp32 | validated |" in md and "| onnx | int8 | failed" in md
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_pareto_front():
    points = [(1.0, 0.90), (2.0, 0.95), (3.0, 0.94), (0.5, 0.80), (2.0, 0.90)]
    assert pareto_front(points) == [3, 0, 1]  # (3.0, 0.94) and (2.0, 0.90) are dominated


def test_gate_passes_an_identical_rerun(bench_models, fast_report, tmp_path):
    """A real rerun passes the accuracy gate (its latency against the baseline is what the next test times: on two
    shared cores a 0.05 ms model's rerun has measured +101% once, so it is not asserted here)."""
    baseline = fast_report[1] / "report.json"
    rerun = bmsdk.benchmark(
        "bmsdk_benchmods:fast",
        tmp_path,
        targets=["onnx"],
        precisions=["fp32"],
        eval_data=str(bench_models),
        baseline=baseline,
        max_accuracy_drop=0.5,
        **FAST,
    )
    assert rerun.passed, rerun.regressions


def test_noise_alone_never_fails_a_cell(fast_report):
    """A rerun whose cells are slower than the baseline's by their measured noise (the 95% half-width of the median)
    passes even a zero budget, which the noise widens; slower by more, it fails."""
    baseline = fast_report[0].report

    def slower(by_noise: float) -> dict:
        rerun = json.loads(json.dumps(baseline))
        for cell in rerun["cells"]:
            for latency in (cell.get("latency") or {}).values():
                assert latency["noise_pct"] > 0
                latency["p50_ms"] *= 1 + by_noise * latency["noise_pct"] / 100
        return rerun

    assert check(slower(1.0), baseline, None, 0) == []
    assert check(slower(3.0), baseline, None, 0)


def test_gate_fails_on_real_latency_and_accuracy_regressions(bench_models, fast_report, tmp_path):
    baseline = fast_report[1] / "report.json"
    slow = bmsdk.benchmark(
        "bmsdk_benchmods:slow",
        tmp_path / "slow",
        targets=["onnx"],
        precisions=["fp32"],
        eval_data=str(bench_models),
        baseline=baseline,
        max_accuracy_drop=100,
        max_latency_regression=50,
        **FAST,
    )
    assert any("onnx fp32 batch 1: latency" in r for r in slow.regressions), slow.regressions
    damaged = bmsdk.benchmark(
        "bmsdk_benchmods:damaged",
        tmp_path / "damaged",
        targets=["onnx"],
        precisions=["fp32"],
        eval_data=str(bench_models),
        baseline=baseline,
        max_accuracy_drop=0.5,
        **FAST,
    )
    assert any("onnx fp32: accuracy" in r for r in damaged.regressions), damaged.regressions


def test_gate_flags_a_cell_that_stopped_working():
    baseline = {"cells": [{"target": "onnx", "precision": "int8", "status": "validated"}]}
    report = {"cells": [{"target": "onnx", "precision": "int8", "status": "failed", "reason": "boom"}]}
    assert check(report, baseline, 0.5, 25) == ["onnx int8: was validated, now failed (boom)"]


def test_cli_bench_exit_codes(bench_models, fast_report, tmp_path, capsys):
    baseline = fast_report[1] / "report.json"
    args = [
        "bench",
        "bmsdk_benchmods:damaged",
        "--eval",
        str(bench_models),
        "--iterations",
        "20",
        "--repeats",
        "1",
        "--seconds",
        "1",
        "-o",
        str(tmp_path),
        "-q",
        "--baseline",
        str(baseline),
    ]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "gate FAILED" in err and "accuracy" in err
    assert (
        main(["bench", "bmsdk_benchmods:fast", "--baseline", str(tmp_path / "missing.json"), "-o", str(tmp_path)]) == 2
    )


def test_case_files_are_valid_and_bad_ones_are_refused(tmp_path, monkeypatch):
    from bmsdk.benchmarks.cases import CASES_DIR, KEYS, load_case
    from bmsdk.errors import DataError

    for path in CASES_DIR.glob("*.json"):
        case = json.loads(path.read_text())
        assert set(case) <= KEYS and case["source"].startswith("zoo:"), path
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"source": "x", "targest": ["onnx"]}))
    with pytest.raises(DataError, match="targest"):
        load_case(bad)
    monkeypatch.setenv("BMSDK_CACHE", str(tmp_path / "cache"))
    cfg = load_case(CASES_DIR / "ci-smoke.json", threads=2)
    assert cfg.threads == 2 and cfg.source == "bmsdk.benchmarks.zoo:mnist_cnn" and len(cfg.eval_data) == 1000


def test_scaling_by_batch_and_sequence_length(bert_classifier_dir, text_jsonl, tmp_path):
    result = bmsdk.benchmark(
        str(bert_classifier_dir),
        tmp_path,
        targets=["onnx"],
        eval_data=str(text_jsonl),
        batches=[1, 4],
        seq_lengths=[8, 32, 100000],  # longer than the model's max_length: left out
        **FAST,
    )
    cell = result.report["cells"][0]
    assert set(cell["latency"]) == {"1", "4"}
    assert set(cell["sequence_latency"]) == {"8", "32"} and all(v > 0 for v in cell["sequence_latency"].values())
    assert result.report["settings"]["seq_lengths"] == [8, 32, 100000]
    text = result.paths["md"].read_text()
    assert "Scaling" in text and "seq 32" in text and "batch 4" in text
    assert result.paths["scaling"].stat().st_size > 0


def test_sequence_feeds_keep_the_kind_of_values():
    from bmsdk.benchmarks.measure import sequence_feeds

    feeds = {"input_ids": np.array([[101, 7, 8, 102]]), "attention_mask": np.ones((1, 4), np.int64)}
    out = sequence_feeds(feeds, 6)
    assert out["input_ids"].tolist() == [[101, 7, 8, 102, 101, 7]] and out["attention_mask"].tolist() == [[1] * 6]
    assert sequence_feeds(feeds, 2)["input_ids"].tolist() == [[101, 7]]


def test_bad_sequence_lengths_are_refused(bench_models, tmp_path):
    with pytest.raises(bmsdk.UnsupportedError, match="--seq-lengths must be an integer >= 1"):
        bmsdk.benchmark("bmsdk_benchmods:fast", tmp_path, seq_lengths=[0])
