"""The cluster's parts that need neither Ray nor a conversion: devices, artifact transfer, resume, the adb runner
on a recorded transcript, the SSH runner's commands, the exact merge of sharded metrics, Ray missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bmsdk.benchmarks import cluster
from bmsdk.benchmarks.harness import BenchConfig, run_benchmark
from bmsdk.benchmarks.resume import finished_cells
from bmsdk.benchmarks.runners import AdbRunner, LocalRunner, SshRunner, runner_for
from bmsdk.benchmarks.runners.adb import Adb, Transcript, parse_benchmark_model
from bmsdk.benchmarks.shards import confusion, metrics_from_confusion
from bmsdk.cli import main
from bmsdk.errors import IntegrityError, RunError
from bmsdk.tasks.metrics import classification_metrics

# `adb shell /data/local/tmp/benchmark_model ...` as LiteRT's benchmark tool prints it (trimmed)
BENCHMARK_MODEL_OUTPUT = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [1]
INFO: Graph: [/data/local/tmp/bmsdk/cnn-tflite-fp32.bmsdk-model.tflite]
INFO: Loaded model /data/local/tmp/bmsdk/cnn-tflite-fp32.bmsdk-model.tflite
INFO: The input model file size (MB): 0.021
INFO: Initialized session in 4.312ms.
INFO: Running benchmark for at least 10 iterations and at least 0.5 seconds but terminate if exceeding 2 seconds.
INFO: count=10 first=512 curr=201 min=198 max=512 avg=233.4 std=93
INFO: Running benchmark for at least 30 iterations and at least 1 seconds but terminate if exceeding 2 seconds.
INFO: count=30 first=205 curr=199 min=190 max=260 avg=204.7 std=14
INFO: Inference timings in us: Init: 4312, First inference: 512, Warmup (avg): 233.4, Inference (avg): 204.7
INFO: Memory footprint delta from the start of the tool (MB): init=2.125 overall=3.5
"""

CFG = SimpleNamespace(batches=[1, 4], threads=2, warmup=10, iterations=30, seconds=2.0, repeats=3)


def test_benchmark_model_output_is_parsed():
    result = parse_benchmark_model(BENCHMARK_MODEL_OUTPUT)
    lat = result["latency"]["1"]
    assert lat["runs"] == 30 and lat["mean_ms"] == pytest.approx(0.2047) and lat["min_ms"] == pytest.approx(0.19)
    assert lat["p50_ms"] == lat["mean_ms"] and lat["statistic"].startswith("mean")  # no median printed: says so
    assert result["load_ms"] == pytest.approx(4.312) and result["rss_delta_mb"] == 3.5
    with_median = BENCHMARK_MODEL_OUTPUT.replace("std=14", "std=14 p5=191 median=201 p95=240")
    assert parse_benchmark_model(with_median)["latency"]["1"]["p50_ms"] == pytest.approx(0.201)
    with pytest.raises(RunError, match="no timings"):
        parse_benchmark_model("ERROR: Could not open model\n")


def test_adb_runner_replays_a_recorded_session(tmp_path, monkeypatch):
    folder = tmp_path / "cnn-tflite-fp32.bmsdk"
    folder.mkdir()
    (folder / "model.tflite").write_bytes(b"TFL3")
    monkeypatch.setattr(
        "bmsdk.benchmarks.runners.adb.open_artifact", lambda p: (Path(p), SimpleNamespace(model_file="model.tflite"))
    )
    remote = "/data/local/tmp/bmsdk/cnn-tflite-fp32.bmsdk-model.tflite"
    adb = ["adb", "-s", "R58M123"]
    transcript = Transcript(
        [
            ([*adb, "shell", "mkdir", "-p", "/data/local/tmp/bmsdk"], "", 0),
            ([*adb, "push", str(folder / "model.tflite"), remote], "1 file pushed.\n", 0),
            (
                [*adb, "shell", "/data/local/tmp/benchmark_model", f"--graph={remote}", "--num_threads=2"]
                + ["--warmup_runs=10", "--num_runs=30", "--max_secs=2"],
                BENCHMARK_MODEL_OUTPUT,
                0,
            ),
            ([*adb, "shell", "getprop", "ro.product.model"], "Pixel 8\n", 0),
            ([*adb, "shell", "getprop", "ro.build.version.release"], "15\n", 0),
            ([*adb, "shell", "getprop", "ro.product.cpu.abi"], "arm64-v8a\n", 0),
            ([*adb, "shell", "getprop", "ro.soc.model"], "Tensor G3\n", 0),
        ]
    )
    runner = AdbRunner("R58M123", Adb("R58M123", run=transcript))
    cell = runner.measure(folder, None, CFG)
    assert not transcript.calls  # every recorded call made, in order
    assert cell["device_real"] and "R58M123" in cell["backend"] and cell["phone"]["ro.product.model"] == "Pixel 8"
    assert cell["latency"]["1"]["runs"] == 30
    failing = Adb("R58M123", run=Transcript([([*adb, "shell", "mkdir", "-p", "/data/local/tmp/bmsdk"], "", 1)]))
    with pytest.raises(RunError, match="exited 1"):
        AdbRunner("R58M123", failing).measure(folder, None, CFG)


def test_ssh_runner_copies_the_artifact_and_runs_bmsdk_on_the_board(tmp_path):
    runner = SshRunner("jetson.local", python="/opt/venv/bin/python")
    mkdir, copy, run = runner.commands(tmp_path / "cnn-onnx-fp32.bmsdk", CFG)
    assert mkdir[:3] == ["ssh", "-o", "BatchMode=yes"] and mkdir[-1] == "mkdir -p /tmp/bmsdk-bench"
    assert copy[0] == "scp" and copy[-1] == "jetson.local:/tmp/bmsdk-bench/"
    assert run[3] == "jetson.local" and run[4].startswith("/opt/venv/bin/python -m bmsdk.benchmarks.runners.remote")
    assert "/tmp/bmsdk-bench/cnn-onnx-fp32.bmsdk --batches 1,4 --threads 2" in run[4]


def test_runner_for_each_device():
    assert isinstance(runner_for(None), LocalRunner) and isinstance(runner_for("cpu:intel-xeon"), LocalRunner)
    assert runner_for("android:R58M").serial == "R58M" and runner_for("ssh:board").host == "board"
    assert runner_for("coreml").name == "coreml"


def test_device_resolution():
    held = {"CPU": 2.0, "cpu:intel-xeon": 2.0, "gpu:nvidia-h100": 1.0}
    assert cluster.resolve_device("gpu", held) == "gpu:nvidia-h100"
    assert cluster.resolve_device("cpu:intel-xeon", held) == "cpu:intel-xeon"
    assert cluster.resolve_device("android:R58M", held) is None and cluster.resolve_device(None, held) is None
    cfg = BenchConfig("m:f", [], [], devices={"tflite": "android:R58M"})
    assert cluster.cell_device(cfg, ("tflite", "fp32")) == "android:R58M"
    assert cluster.cell_device(cfg, ("onnx", "fp32", "x", {"device": "gpu"})) == "gpu"


def test_artifact_transfer_is_checksummed(tmp_path):
    art = tmp_path / "a.bmsdk"
    (art / "sub").mkdir(parents=True)
    (art / "model.onnx").write_bytes(b"weights")
    (art / "sub" / "x.json").write_text("{}")
    digest = cluster.folder_digest(art)
    data = cluster.pack(art)
    back = cluster.unpack(data, tmp_path / "arrived", digest)
    assert (back / "model.onnx").read_bytes() == b"weights" and cluster.folder_digest(back) == digest
    tampered = data.replace(b"weights", b"weightz")
    with pytest.raises(IntegrityError, match="changed on its way"):
        cluster.unpack(tampered, tmp_path / "tampered", digest)


def test_resume_keeps_finished_cells_and_reruns_lost_ones(tmp_path):
    report = {
        "source_model": {"target": "torch", "precision": "fp32", "latency": {}},
        "cells": [
            {"target": "onnx", "precision": "fp32", "status": "validated"},
            {"target": "onnx", "precision": "int8", "status": "failed", "reason": "x", "attempts": ["died"] * 3},
            {"target": "nosuch", "precision": "fp32", "status": "skipped", "reason": "unknown target"},
        ],
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    done = finished_cells(path)
    assert set(done) == {("onnx", "fp32", ""), ("nosuch", "fp32", ""), None}
    # every cell finished: nothing is converted again and the cells come back as they were
    cfg = BenchConfig("no.such:factory", [], [], cells=[("onnx", "fp32"), ("nosuch", "fp32")])
    again = run_benchmark(cfg, tmp_path / "out", done=done)
    assert again["cells"] == [report["cells"][0], report["cells"][2]] and again["source_model"]["target"] == "torch"


def test_sharded_macro_f1_is_exact():
    rng = np.random.default_rng(0)
    truth = np.concatenate([rng.integers(0, 3, 200), rng.integers(2, 6, 50)])  # shards with other class mixes
    pred = np.where(rng.random(250) < 0.7, truth, rng.integers(0, 6, 250))
    whole = classification_metrics(pred, truth, 6)
    shards = [slice(0, 200), slice(200, 250)]
    merged = metrics_from_confusion(sum(confusion(pred[s], truth[s], 6) for s in shards))
    assert merged["accuracy"] == pytest.approx(whole["accuracy"], abs=1e-12)
    assert merged["macro_f1"] == pytest.approx(whole["macro_f1"], abs=1e-12) and merged["n"] == 250
    averaged = np.mean([classification_metrics(pred[s], truth[s], 6)["macro_f1"] for s in shards])
    assert abs(averaged - whole["macro_f1"]) > 0.01  # what averaging per shard would have reported instead


def test_without_ray_bench_cluster_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["bench", "some.module:factory", "--cluster", "local:2", "-o", "/nonexistent/out"]) == 2
    assert "pip install 'bmsdk[cluster]'" in capsys.readouterr().err
