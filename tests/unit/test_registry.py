"""Targets, backends and tasks come from entry points, and each declares everything about itself in one class."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import tomllib

from bmsdk.converters import all_targets, get_target, target_names
from bmsdk.converters.target import Target, TargetOptions
from bmsdk.errors import UnsupportedError
from bmsdk.plugins import entry_points
from bmsdk.runtimes import backend_class, backend_names, backends_for
from bmsdk.tasks import detect_task, get_task, task_names

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def extra_packages(extra: str) -> set[str]:
    """The package names an extra installs, following bmsdk[...] self-references."""
    names = set()
    for requirement in PYPROJECT["project"]["optional-dependencies"][extra]:
        name = requirement.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        if requirement.startswith("bmsdk["):
            for inner in requirement[len("bmsdk[") : requirement.index("]")].split(","):
                names |= extra_packages(inner)
        else:
            names.add(name.strip().lower().replace("_", "-"))
    return names


def test_builtin_plugins_are_registered_through_entry_points():
    assert {"onnx", "tflite", "coreml", "tensorrt", "torch"} <= set(target_names())
    assert {"onnxruntime", "litert", "coreml", "mil-reference", "tensorrt", "torch"} <= set(backend_names())
    assert {"text-classification", "image-classification", "feature-extraction"} <= set(task_names())
    declared = PYPROJECT["project"]["entry-points"]
    assert set(declared["bmsdk.targets"]) == set(target_names())
    assert set(declared["bmsdk.backends"]) == set(backend_names())


@pytest.mark.parametrize("name", ["onnx", "tflite", "coreml", "tensorrt", "torch"])
def test_every_target_declares_itself_in_one_class(name):
    target = get_target(name)
    assert isinstance(target, Target) and target.name == name
    assert target.precisions and all(0 < tol.min_cosine <= 1 for tol in target.precisions.values())
    assert target.backend in backend_names() and name in backend_class(target.backend).runs
    assert target.model_file and issubclass(target.options, TargetOptions)
    # the extra a target names installs every package it requires (doctor reads the same list)
    required = {p.lower().replace("_", "-") for p in target.requirements}
    assert required <= extra_packages(target.extra), (name, required - extra_packages(target.extra))


def test_an_unknown_precision_is_an_error_not_int8():
    with pytest.raises(UnsupportedError, match="does not support precision 'int3'"):
        get_target("onnx").tolerance("int3")
    assert get_target("onnx").tolerance("fp32").max_rel_error == 1e-4


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnsupportedError, match="unknown target 'openvino'") as e:
        get_target("openvino")
    assert "onnx" in e.value.fix
    with pytest.raises(UnsupportedError, match="unknown task"):
        get_task("depth-estimation")
    with pytest.raises(UnsupportedError, match="unknown backend"):
        backend_class("tvm")


def test_options_are_typed_and_each_target_refuses_the_others():
    onnx = get_target("onnx")
    options = onnx.parse_options({"quant_scheme": "static", "opset": 17, "seq_buckets": None})
    assert options.quant_scheme == "static" and options.opset == 17
    with pytest.raises(UnsupportedError, match=r"does not take the option\(s\) \['seq_buckets'\]"):
        onnx.parse_options({"seq_buckets": "16,32"})


def test_each_target_adds_its_own_cli_flags_once():
    parser = argparse.ArgumentParser()
    taken: set[str] = set()
    for target in all_targets():
        target.add_arguments(parser, taken)
    args = parser.parse_args(["--seq-buckets", "16,32", "--shapes", "batch=1:8:32", "--opset", "17"])
    assert args.seq_buckets == "16,32" and args.shapes == ["batch=1:8:32"] and args.opset == 17
    titles = [g.title for g in parser._action_groups]
    assert {"onnx options", "tflite options", "coreml options", "tensorrt options"} <= set(titles)


def test_backends_for_a_target_default_first():
    assert backends_for("onnx") == ["onnxruntime"]
    assert backends_for("tensorrt")[0] == "tensorrt" and "onnxruntime" in backends_for("tensorrt")
    assert set(backends_for("coreml")) == {"coreml", "mil-reference"}
    assert backends_for("nonexistent") == []


def test_tasks_detect_hugging_face_architectures():
    assert detect_task(["BertForSequenceClassification"]).name == "text-classification"
    assert detect_task(["ViTForImageClassification"]).name == "image-classification"
    assert detect_task(["BertModel"]).name == "feature-extraction"
    assert detect_task(["SomethingElse"]) is None
    assert detect_task(["HubertForSequenceClassification"]).name == "audio-classification"
    assert detect_task(["BertForSequenceClassification"], {"model_type": "bert"}).name == "text-classification"
    assert get_task("text-classification").classifier and not get_task("feature-extraction").classifier


def test_a_name_registered_twice_by_two_packages_is_refused(monkeypatch):
    from importlib import metadata

    twice = [
        metadata.EntryPoint("onnx", "a.b:C", "bmsdk.targets"),
        metadata.EntryPoint("onnx", "x.y:Z", "bmsdk.targets"),
    ]
    monkeypatch.setattr(metadata, "entry_points", lambda group: twice)
    entry_points.cache_clear()
    try:
        with pytest.raises(UnsupportedError, match="two packages register 'onnx'"):
            entry_points("bmsdk.targets")
    finally:
        monkeypatch.undo()
        entry_points.cache_clear()
