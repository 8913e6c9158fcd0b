"""Bad input gets a typed error that says what was expected, and a failed conversion leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from conftest import CNN_SHAPE, digit_images

import bmsdk
from bmsdk.errors import BmsdkError, ConversionError, DataError, InputError, SourceError, UnsupportedError


def convert_fails(exc, source, tmp_path, match=None, **options):
    """Convert into tmp_path/out.bmsdk expecting `exc`; check that tmp_path holds nothing new afterwards."""
    before = set(os.listdir(tmp_path))
    out = tmp_path / "out.bmsdk"
    with pytest.raises(exc, match=match) as info:
        bmsdk.convert(str(source), output=out, **options)
    assert not out.exists()
    assert set(os.listdir(tmp_path)) == before, "a staging folder or partial artifact was left behind"
    assert isinstance(info.value, BmsdkError) and info.value.exit_code in (1, 2)
    return info.value


# --- sources ---------------------------------------------------------------------------


def test_missing_source_path(tmp_path):
    err = convert_fails(SourceError, tmp_path / "nope" / "model.onnx", tmp_path, match="does not exist")
    assert err.fix  # says what to pass instead


def test_folder_without_config(tmp_path):
    folder = tmp_path / "not-a-checkpoint"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 16)
    convert_fails(SourceError, folder, tmp_path, match="config.json")


def test_checkpoint_without_weights(bert_classifier_dir, tmp_path):
    folder = tmp_path / "noweights"
    shutil.copytree(bert_classifier_dir, folder)
    (folder / "model.safetensors").unlink()
    convert_fails(SourceError, folder, tmp_path, match="no weights")


def test_corrupt_safetensors(bert_classifier_dir, tmp_path):
    folder = tmp_path / "corrupt"
    shutil.copytree(bert_classifier_dir, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # truncated
    convert_fails(SourceError, folder, tmp_path, match="not a valid safetensors file|could not load the checkpoint")


def test_corrupt_config_json(bert_classifier_dir, tmp_path):
    folder = tmp_path / "badconfig"
    shutil.copytree(bert_classifier_dir, folder)
    (folder / "config.json").write_text("{ this is not json")
    convert_fails(SourceError, folder, tmp_path, match="not valid JSON")


def test_corrupt_onnx_file(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"definitely not a protobuf" * 10)
    convert_fails(SourceError, path, tmp_path, match="not a valid ONNX model")


def test_unknown_file_type(tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"HDF")
    convert_fails(SourceError, path, tmp_path, match="unknown model file type")


def test_corrupt_pt2(tmp_path):
    path = tmp_path / "broken.pt2"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    convert_fails(SourceError, path, tmp_path, match="torch.export")


class _Trap:
    """Unpickling this creates a marker folder: proof that a file was unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("zipped", [True, False])
def test_pickled_torch_save_is_refused_without_unpickling(cnn_module, tmp_path, zipped):
    import torch

    marker = tmp_path / "UNPICKLED"
    path = tmp_path / "model.pt"
    torch.save({"model": cnn_module, "trap": _Trap(str(marker))}, path, _use_new_zipfile_serialization=zipped)
    err = convert_fails(SourceError, path, tmp_path, match="pickle", input_shapes={"input": CNN_SHAPE})
    assert "never unpickles" in str(err)
    assert not marker.exists(), "the pickle was loaded"


def test_factory_that_cannot_be_imported(tmp_path):
    convert_fails(SourceError, "no_such_pkg_xyz.models:make", tmp_path, match="cannot import factory")


def test_factory_without_shapes(cnn_factory, tmp_path):
    plain = cnn_factory.replace(":make_model", ":make_plain_model")
    convert_fails(SourceError, plain, tmp_path, match="input shapes")


def test_bad_input_shape_strings():
    from bmsdk.converters.sources.loader import parse_input_shapes

    assert parse_input_shapes(["input=1x3x224x224", "mask=1x7"]) == {"input": [1, 3, 224, 224], "mask": [1, 7]}
    for bad in ("input", "input=1x3xHx224", "=1x3", "input=1,3"):
        with pytest.raises(SourceError, match="input-shape"):
            parse_input_shapes([bad])


def test_factory_weights_are_loaded_safely(cnn_factory, cnn_module, tmp_path):
    """--weights takes a state_dict (weights_only=True); a pickled object there is refused."""
    import torch

    marker = tmp_path / "UNPICKLED"
    bad = tmp_path / "weights.pt"
    torch.save({"conv1.weight": _Trap(str(marker))}, bad)
    convert_fails(SourceError, cnn_factory, tmp_path, match="cannot load weights", weights=bad)
    assert not marker.exists()

    # a real state_dict with changed weights changes the model
    state = {k: v.clone() for k, v in cnn_module.state_dict().items()}
    state["fc.bias"] += torch.arange(10, dtype=torch.float32) * 100
    good = tmp_path / "good.pt"
    torch.save(state, good)
    result = bmsdk.convert(cnn_factory, output=tmp_path / "w.bmsdk", weights=good)
    assert result.manifest.validation.passed is True
    assert result.manifest.source["sha256"]
    assert bmsdk.load(result.path).predict(digit_images(1)[0])["label"] == "9"  # the huge bias wins


# --- tasks, targets, precisions --------------------------------------------------------


def test_unknown_task(cnn_factory, tmp_path):
    convert_fails(UnsupportedError, cnn_factory, tmp_path, match="unknown task 'translation'", task="translation")


def test_unknown_target(cnn_factory, tmp_path):
    convert_fails(UnsupportedError, cnn_factory, tmp_path, match="unknown target 'openvino'", target="openvino")


@pytest.mark.parametrize("target,precision", [("torch", "int8"), ("torch", "fp16"), ("onnx", "int2"), ("onnx", "bf16")])
def test_unsupported_precision(cnn_factory, tmp_path, target, precision):
    err = convert_fails(
        UnsupportedError,
        cnn_factory,
        tmp_path,
        match=f"does not support precision '{precision}'",
        target=target,
        precision=precision,
    )
    assert "fp32" in err.fix


def test_unknown_target_option(cnn_factory, tmp_path):
    convert_fails(UnsupportedError, cnn_factory, tmp_path, match="option", target="torch", quant_scheme="static")


def test_unknown_quant_scheme(cnn_factory, calib_npz, tmp_path):
    convert_fails(
        UnsupportedError,
        cnn_factory,
        tmp_path,
        match="unknown quantization scheme 'awq'",
        precision="int8",
        calibration=calib_npz,
        quant_scheme="awq",
    )


def test_torch_target_from_onnx_source(cnn_onnx, tmp_path):
    convert_fails(ConversionError, cnn_onnx, tmp_path, match="PyTorch source", target="torch")


# --- calibration and evaluation data ----------------------------------------------------


def test_calibration_of_the_wrong_shape(cnn_factory, tmp_path):
    data = tmp_path / "calib.npz"
    np.savez(data, x=np.zeros((8, 3, 28, 28), np.float32))  # 3 channels, the model takes 1
    err = convert_fails(
        DataError, cnn_factory, tmp_path, match="does not fit the model", precision="int8", calibration=data
    )
    assert "float32[batch, 1, 28, 28]" in str(err)  # says what was expected


def test_calibration_of_the_wrong_kind(cnn_factory, text_jsonl, tmp_path):
    convert_fails(
        DataError,
        cnn_factory,
        tmp_path,
        match="text inputs but the model takes image",
        precision="int8",
        calibration=text_jsonl,
    )


def test_calibration_that_does_not_exist(cnn_factory, tmp_path):
    convert_fails(
        DataError, cnn_factory, tmp_path, match="does not exist", precision="int8", calibration=tmp_path / "nope.npz"
    )


@pytest.mark.parametrize(
    "content,match",
    [
        ("not json at all\n", "not JSON"),
        (json.dumps({"sentence": "x", "label": 1}) + "\n", "no 'text' field"),
    ],
)
def test_malformed_jsonl(bert_classifier_dir, tmp_path, content, match):
    data = tmp_path / "data.jsonl"
    data.write_text(content)
    convert_fails(DataError, bert_classifier_dir, tmp_path, match=match, eval_data=data)


def test_eval_text_without_labels(bert_classifier_dir, tmp_path):
    data = tmp_path / "unlabelled.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in ("good", "bad")))
    convert_fails(DataError, bert_classifier_dir, tmp_path, match="no labels", eval_data=data)


def test_eval_images_without_labels(cnn_factory, tmp_path):
    data = tmp_path / "x_only.npz"
    np.savez(data, x=digit_images(4))
    convert_fails(DataError, cnn_factory, tmp_path, match="no labels", eval_data=data)


def test_npz_with_mismatched_labels(cnn_factory, tmp_path):
    data = tmp_path / "xy.npz"
    np.savez(data, x=digit_images(4), y=np.arange(3))
    convert_fails(DataError, cnn_factory, tmp_path, match="y has 3", eval_data=data)


def test_npz_with_objects_is_not_unpickled(cnn_factory, tmp_path):
    data = tmp_path / "obj.npz"
    np.savez(data, x=np.array([{"a": 1}, None], dtype=object))
    convert_fails(DataError, cnn_factory, tmp_path, match="plain .npz", eval_data=data)


def test_image_folder_without_classes(cnn_factory, tmp_path):
    folder = tmp_path / "flat"
    folder.mkdir()
    convert_fails(DataError, cnn_factory, tmp_path, match="class subfolders", eval_data=folder)


# --- Model.run: names, dtypes, shapes ----------------------------------------------------


def test_run_wrong_input_names(bert_onnx):
    model = bmsdk.load(bert_onnx.path)
    feeds = model.preprocess(["good movie"])
    feeds["ids"] = feeds.pop("input_ids")
    with pytest.raises(InputError) as info:
        model.run(feeds)
    message = str(info.value)
    assert "missing ['input_ids']" in message and "unexpected ['ids']" in message
    assert "input_ids: int64[batch, sequence]" in message


def test_run_wrong_dtype(bert_onnx):
    model = bmsdk.load(bert_onnx.path)
    feeds = model.preprocess(["good movie"])
    feeds["attention_mask"] = feeds["attention_mask"].astype(np.int32)
    with pytest.raises(InputError, match=r"'attention_mask' has dtype int32.*attention_mask: int64\[batch, sequence\]"):
        model.run(feeds)


def test_run_wrong_rank_and_size(cnn_onnx_artifact):
    model = bmsdk.load(cnn_onnx_artifact.path)
    with pytest.raises(InputError, match=r"shape \[1, 28, 28\].*input: float32\[batch, 1, 28, 28\]"):
        model.run({"input": np.zeros((1, 28, 28), np.float32)})
    with pytest.raises(InputError, match=r"size 32 on axis 3.*input: float32\[batch, 1, 28, 28\]"):
        model.run({"input": np.zeros((1, 1, 28, 32), np.float32)})
    with pytest.raises(InputError, match="float32"):
        model.run({"input": np.zeros((1, 1, 28, 28), np.float64)})
    with pytest.raises(InputError, match="not a numpy array"):
        model.run({"input": [[0.0]]})
    with pytest.raises(InputError, match="dict"):
        model.run(np.zeros((1, 1, 28, 28), np.float32))


def test_run_disagreeing_dynamic_dims(bert_onnx):
    model = bmsdk.load(bert_onnx.path)
    feeds = model.preprocess(["good movie", "bad"])
    feeds["attention_mask"] = feeds["attention_mask"][:1]
    with pytest.raises(InputError, match="batch"):
        model.run(feeds)


def test_predict_bad_inputs(bert_onnx, cnn_onnx_artifact, tmp_path):
    text = bmsdk.load(bert_onnx.path)
    with pytest.raises(InputError, match="empty"):
        text.predict([])
    with pytest.raises(InputError, match="strings"):
        text.predict([1, 2])
    image = bmsdk.load(cnn_onnx_artifact.path)
    with pytest.raises(InputError, match="does not exist"):
        image.predict(tmp_path / "missing.png")
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    with pytest.raises(InputError, match="not a readable image"):
        image.predict(junk)
    with pytest.raises(InputError, match="cannot read an image"):
        image.predict([{"pixels": 1}])


def test_wrong_backend_for_target(cnn_onnx_artifact):
    with pytest.raises(UnsupportedError, match="cannot run a 'onnx' artifact"):
        bmsdk.load(cnn_onnx_artifact.path, backend="torch")
    with pytest.raises(UnsupportedError, match="unknown backend"):
        from bmsdk.runtimes import backend_class

        backend_class("tensorflow")


def test_errors_are_typed_and_readable():
    err = DataError("the data is bad", "fix it")
    assert err.problem == "the data is bad" and err.fix == "fix it"
    assert "the data is bad" in str(err) and "fix it" in str(err) and "\n" not in str(err)
    assert isinstance(err, BmsdkError) and err.exit_code == 2
    assert ConversionError("x").exit_code == 1
    for cls in (SourceError, DataError, UnsupportedError, InputError):
        assert issubclass(cls, BmsdkError) and getattr(bmsdk, cls.__name__) is cls
