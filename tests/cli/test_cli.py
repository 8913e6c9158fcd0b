"""The `bmsdk` command line: help on every command, exit codes 0/1/2, one-line errors, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TEXT_LABELS, digit_images

from bmsdk.cli import main

COMMANDS = ["convert", "predict", "inspect", "validate", "doctor"]


def bmsdk_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The installed entry point, in a subprocess, as a user runs it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "bmsdk.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"bmsdk {command}" in out and "Exit codes" in out


def test_convert_predict_inspect_validate(tmp_path, bert_classifier_dir, text_jsonl, capsys):
    out = tmp_path / "bert.bmsdk"
    assert (
        main(
            [
                "convert",
                str(bert_classifier_dir),
                "--target",
                "onnx",
                "--precision",
                "int8",
                "--eval",
                str(text_jsonl),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert str(out) in printed.out and "validation passed" in printed.out and "accuracy" in printed.out
    assert "building onnx int8" in printed.err  # progress on the long steps

    assert main(["predict", str(out), "the movie was great", "awful", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["input"] for r in results] == ["the movie was great", "awful"]
    assert all(r["output"]["label"] in TEXT_LABELS and 0 <= r["output"]["score"] <= 1 for r in results)

    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "checksums verified" in text and "input_ids: int64[batch, sequence]" in text and "dynamic" in text
    assert main(["inspect", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] == "int8"

    assert main(["validate", str(out), "--eval", str(text_jsonl)]) == 0
    assert "validation passed" in capsys.readouterr().out


def test_predict_images_and_npy(tmp_path, cnn_onnx_artifact, capsys):
    from PIL import Image

    images = digit_images(3)
    png = tmp_path / "digit.png"
    Image.fromarray(images[0]).save(png)
    npy = tmp_path / "digits.npy"
    np.save(npy, images[1:])
    assert main(["predict", str(cnn_onnx_artifact.path), str(png), str(npy)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3  # one PNG plus two images from the .npy batch
    with __import__("bmsdk").load(cnn_onnx_artifact.path) as model:
        expected = [p["label"] for p in model.predict(list(images))]
    assert [line.split("\t")[0] for line in lines] == expected


def test_doctor_lists_runtimes(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime" in out and "GPU:" in out and "onnx (ready)" in out


def test_tasks_lists_every_registered_task_with_its_targets(capsys):
    import json

    from bmsdk.tasks import task_names

    assert main(["tasks", "--json"]) == 0
    rows = {r["task"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(task_names())
    assert "*ForSequenceClassification" in rows["text-classification"]["huggingface"]["architectures"]
    assert "onnx" in rows["image-classification"]["targets"]
    zoo = rows["text-classification"]["architectures"]  # sdk/tasks/support.json, from the zoo run
    assert zoo["bert"]["passed"] == zoo["bert"]["cells"] > 0 and "onnx" in zoo["bert"]["targets"]
    # the task zoo's cells (tests/zoo/task_zoo.py): every task beyond classification lists what it was run on
    for task in set(task_names()) - {"text-classification", "image-classification", "feature-extraction"}:
        found = rows[task]["architectures"]
        assert found and all(a["cells"] > 0 for a in found.values()), task
    assert "roberta" in rows["token-classification"]["architectures"]
    assert main(["tasks"]) == 0
    assert "text-generation" in capsys.readouterr().out


def test_validate_exits_1_when_the_artifact_drifts(tmp_path, cnn_onnx_artifact, capsys):
    """Outputs that disagree with the stored source outputs fail validation with exit code 1."""
    import shutil

    from bmsdk.artifact import file_checksums, load_samples, save_samples
    from bmsdk.manifest import Manifest

    art = tmp_path / "drift.bmsdk"
    shutil.copytree(cnn_onnx_artifact.path, art)
    inputs, outputs, raw = load_samples(art)
    save_samples(art, inputs, {k: v + 1.0 for k, v in outputs.items()}, raw)  # a source that "changed"
    manifest = Manifest.read(art)
    manifest.files = file_checksums(art)
    manifest.write(art)
    assert main(["validate", str(art)]) == 1
    assert "FAILED" in capsys.readouterr().out


# --- bad input: exit 2, one readable line, no traceback, nothing written ---------------------


def _assert_clean_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_inputs_give_one_line_and_exit_2(tmp_path, bert_classifier_dir, cnn_factory, cnn_onnx_artifact, workdir):
    out = tmp_path / "out.bmsdk"
    cases = [
        (["convert", str(tmp_path / "missing"), "-o", str(out)], ["does not exist"]),
        (["convert", str(tmp_path), "-o", str(out)], ["not a Hugging Face checkpoint"]),
        (["convert", str(bert_classifier_dir), "--target", "nosuch", "-o", str(out)], ["unknown target"]),
        (["convert", str(bert_classifier_dir), "--precision", "int3", "-o", str(out)], ["does not support precision"]),
        (["convert", str(bert_classifier_dir), "--task", "translation", "-o", str(out)], ["unknown task"]),
        (["predict", str(tmp_path / "nothing.bmsdk"), "hi"], ["does not exist"]),
    ]
    for args, words in cases:
        _assert_clean_error(bmsdk_cli(*args, "--quiet") if args[0] == "convert" else bmsdk_cli(*args), *words)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.bmsdk")]  # no partial folder either


def test_wrong_calibration_shape_exits_2_and_writes_nothing(tmp_path, cnn_factory, workdir):
    bad = tmp_path / "rgb.npz"
    np.savez(bad, x=np.zeros((4, 3, 32, 32), dtype=np.float32))  # a preprocessed batch of the wrong shape
    out = tmp_path / "cnn.bmsdk"
    result = bmsdk_cli(
        "convert",
        cnn_factory,
        "--precision",
        "int8",
        "--calibration",
        str(bad),
        "-o",
        str(out),
        "--quiet",
        cwd=workdir / "factories",
    )  # a factory is imported from the working directory
    _assert_clean_error(result, "calibration data")
    assert not out.exists() and not list(tmp_path.glob(".cnn.bmsdk*"))


def test_newer_schema_and_tampered_model_exit_2(tmp_path, cnn_onnx_artifact):
    import shutil

    newer = tmp_path / "newer.bmsdk"
    shutil.copytree(cnn_onnx_artifact.path, newer)
    manifest = json.loads((newer / "bmsdk.json").read_text())
    manifest["schema_version"] = 99
    (newer / "bmsdk.json").write_text(json.dumps(manifest))
    _assert_clean_error(bmsdk_cli("inspect", str(newer)), "newer", "upgrade bmsdk")

    tampered = tmp_path / "tampered.bmsdk"
    shutil.copytree(cnn_onnx_artifact.path, tampered)
    with open(tampered / "model.onnx", "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    _assert_clean_error(bmsdk_cli("predict", str(tampered), str(tmp_path / "x.npy")), "model.onnx", "sha256")


def test_unexpected_errors_exit_1_and_debug_shows_traceback(tmp_path):
    """An internal failure (here: a corrupt ONNX source) is a one-liner; --debug adds the traceback."""
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a protobuf")
    result = bmsdk_cli("convert", str(bad), "-o", str(tmp_path / "o.bmsdk"), "--quiet")
    _assert_clean_error(result, "not a valid ONNX model")
    debug = bmsdk_cli("convert", str(bad), "-o", str(tmp_path / "o.bmsdk"), "--quiet", "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr
