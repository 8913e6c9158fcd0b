"""A corpus of hostile and broken inputs, tried as a new user and an attacker would.

The rule for every case: the command ends with exit 2 (bad input) or 1 (where the README says so) and one readable
`error:` line that is not the CLI's last-resort catch-all; the API raises a bmsdk error type; no output or staging
folder is left behind and no code from the input runs. Each case builds its input in a temporary folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hostile.pt2 import ATTACKS, Touch, plain_archive, rewrite

import bmsdk
from bmsdk.artifact import file_checksums
from bmsdk.cli import main
from bmsdk.errors import BmsdkError

CASES: dict[str, tuple] = {}  # name -> (builder(tmp, fx) -> argv, expected exit code)


def case(name: str, code: int = 2):
    def register(builder):
        CASES[name] = (builder, code)
        return builder

    return register


class Fixtures:
    """Session fixtures, requested only by the cases that use them."""

    def __init__(self, request):
        self.request = request

    def __getattr__(self, name):
        return self.request.getfixturevalue(name)


def copy(src: Path, tmp: Path, name: str) -> Path:
    dst = tmp / name
    shutil.copytree(src, dst)
    return dst


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def reseal(art: Path) -> Path:
    """Recompute the checksums after a change, as an attacker editing an unsigned artifact would."""
    edit_json(art / "bmsdk.json", lambda m: m.__setitem__("files", file_checksums(art)))
    return art


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


def convert(source, tmp: Path, *extra) -> list[str]:
    return ["convert", str(source), "-o", str(tmp / "out.bmsdk"), "-q", *extra]


# --- sources -----------------------------------------------------------------------------------


@case("source-missing")
def _(tmp, fx):
    return convert(tmp / "nope.onnx", tmp)


@case("source-unknown-suffix")
def _(tmp, fx):
    (tmp / "model.txt").write_text("hello")
    return convert(tmp / "model.txt", tmp)


@case("source-folder-without-config")
def _(tmp, fx):
    (tmp / "folder").mkdir()
    return convert(tmp / "folder", tmp)


@case("config-not-json")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    (ckpt / "config.json").write_text("{not json")
    return convert(ckpt, tmp)


@case("config-nested-100000-deep")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    (ckpt / "config.json").write_text(deep_json(100_000))
    return convert(ckpt, tmp)


@case("config-100000-layers")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    edit_json(ckpt / "config.json", lambda c: c.__setitem__("num_hidden_layers", 100_000))
    return convert(ckpt, tmp)


@case("config-more-layers-than-weights")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    edit_json(ckpt / "config.json", lambda c: c.__setitem__("num_hidden_layers", 40))
    return convert(ckpt, tmp)


@case("config-absurd-hidden-size")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    edit_json(ckpt / "config.json", lambda c: c.__setitem__("hidden_size", 10**9))
    return convert(ckpt, tmp)


@case("config-remote-code")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    (ckpt / "evil.py").write_text(f"open({str(tmp / 'marker')!r}, 'w')\n")
    edit_json(ckpt / "config.json", lambda c: c.update(model_type="evil", auto_map={"AutoModel": "evil.Model"}))
    return convert(ckpt, tmp)


@case("checkpoint-without-weights")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    (ckpt / "model.safetensors").unlink()
    return convert(ckpt, tmp)


@case("safetensors-truncated")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:300])
    return convert(ckpt, tmp)


@case("safetensors-absurd-header-length")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    weights = ckpt / "model.safetensors"
    weights.write_bytes((2**62).to_bytes(8, "little") + weights.read_bytes()[8:])
    return convert(ckpt, tmp)


@case("checkpoint-for-another-task")
def _(tmp, fx):
    """A bare encoder converted as a classifier: its head would be random."""
    return convert(fx.bert_encoder_dir, tmp, "--task", "text-classification")


@case("tokenizer-json-not-json")
def _(tmp, fx):
    ckpt = copy(fx.bert_classifier_dir, tmp, "ckpt")
    (ckpt / "tokenizer.json").write_text("{broken")
    return convert(ckpt, tmp)


@case("torch-save-pickle")
def _(tmp, fx):
    import torch

    torch.save({"model": Touch(tmp / "marker")}, tmp / "model.pt")
    return convert(tmp / "model.pt", tmp, "--input-shape", "x=1x4")


@case("pt2-not-a-zip")
def _(tmp, fx):
    (tmp / "model.pt2").write_bytes(b"\x80\x04 not a zip")
    return convert(tmp / "model.pt2", tmp)


for _name in ATTACKS:

    def _pt2_case(tmp, fx, _name=_name):
        plain = plain_archive(tmp / "plain.pt2")
        return convert(rewrite(plain, tmp / "evil.pt2", ATTACKS[_name][0](tmp / "marker")), tmp)

    case(f"pt2-{_name}")(_pt2_case)


@case("onnx-garbage")
def _(tmp, fx):
    (tmp / "model.onnx").write_bytes(os.urandom(2048))
    return convert(tmp / "model.onnx", tmp)


def _onnx_model(tmp: Path, op_domain: str = "", dims=(1, 4)) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu" if not op_domain else "EvilOp", ["x"], ["y"], domain=op_domain)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *dims[1:]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", *dims[1:]])],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(op_domain, 1)] if op_domain else [])
    path = tmp / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=opsets), path)
    return path


@case("onnx-custom-domain-op")
def _(tmp, fx):
    return convert(_onnx_model(tmp, op_domain="com.evil"), tmp, "--task", "feature-extraction", "--tokenizer", str(tmp))


@case("onnx-100000x100000-input")
def _(tmp, fx):
    return convert(_onnx_model(tmp, dims=(1, 100_000, 100_000)), tmp)


@case("input-shape-10-to-the-8")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--input-shape", "input=1x100000000x1x1")


@case("input-shape-20-dims")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--input-shape", "input=" + "x".join(["1"] * 20))


@case("input-shape-malformed")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--input-shape", "input=1xthree")


@case("factory-module-missing")
def _(tmp, fx):
    return convert("no_such_module_anywhere:make", tmp)


def _factory(tmp: Path, body: str) -> str:
    (tmp / "user_factory.py").write_text(f"def make():\n    {body}\n")
    import sys

    sys.path.insert(0, str(tmp))
    sys.modules.pop("user_factory", None)
    return "user_factory:make"


@case("factory-calls-sys-exit")
def _(tmp, fx):
    return convert(_factory(tmp, "import sys; sys.exit(3)"), tmp)


@case("factory-returns-not-a-module")
def _(tmp, fx):
    return convert(_factory(tmp, "return 42"), tmp)


@case("factory-raises")
def _(tmp, fx):
    return convert(_factory(tmp, "raise MemoryError('the user model is broken')"), tmp)


@case("factory-weights-are-a-pickle")
def _(tmp, fx):
    (tmp / "weights.pt").write_bytes(pickle.dumps(Touch(tmp / "marker")))
    return convert(fx.cnn_factory, tmp, "--weights", str(tmp / "weights.pt"))


@case("unknown-task")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--task", "translation")


@case("unknown-target")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--target", "openvino")


@case("unknown-precision")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--precision", "int3")


@case("static-int8-without-calibration")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--target", "tflite", "--precision", "int8")


# --- where the output goes ---------------------------------------------------------------------


@case("output-under-a-file")
def _(tmp, fx):
    (tmp / "notes.txt").write_text("x")
    return ["convert", fx.cnn_factory, "-o", str(tmp / "notes.txt" / "out.bmsdk"), "-q"]


@case("output-exists")
def _(tmp, fx):
    (tmp / "out.bmsdk").mkdir()
    return convert(fx.cnn_factory, tmp)


@case("overwrite-a-users-folder")
def _(tmp, fx):
    (tmp / "out.bmsdk").mkdir()
    (tmp / "out.bmsdk" / "thesis.txt").write_text("years of work")
    return convert(fx.cnn_factory, tmp, "--overwrite")


# --- data --------------------------------------------------------------------------------------


@case("eval-missing")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--eval", str(tmp / "none.npz"))


@case("eval-jsonl-not-json")
def _(tmp, fx):
    (tmp / "eval.jsonl").write_text('{"text": "a", "label": 1}\n{oops\n')
    return convert(fx.bert_classifier_dir, tmp, "--eval", str(tmp / "eval.jsonl"))


@case("eval-jsonl-invalid-utf8")
def _(tmp, fx):
    (tmp / "eval.jsonl").write_bytes(b'{"text": "caf\xe9", "label": 1}\n')
    return convert(fx.bert_classifier_dir, tmp, "--eval", str(tmp / "eval.jsonl"))


@case("eval-csv-field-over-limit")
def _(tmp, fx):
    (tmp / "eval.csv").write_text('text,label\n"' + "a" * 200_000 + '",1\n')
    return convert(fx.bert_classifier_dir, tmp, "--eval", str(tmp / "eval.csv"))


@case("eval-npz-object-array")
def _(tmp, fx):
    np.savez(tmp / "eval.npz", x=np.array([Touch(tmp / "marker")], dtype=object), y=np.array([1]))
    return convert(fx.cnn_factory, tmp, "--eval", str(tmp / "eval.npz"))


@case("eval-npz-truncated")
def _(tmp, fx):
    np.savez(tmp / "full.npz", x=np.zeros((50, 28, 28), np.uint8), y=np.zeros(50, np.int64))
    (tmp / "eval.npz").write_bytes((tmp / "full.npz").read_bytes()[:500])
    return convert(fx.cnn_factory, tmp, "--eval", str(tmp / "eval.npz"))


@case("eval-labels-unknown")
def _(tmp, fx):
    np.savez(tmp / "eval.npz", x=np.zeros((4, 28, 28), np.uint8), y=np.array([0, 1, 2, 99]))
    return convert(fx.cnn_factory, tmp, "--eval", str(tmp / "eval.npz"))


@case("eval-text-for-an-image-model")
def _(tmp, fx):
    (tmp / "eval.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    return convert(fx.cnn_factory, tmp, "--eval", str(tmp / "eval.jsonl"))


@case("calibration-empty")
def _(tmp, fx):
    (tmp / "calib.jsonl").write_text("")
    return convert(fx.bert_classifier_dir, tmp, "--calibration", str(tmp / "calib.jsonl"))


@case("labels-count-mismatch")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--labels", "cat,dog")


@case("mean-count-mismatch")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--mean", "0.1,0.2,0.3")


@case("std-zero")
def _(tmp, fx):
    return convert(fx.cnn_factory, tmp, "--std", "0")


@case("max-length-zero")
def _(tmp, fx):
    return convert(fx.bert_classifier_dir, tmp, "--max-length", "0")


# --- artifacts ---------------------------------------------------------------------------------


def _predict(art: Path, *inputs) -> list[str]:
    return ["predict", str(art), *[str(i) for i in inputs]]


def _image(tmp: Path) -> Path:
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp / "digit.png")
    return tmp / "digit.png"


@case("artifact-missing")
def _(tmp, fx):
    return _predict(tmp / "none.bmsdk", "x.png")


@case("artifact-is-a-file")
def _(tmp, fx):
    (tmp / "a.bmsdk").write_text("x")
    return _predict(tmp / "a.bmsdk", "x.png")


@case("manifest-missing")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    (art / "bmsdk.json").unlink()
    return _predict(art, _image(tmp))


@case("manifest-not-json")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    (art / "bmsdk.json").write_text("{")
    return _predict(art, _image(tmp))


@case("manifest-nested-100000-deep")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    (art / "bmsdk.json").write_text(deep_json(100_000))
    return _predict(art, _image(tmp))


@case("manifest-newer-schema")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m.__setitem__("schema_version", 99))
    return _predict(art, _image(tmp))


@case("manifest-unknown-task")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m.__setitem__("task", "mind-reading"))
    return _predict(art, _image(tmp))


@case("manifest-file-outside-artifact")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m.__setitem__("model_file", "../../etc/passwd"))
    return _predict(art, _image(tmp))


@case("manifest-empty-inputs")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m.__setitem__("inputs", []))
    return _predict(art, _image(tmp))


@case("manifest-negative-dim")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m["inputs"][0].__setitem__("shape", ["batch", 1, -28, 28]))
    return _predict(art, _image(tmp))


@case("manifest-mean-length-wrong")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m["preprocessing"].__setitem__("mean", [0.1, 0.2, 0.3]))
    return _predict(art, _image(tmp))


@case("manifest-std-zero")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m["preprocessing"].__setitem__("std", [0.0]))
    return _predict(art, _image(tmp))


@case("manifest-label-count-wrong")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(art / "bmsdk.json", lambda m: m["postprocessing"].__setitem__("labels", ["a", "b"]))
    return _predict(art, _image(tmp))


@case("model-file-checksum-mismatch")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    (art / "model.onnx").write_bytes(b"tampered")
    return _predict(art, _image(tmp))


@case("model-file-garbage-resealed")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    (art / "model.onnx").write_bytes(os.urandom(4096))
    return _predict(reseal(art), _image(tmp))


@case("model-file-is-a-zip-resealed")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    with zipfile.ZipFile(art / "model.onnx", "w") as z:
        z.writestr("a", "b")
    return _predict(reseal(art), _image(tmp))


@case("model-inputs-differ-from-manifest")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    edit_json(
        art / "bmsdk.json",
        lambda m: (
            m["inputs"][0].__setitem__("name", "pixels"),
            m["preprocessing"].__setitem__("input_name", "pixels"),
        ),
    )
    return _predict(art, _image(tmp))


@case("tflite-model-file-garbage-resealed")
def _(tmp, fx):
    art = copy(fx.cnn_tflite_fp32.path, tmp, "a.bmsdk")
    (art / "model.tflite").write_bytes(os.urandom(4096))
    return _predict(reseal(art), _image(tmp))


@case("coreml-model-file-garbage-resealed")
def _(tmp, fx):
    art = copy(fx.cnn_coreml_fp32.path, tmp, "a.bmsdk")
    for file in (art / "model.mlpackage").rglob("*"):
        if file.is_file():
            file.write_bytes(os.urandom(256))
    return _predict(reseal(art), _image(tmp))


@case("tokenizer-in-artifact-not-json-resealed")
def _(tmp, fx):
    art = copy(fx.bert_onnx.path, tmp, "a.bmsdk")
    (art / "tokenizer" / "tokenizer.json").write_text("{broken")
    return _predict(reseal(art), "great film")


@case("unlisted-file-in-artifact")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    (art / "extra.so").write_bytes(b"\x7fELF")
    return _predict(art, _image(tmp))


@case("signature-required-but-missing")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    assert main(["keygen", "-o", str(tmp / "key")]) == 0
    return _predict(art, _image(tmp)) + ["--public-key", str(tmp / "key.pub.pem")]


# --- runtime inputs ----------------------------------------------------------------------------


@case("predict-image-missing")
def _(tmp, fx):
    return _predict(fx.cnn_onnx_artifact.path, tmp / "none.png")


@case("predict-image-not-an-image")
def _(tmp, fx):
    (tmp / "fake.png").write_text("not a png")
    return _predict(fx.cnn_onnx_artifact.path, tmp / "fake.png")


@case("predict-text-to-an-image-model")
def _(tmp, fx):
    return _predict(fx.cnn_onnx_artifact.path, "great film")


@case("predict-npy-object-array")
def _(tmp, fx):
    np.save(tmp / "x.npy", np.array([Touch(tmp / "marker")], dtype=object), allow_pickle=True)
    return _predict(fx.cnn_onnx_artifact.path, tmp / "x.npy")


@case("predict-npy-truncated")
def _(tmp, fx):
    np.save(tmp / "full.npy", np.zeros((28, 28), np.uint8))
    (tmp / "x.npy").write_bytes((tmp / "full.npy").read_bytes()[:200])
    return _predict(fx.cnn_onnx_artifact.path, tmp / "x.npy")


@case("predict-npy-nan-pixels")
def _(tmp, fx):
    np.save(tmp / "x.npy", np.full((28, 28), np.nan, np.float32))
    return _predict(fx.cnn_onnx_artifact.path, tmp / "x.npy")


@case("predict-npy-two-channels")
def _(tmp, fx):
    np.save(tmp / "x.npy", np.zeros((28, 28, 2), np.uint8))
    return _predict(fx.cnn_onnx_artifact.path, tmp / "x.npy")


@case("predict-threads-zero")
def _(tmp, fx):
    return _predict(fx.cnn_onnx_artifact.path, _image(tmp)) + ["--threads", "0"]


# --- other commands ----------------------------------------------------------------------------


@case("bench-batch-zero")
def _(tmp, fx):
    return ["bench", fx.cnn_factory, "--batch", "0", "-o", str(tmp / "out.bmsdk"), "-q"]


@case("bench-baseline-missing-fields")
def _(tmp, fx):
    (tmp / "old.json").write_text(json.dumps({"cells": [{"status": "validated"}]}))
    return ["bench", fx.cnn_factory, "--baseline", str(tmp / "old.json"), "-o", str(tmp / "out.bmsdk"), "-q"]


@case("validate-eval-of-the-wrong-kind")
def _(tmp, fx):
    (tmp / "eval.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n')
    return ["validate", str(fx.cnn_onnx_artifact.path), "--eval", str(tmp / "eval.jsonl")]


@case("export-vectors-into-a-missing-folder")
def _(tmp, fx):
    return ["export-vectors", str(fx.cnn_onnx_artifact.path), "-o", str(tmp / "no" / "such" / "dir" / "v.json")]


@case("sign-with-a-public-key")
def _(tmp, fx):
    art = copy(fx.cnn_onnx_artifact.path, tmp, "a.bmsdk")
    assert main(["keygen", "-o", str(tmp / "key")]) == 0
    return ["sign", str(art), "--key", str(tmp / "key.pub.pem")]


@pytest.fixture(scope="session")
def cnn_tflite_fp32(converted, cnn_factory):
    return converted("tflite-cnn-fp32", cnn_factory, target="tflite", precision="fp32")


@pytest.fixture(scope="session")
def cnn_coreml_fp32(converted, cnn_factory):
    return converted("coreml-cnn-fp32", cnn_factory, target="coreml", precision="fp32")


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_input_gives_one_line_and_leaves_nothing(name, tmp_path, request, capsys):
    builder, code = CASES[name]
    argv = builder(tmp_path, Fixtures(request))
    capsys.readouterr()
    before = sorted(p.name for p in tmp_path.iterdir())
    returned = main(argv)
    err = capsys.readouterr().err.strip()
    assert returned == code, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "--debug for the traceback" not in err, f"reached the CLI's catch-all: {err}"
    assert len(err) <= 800
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "output or staging folder left behind"
    assert not (tmp_path / "marker").exists(), "code from the input ran"


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 60


# --- the API: bmsdk errors, not third-party exceptions --------------------------------------------


def test_api_token_ids_outside_the_vocabulary(bert_onnx):
    model = bmsdk.load(bert_onnx.path)
    feeds = model.preprocess(["great film"])
    feeds["input_ids"] = feeds["input_ids"] + 10_000
    with pytest.raises(bmsdk.InputError, match="outside"):
        model.run(feeds)


def test_api_sequence_longer_than_the_positions(bert_onnx):
    model = bmsdk.load(bert_onnx.path)
    longest = model.manifest.inputs[0].max_dims["sequence"]
    feeds = {s.name: np.zeros((1, longest + 1), np.int64) for s in model.manifest.inputs}
    with pytest.raises(bmsdk.InputError, match="more than the model takes"):
        model.run(feeds)


@pytest.mark.parametrize("fixture", ["cnn_onnx_artifact", "cnn_tflite_fp32", "cnn_coreml_fp32", "torch_artifact"])
def test_api_empty_batch(fixture, request):
    model = bmsdk.load(request.getfixturevalue(fixture).path)
    with pytest.raises(bmsdk.InputError, match="empty"):
        model.run({"input": np.zeros((0, 1, 28, 28), np.float32)})


@pytest.mark.parametrize("bad", [None, {"input": 1}, 42, [None]])
def test_api_predict_refuses_what_is_not_an_input(cnn_onnx_artifact, bad):
    model = bmsdk.load(cnn_onnx_artifact.path)
    with pytest.raises(BmsdkError):
        model.predict(bad)
