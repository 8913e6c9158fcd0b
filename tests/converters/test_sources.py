"""Every source kind converts to ONNX fp32, validates against the source, and predicts like the source."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    CNN_MEAN,
    CNN_SHAPE,
    CNN_STD,
    TEXT_LABELS,
    TEXTS,
    VIT_LABELS,
    VIT_SIZE,
    digit_images,
    softmax,
    torch_logits_cnn,
)

import bmsdk
from bmsdk.artifact import SAMPLES_NAME, load_samples
from bmsdk.manifest import Manifest


def assert_validated_fp32(result):
    v = result.manifest.validation
    assert v.validated is True
    assert v.passed is True, v
    assert v.backend == "onnxruntime"
    assert v.samples.max_rel_error < 1e-4
    assert v.samples.min_cosine > 0.9999
    assert v.samples.n >= 2
    assert result.passed is True
    # what the caller got is what was written
    on_disk = Manifest.read(result.path)
    assert on_disk.to_dict() == result.manifest.to_dict()
    assert (result.path / "model.onnx").is_file() and (result.path / SAMPLES_NAME).is_file()
    assert not list(result.path.parent.glob(f".{result.path.name}*")), "a staging folder was left behind"


# --- text classification (Hugging Face folder) ----------------------------------------


def test_text_classifier_converts_and_validates(bert_onnx, bert_classifier_dir):
    assert_validated_fp32(bert_onnx)
    m = bert_onnx.manifest
    assert m.task == "text-classification" and m.target == "onnx" and m.precision == "fp32"
    assert [i.name for i in m.inputs] == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i.dtype == "int64" and i.shape == ["batch", "sequence"] for i in m.inputs)
    assert m.outputs[0].name == "logits" and m.outputs[0].shape == ["batch", 2]
    assert m.labels == TEXT_LABELS
    assert (bert_onnx.path / "tokenizer" / "tokenizer.json").is_file()
    assert m.source["format"] == "huggingface"
    # every file but the manifest has a checksum
    files = {p.relative_to(bert_onnx.path).as_posix() for p in bert_onnx.path.rglob("*") if p.is_file()}
    assert set(m.files) == files - {"bmsdk.json"}


def test_text_predict_matches_transformers(bert_onnx, bert_classifier_dir):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(bert_classifier_dir))
    ref_model = BertForSequenceClassification.from_pretrained(str(bert_classifier_dir)).eval()
    with torch.no_grad():
        ref = softmax(ref_model(**tok(TEXTS, padding=True, return_tensors="pt")).logits.numpy())

    model = bmsdk.load(bert_onnx.path)
    assert model.backend == "onnxruntime" and model.task == "text-classification"
    batch = model.predict(TEXTS)
    assert isinstance(batch, list) and len(batch) == len(TEXTS)
    got = np.array([[p["scores"][n] for n in TEXT_LABELS] for p in batch])
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert [p["label"] for p in batch] == [TEXT_LABELS[i] for i in ref.argmax(1)]
    assert len({p["label"] for p in batch}) == 2, "the tiny model should not predict one class for everything"

    single = model.predict(TEXTS[0])
    assert isinstance(single, dict)
    assert single["label"] == batch[0]["label"] and single["index"] == TEXT_LABELS.index(single["label"])
    assert single["score"] == pytest.approx(max(single["scores"].values()))
    assert sum(single["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    # a single text is scored the same alone as inside a padded batch
    assert single["scores"]["positive"] == pytest.approx(batch[0]["scores"]["positive"], abs=1e-5)


def test_text_samples_hold_source_outputs(bert_onnx):
    inputs, outputs, raw = load_samples(bert_onnx.path)
    assert set(inputs) == {"input_ids", "attention_mask", "token_type_ids"}
    assert raw is not None and len(raw) == len(inputs["input_ids"]) == len(outputs["logits"])
    model = bmsdk.load(bert_onnx.path)
    np.testing.assert_allclose(model.run(inputs)["logits"], outputs["logits"], rtol=1e-4, atol=1e-5)
    # the raw texts re-tokenize to the stored inputs
    again = model.preprocess(list(raw))
    np.testing.assert_array_equal(again["input_ids"], inputs["input_ids"])


def test_text_dynamic_batch_and_sequence(bert_onnx):
    model = bmsdk.load(bert_onnx.path)
    short = model.predict(["good"])
    long = model.predict(["the movie was not good but the film was great fun " * 3] * 5)
    assert len(short) == 1 and len(long) == 5
    feeds = model.preprocess(["the movie was not good but the film was great fun " * 3])
    assert feeds["input_ids"].shape[1] > 20
    # longer texts are truncated to what the model's position embeddings allow (64 here), and still run
    assert model.manifest.preprocessing["max_length"] == 64
    assert model.preprocess(["good " * 500])["input_ids"].shape == (1, 64)
    assert model.predict("good " * 500)["label"] in TEXT_LABELS


# --- feature extraction ---------------------------------------------------------------


def test_feature_extraction(converted, bert_encoder_dir):
    import torch
    from transformers import AutoTokenizer, BertModel

    result = converted("enc-fp32", bert_encoder_dir, target="onnx")
    assert_validated_fp32(result)
    assert result.manifest.task == "feature-extraction"
    assert result.manifest.outputs[0].name == "last_hidden_state"

    model = bmsdk.load(result.path)
    emb = model.predict(TEXTS[:4])
    assert isinstance(emb, np.ndarray) and emb.shape == (4, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)

    tok = AutoTokenizer.from_pretrained(str(bert_encoder_dir))
    enc = BertModel.from_pretrained(str(bert_encoder_dir)).eval()
    batch = tok(TEXTS[:4], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = enc(**batch).last_hidden_state.numpy()
    mask = batch["attention_mask"].numpy()[..., None].astype(np.float32)
    ref = (hidden * mask).sum(1) / mask.sum(1)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(emb, ref, atol=1e-4)

    one = model.predict(TEXTS[0])
    assert one.shape == (32,)
    np.testing.assert_allclose(one, emb[0], atol=1e-5)


# --- image classification: ViT (Hugging Face folder) ------------------------------------


def test_vit_converts_and_predicts_every_image_form(converted, vit_dir, tmp_path):
    import torch
    from PIL import Image
    from transformers import ViTForImageClassification

    result = converted("vit-fp32", vit_dir, target="onnx")
    assert_validated_fp32(result)
    m = result.manifest
    assert m.task == "image-classification" and m.labels == VIT_LABELS
    assert m.inputs[0].name == "pixel_values" and m.inputs[0].shape == ["batch", 3, VIT_SIZE, VIT_SIZE]
    assert m.preprocessing["size"] == [VIT_SIZE, VIT_SIZE]
    assert m.preprocessing["mean"] == [0.5] * 3 and m.preprocessing["std"] == [0.5] * 3

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (4, VIT_SIZE, VIT_SIZE, 3), dtype=np.uint8)
    ref_model = ViTForImageClassification.from_pretrained(str(vit_dir)).eval()
    x = (images.astype(np.float32) / 255 - 0.5) / 0.5
    with torch.no_grad():
        ref = softmax(ref_model(pixel_values=torch.from_numpy(x.transpose(0, 3, 1, 2))).logits.numpy())

    model = bmsdk.load(result.path)
    from_arrays = model.predict(list(images))
    got = np.array([[p["scores"][n] for n in VIT_LABELS] for p in from_arrays])
    np.testing.assert_allclose(got, ref, atol=1e-4)

    path = tmp_path / "img.png"
    Image.fromarray(images[0]).save(path)
    for form in (images[0], Image.fromarray(images[0]), path, str(path)):
        pred = model.predict(form)
        assert isinstance(pred, dict), type(form)
        assert pred["label"] == from_arrays[0]["label"]
        assert pred["score"] == pytest.approx(from_arrays[0]["score"], abs=1e-5)

    # a different-size image is resized to the model's input size
    big = Image.fromarray(rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    assert model.predict(big)["label"] in VIT_LABELS


# --- image classification: a small CNN from every PyTorch / ONNX form -----------------


def check_cnn_artifact(result, cnn_module, tmp_path, input_name="input"):
    from PIL import Image

    assert_validated_fp32(result)
    m = result.manifest
    assert m.task == "image-classification"
    assert m.inputs[0].name == input_name and m.inputs[0].shape == ["batch", *CNN_SHAPE[1:]]
    assert m.outputs[0].shape == ["batch", 10]
    assert m.preprocessing["channels"] == 1 and m.preprocessing["size"] == [28, 28]

    images = digit_images(6, seed=5)
    model = bmsdk.load(result.path)
    ref = softmax(torch_logits_cnn(cnn_module, images))
    preds = model.predict(list(images))
    got = np.array([[p["scores"][str(i)] for i in range(10)] for p in preds])
    np.testing.assert_allclose(got, ref, atol=1e-4)
    # a HxW uint8 array, a PIL image and a PNG path give the same answer
    path = tmp_path / "digit.png"
    Image.fromarray(images[0]).save(path)
    answers = [model.predict(form) for form in (images[0], Image.fromarray(images[0]), path)]
    assert all(isinstance(a, dict) for a in answers)
    assert len({a["label"] for a in answers}) == 1
    assert answers[1]["score"] == pytest.approx(answers[0]["score"], abs=1e-6)
    assert answers[2]["score"] == pytest.approx(answers[0]["score"], abs=1e-6)
    # a preprocessed batch array is taken as-is
    x = ((images.astype(np.float32) / 255 - CNN_MEAN) / CNN_STD)[:, None]
    batch = model.predict(x)
    assert isinstance(batch, list) and len(batch) == 6
    assert [p["label"] for p in batch] == [p["label"] for p in preds]
    return model


def test_factory_source_with_bmsdk_spec(cnn_onnx_artifact, cnn_module, tmp_path):
    check_cnn_artifact(cnn_onnx_artifact, cnn_module, tmp_path)
    m = cnn_onnx_artifact.manifest
    assert m.source["format"] == "factory"
    assert m.preprocessing["mean"] == pytest.approx([CNN_MEAN]) and m.preprocessing["std"] == pytest.approx([CNN_STD])
    assert m.name == "make_model"


def test_factory_source_with_input_shape_override(converted, cnn_factory, cnn_module, tmp_path):
    plain = cnn_factory.replace(":make_model", ":make_plain_model")
    result = converted(
        "cnn-plain", plain, target="onnx", input_shapes={"input": CNN_SHAPE}, mean=[CNN_MEAN], std=[CNN_STD]
    )
    check_cnn_artifact(result, cnn_module, tmp_path)
    assert result.manifest.task == "image-classification"  # inferred from the shapes


def test_torch_export_pt2_source(converted, cnn_pt2, cnn_module, tmp_path):
    result = converted("cnn-pt2", cnn_pt2, target="onnx", mean=[CNN_MEAN], std=[CNN_STD])
    check_cnn_artifact(result, cnn_module, tmp_path, input_name="x")  # the exported program's argument name
    assert result.manifest.source["format"] == "torch.export"
    assert result.manifest.source["sha256"]


def test_torchscript_source(converted, cnn_torchscript, cnn_module, tmp_path):
    result = converted(
        "cnn-ts", cnn_torchscript, target="onnx", input_shapes={"input": CNN_SHAPE}, mean=[CNN_MEAN], std=[CNN_STD]
    )
    check_cnn_artifact(result, cnn_module, tmp_path)
    assert result.manifest.source["format"] == "torchscript"


def test_onnx_source(converted, cnn_onnx, cnn_module, tmp_path):
    result = converted(
        "cnn-onnx", cnn_onnx, target="onnx", mean=[CNN_MEAN], std=[CNN_STD], labels=[f"d{i}" for i in range(10)]
    )
    assert result.manifest.source["format"] == "onnx"
    assert result.manifest.labels == [f"d{i}" for i in range(10)]
    model = bmsdk.load(result.path)
    images = digit_images(4, seed=7)
    ref = softmax(torch_logits_cnn(cnn_module, images))
    preds = model.predict(list(images))
    np.testing.assert_allclose([[p["scores"][f"d{i}"] for i in range(10)] for p in preds], ref, atol=1e-4)
    assert_validated_fp32(result)


# --- the torch target -----------------------------------------------------------------


def test_torch_target_agrees_with_onnx(converted, cnn_factory, cnn_onnx_artifact):
    result = converted("cnn-torch", cnn_factory, target="torch")
    m = result.manifest
    assert m.target == "torch" and m.model_file == "model.pt2" and (result.path / "model.pt2").is_file()
    assert m.validation.passed is True and m.validation.backend == "torch"
    assert m.validation.samples.max_rel_error < 1e-5

    torch_model = bmsdk.load(result.path)
    onnx_model = bmsdk.load(cnn_onnx_artifact.path)
    assert torch_model.backend == "torch" and onnx_model.backend == "onnxruntime"
    images = list(digit_images(5, seed=11))
    a, b = torch_model.predict(images), onnx_model.predict(images)
    assert torch_model.predict(images[0])["score"] == pytest.approx(onnx_model.predict(images[0])["score"], abs=1e-5)
    assert [p["label"] for p in a] == [p["label"] for p in b]
    np.testing.assert_allclose([p["score"] for p in a], [p["score"] for p in b], atol=1e-5)
    feeds = onnx_model.preprocess(images)
    np.testing.assert_allclose(torch_model.run(feeds)["logits"], onnx_model.run(feeds)["logits"], rtol=1e-4, atol=1e-5)


def test_torch_target_text(converted, bert_classifier_dir, bert_onnx):
    result = converted("bert-torch", bert_classifier_dir, target="torch")
    assert result.manifest.validation.passed is True
    torch_model = bmsdk.load(result.path, backend="torch")
    onnx_model = bmsdk.load(bert_onnx.path)
    a, b = torch_model.predict(TEXTS), onnx_model.predict(TEXTS)
    assert [p["label"] for p in a] == [p["label"] for p in b]
    assert torch_model.predict("good")["score"] == pytest.approx(
        onnx_model.predict("good")["score"], abs=1e-5
    )  # batch 1
    np.testing.assert_allclose([p["scores"]["positive"] for p in a], [p["scores"]["positive"] for p in b], atol=1e-5)


# --- arrays: one image or a batch? ------------------------------------------------------


def test_predict_arrays_of_gray_images(cnn_onnx_artifact):
    model = bmsdk.load(cnn_onnx_artifact.path)
    images = digit_images(5, seed=17)
    each = [model.predict(img) for img in images]
    for batch in (images, images[:3], images[..., None]):  # NxHxW (3 included: not an RGB image) and NxHxWx1
        got = model.predict(batch)
        assert isinstance(got, list) and len(got) == len(batch), batch.shape
        assert [p["label"] for p in got] == [p["label"] for p in each[: len(batch)]]
        np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in each[: len(batch)]], atol=1e-6)
    for one in (images[0][None], images[0][..., None]):  # 1xHxW and HxWx1 are one image
        assert model.predict(one)["score"] == pytest.approx(each[0]["score"], abs=1e-6)
    # float images in [0, 1] are read as pixel values too
    assert model.predict(images[0] / 255.0)["score"] == pytest.approx(each[0]["score"], abs=1e-6)


def test_predict_arrays_of_rgb_images(converted, vit_dir):
    model = bmsdk.load(converted("vit-fp32", vit_dir, target="onnx").path)
    images = np.random.default_rng(8).integers(0, 256, (3, VIT_SIZE, VIT_SIZE, 3), dtype=np.uint8)
    each = [model.predict(img) for img in images]
    chw = model.predict(images[0].transpose(2, 0, 1))  # CxHxW is the same image
    assert chw["score"] == pytest.approx(each[0]["score"], abs=1e-6)
    batch = model.predict(images)
    assert [p["label"] for p in batch] == [p["label"] for p in each]
    gray = np.random.default_rng(9).integers(0, 256, (5, VIT_SIZE, VIT_SIZE), dtype=np.uint8)
    with pytest.raises(bmsdk.InputError, match="HxW, HxWxC or CxHxW"):
        model.predict(gray)  # five gray images as one array to an RGB model: refused, not misread as 5 channels
    assert len(model.predict(list(gray))) == 5  # as a list they are five images


@pytest.mark.parametrize(
    "config_class, model_class, offset",
    [
        ("BertConfig", "BertForSequenceClassification", 0),
        ("RobertaConfig", "RobertaForSequenceClassification", 2),  # numbering: a method of the embeddings
        ("MPNetConfig", "MPNetForSequenceClassification", 2),  # numbering: a function of the embeddings' module
    ],
)
def test_position_ids_a_token_cannot_use(config_class, model_class, offset):
    """A 64-position RoBERTa or MPNet reads at most 62 tokens (positions from padding_idx + 1); the sequence
    bmsdk exports must stay inside the position table, or the runtime reads past it."""
    import transformers

    from bmsdk.converters.sources.loader import _position_offset

    config = getattr(transformers, config_class)(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=64, pad_token_id=1,
    )  # fmt: skip
    assert _position_offset(getattr(transformers, model_class)(config)) == offset
