"""The bmsdk.json manifest: round trip, schema version, and validation on load (no models needed)."""

from __future__ import annotations

import copy
import json

import pytest

from bmsdk.errors import ManifestError
from bmsdk.manifest import MANIFEST_NAME, SCHEMA_VERSION, Manifest, TensorSpec
from bmsdk.sections import Compression, OnnxConfig, Quantization, Validation


def make_manifest() -> Manifest:
    return Manifest(
        name="tiny",
        task="text-classification",
        target="onnx",
        precision="int8",
        model_file="model.onnx",
        inputs=[
            TensorSpec("input_ids", "int64", ["batch", "sequence"]),
            TensorSpec("attention_mask", "int64", ["batch", "sequence"]),
        ],
        outputs=[TensorSpec("logits", "float32", ["batch", 2])],
        files={"model.onnx": "ab" * 32, "tokenizer/tokenizer.json": "cd" * 32},
        preprocessing={"kind": "text", "tokenizer": "tokenizer/tokenizer.json", "max_length": 64},
        postprocessing={"output": "logits", "labels": ["negative", "positive"], "softmax": True},
        compression=Compression(quantization=Quantization(scheme="dynamic")),
        source={"path": "/x", "format": "huggingface"},
        toolchain={"onnx": "1.0"},
        validation=Validation(validated=True, passed=True),
        target_config=OnnxConfig(opset=18),
        created="2025-01-01T00:00:00+00:00",
        bmsdk_version="0.1.0",
    )


def test_round_trip_through_disk(tmp_path):
    manifest = make_manifest()
    path = manifest.write(tmp_path)
    assert path == tmp_path / MANIFEST_NAME
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION
    assert raw["inputs"][0] == {"name": "input_ids", "dtype": "int64", "shape": ["batch", "sequence"]}
    again = Manifest.read(tmp_path)
    assert again == manifest
    assert again.labels == ["negative", "positive"]
    assert again.input("attention_mask").shape == ["batch", "sequence"]
    assert isinstance(again.inputs[0], TensorSpec)
    assert again.outputs[0].describe() == "logits: float32[batch, 2]"


def test_round_trip_through_dict():
    d = make_manifest().to_dict()
    assert Manifest.from_dict(copy.deepcopy(d)).to_dict() == d


def test_older_optional_fields_default():
    d = make_manifest().to_dict()
    for key in ("preprocessing", "compression", "validation", "target_config", "created"):
        del d[key]
    m = Manifest.from_dict(d)
    assert m.preprocessing == {} and m.compression == Compression() and m.validation == Validation() and m.created == ""
    assert m.target_config is None


def test_newer_schema_asks_for_upgrade():
    d = make_manifest().to_dict()
    d["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ManifestError, match="upgrade") as info:
        Manifest.from_dict(d)
    assert str(SCHEMA_VERSION + 1) in str(info.value)


def test_newer_schema_on_disk(tmp_path):
    d = make_manifest().to_dict()
    d["schema_version"] = 99
    d["some_future_field"] = {"x": 1}  # a newer schema may add fields: the version check must come first
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(d))
    with pytest.raises(ManifestError, match="upgrade"):
        Manifest.read(tmp_path)


@pytest.mark.parametrize("version", [None, "1", 1.0, True])
def test_schema_version_must_be_an_int(version):
    d = make_manifest().to_dict()
    if version is None:
        del d["schema_version"]
    else:
        d["schema_version"] = version
    with pytest.raises(ManifestError, match="schema_version"):
        Manifest.from_dict(d)


@pytest.mark.parametrize("field", ["name", "task", "target", "precision", "model_file", "inputs", "outputs", "files"])
def test_missing_required_field(field):
    d = make_manifest().to_dict()
    del d[field]
    with pytest.raises(ManifestError, match=f"missing the field '{field}'"):
        Manifest.from_dict(d)


@pytest.mark.parametrize(
    "field,value", [("name", 3), ("inputs", {"input_ids": "int64"}), ("files", ["model.onnx"]), ("precision", None)]
)
def test_wrong_field_type(field, value):
    d = make_manifest().to_dict()
    d[field] = value
    with pytest.raises(ManifestError, match=f"'{field}' must be"):
        Manifest.from_dict(d)


@pytest.mark.parametrize("field", ["preprocessing", "postprocessing", "compression", "validation", "target_config"])
def test_optional_sections_must_be_objects(field):
    d = make_manifest().to_dict()
    d[field] = ["not", "an", "object"]
    with pytest.raises(ManifestError, match=field):
        Manifest.from_dict(d)


def test_unknown_task():
    d = make_manifest().to_dict()
    d["task"] = "depth-estimation"
    with pytest.raises(ManifestError, match="unknown task 'depth-estimation'"):
        Manifest.from_dict(d)


def test_unknown_field():
    d = make_manifest().to_dict()
    d["surprise"] = 1
    with pytest.raises(ManifestError, match="surprise"):
        Manifest.from_dict(d)


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"name": "x", "dtype": "float128", "shape": [1]}, "unknown dtype"),
        ({"name": "x", "dtype": "float32", "shape": [1, True]}, "bad dim"),
        ({"name": "x", "dtype": "float32", "shape": [1, 2.5]}, "bad dim"),
        ({"name": "x", "dtype": "float32"}, "missing the field 'shape'"),
        ({"name": "x", "dtype": "float32", "shape": "1x3"}, "'shape' must be"),
    ],
)
def test_bad_tensor_specs(spec, match):
    d = make_manifest().to_dict()
    d["inputs"] = [spec]
    with pytest.raises(ManifestError, match=match):
        Manifest.from_dict(d)


def test_model_file_needs_a_checksum():
    d = make_manifest().to_dict()
    d["files"] = {"tokenizer/tokenizer.json": "cd" * 32}
    with pytest.raises(ManifestError, match="checksum"):
        Manifest.from_dict(d)


def test_not_an_object_and_not_json(tmp_path):
    with pytest.raises(ManifestError, match="not a JSON object"):
        Manifest.from_dict([1, 2])
    (tmp_path / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.read(tmp_path)
    with pytest.raises(ManifestError, match="no bmsdk.json"):
        Manifest.read(tmp_path / "nowhere")
