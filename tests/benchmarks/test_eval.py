"""--eval: the task metric of source and artifact on labelled data, recorded in manifest.validation.eval."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import TEXT_GOLD, TEXT_LABELS, TEXTS, VIT_LABELS, VIT_SIZE, digit_images, torch_logits_cnn

import bmsdk
from bmsdk.data import load_dataset
from bmsdk.errors import DataError

FLIP = {"positive": "negative", "negative": "positive"}
# the training texts with their labels, plus two with the wrong label: the model cannot be right on both halves
EVAL_ROWS = list(zip(TEXTS, TEXT_GOLD)) + [(TEXTS[0], FLIP[TEXT_GOLD[0]]), (TEXTS[1], FLIP[TEXT_GOLD[1]])]


def macro_f1_reference(pred, truth):
    """Independent macro-F1: mean over classes seen in truth or predictions of per-class F1."""
    scores = []
    for c in sorted(set(pred) | set(truth)):
        tp = sum(p == c and t == c for p, t in zip(pred, truth))
        precision = tp / max(sum(p == c for p in pred), 1)
        recall = tp / max(sum(t == c for t in truth), 1)
        scores.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(scores))


def hf_text_predictions(model_dir, texts):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = BertForSequenceClassification.from_pretrained(str(model_dir)).eval()
    with torch.no_grad():
        return model(**tok(list(texts), padding=True, return_tensors="pt")).logits.argmax(1).tolist()


def check_eval_report(report, n, expected_accuracy=None, expected_f1=None, exact=True):
    assert report["n"] == n
    for side in ("source", "artifact"):
        assert set(report[side]) >= {"accuracy", "macro_f1"}
        assert 0.0 <= report[side]["accuracy"] <= 1.0 and 0.0 <= report[side]["macro_f1"] <= 1.0
    assert set(report["delta"]) == {"accuracy", "macro_f1"}
    for k in ("accuracy", "macro_f1"):
        assert report["delta"][k] == pytest.approx(report["artifact"][k] - report["source"][k])
    assert 0.0 <= report["top1_agreement"] <= 1.0
    if expected_accuracy is not None:
        assert report["source"]["accuracy"] == pytest.approx(expected_accuracy)
        assert report["source"]["macro_f1"] == pytest.approx(expected_f1)
    if exact:  # fp32: the artifact decides exactly like the source
        assert report["top1_agreement"] == 1.0
        assert report["delta"] == {"accuracy": 0.0, "macro_f1": 0.0}


@pytest.fixture(scope="module")
def eval_jsonl(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "eval.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in EVAL_ROWS))
    return path


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory):
    """The same rows as CSV, with class indices instead of names."""
    path = tmp_path_factory.mktemp("eval") / "eval.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for text, label in EVAL_ROWS:
            writer.writerow([text, TEXT_LABELS.index(label)])
    return path


def test_text_eval_jsonl(converted, bert_classifier_dir, eval_jsonl):
    result = converted("bert-eval-jsonl", bert_classifier_dir, target="onnx", eval_data=eval_jsonl)
    report = result.manifest.validation.eval.to_dict()
    pred = hf_text_predictions(bert_classifier_dir, [t for t, _ in EVAL_ROWS])
    truth = [TEXT_LABELS.index(y) for _, y in EVAL_ROWS]
    accuracy = float(np.mean(np.array(pred) == np.array(truth)))
    assert accuracy < 1.0  # the flipped rows guarantee at least one miss
    check_eval_report(report, len(EVAL_ROWS), accuracy, macro_f1_reference(pred, truth))
    assert report["data"] == str(eval_jsonl)
    assert result.manifest.validation.passed is True
    # the same metric from the loaded artifact
    model = bmsdk.load(result.path)
    assert model.evaluate(load_dataset(eval_jsonl))["accuracy"] == pytest.approx(accuracy)


def test_text_eval_csv_with_index_labels(converted, bert_classifier_dir, eval_csv, eval_jsonl):
    result = converted("bert-eval-csv", bert_classifier_dir, target="onnx", eval_data=eval_csv)
    report = result.manifest.validation.eval.to_dict()
    check_eval_report(report, len(EVAL_ROWS))
    named = converted("bert-eval-jsonl", bert_classifier_dir, target="onnx", eval_data=eval_jsonl)
    named = named.manifest.validation.eval.to_dict()
    assert report["source"] == named["source"] and report["artifact"] == named["artifact"]


def test_text_eval_int8(converted, bert_classifier_dir, eval_jsonl):
    result = converted("bert-int8-eval", bert_classifier_dir, target="onnx", precision="int8", eval_data=eval_jsonl)
    report = result.manifest.validation.eval.to_dict()
    check_eval_report(report, len(EVAL_ROWS), exact=False)
    assert report["top1_agreement"] >= 0.8


def test_feature_extraction_eval_needs_no_labels(converted, bert_encoder_dir, tmp_path):
    data = tmp_path / "texts.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    result = converted("enc-eval", bert_encoder_dir, target="onnx", eval_data=data)
    report = result.manifest.validation.eval.to_dict()
    assert report["n"] == len(TEXTS)
    assert report["min_cosine"] > 0.9999 and report["mean_cosine"] >= report["min_cosine"]
    assert "artifact" not in report and "source" not in report


# --- images --------------------------------------------------------------------------


def cnn_predictions(cnn_module, images):
    return torch_logits_cnn(cnn_module, images).argmax(1).tolist()


def test_image_eval_npz(converted, cnn_factory, cnn_module, tmp_path):
    images = digit_images(24, seed=21)
    pred = cnn_predictions(cnn_module, images)
    # half the labels are the model's own answers, half are shifted: accuracy must be 0.5 exactly
    truth = [p if i % 2 == 0 else (p + 1) % 10 for i, p in enumerate(pred)]
    data = tmp_path / "eval.npz"
    np.savez(data, x=images, y=np.array(truth))
    result = converted("cnn-eval-npz", cnn_factory, target="onnx", eval_data=data)
    report = result.manifest.validation.eval.to_dict()
    check_eval_report(report, 24, 0.5, macro_f1_reference(pred, truth))


def test_image_eval_npz_int8(converted, cnn_factory, calib_npz, tmp_path):
    images = digit_images(24, seed=22)
    data = tmp_path / "eval.npz"
    np.savez(data, x=images, y=np.arange(24) % 10)
    result = converted(
        "cnn-int8-eval", cnn_factory, target="onnx", precision="int8", calibration=calib_npz, eval_data=data
    )
    check_eval_report(result.manifest.validation.eval.to_dict(), 24, exact=False)


def test_image_eval_folder(converted, cnn_factory, cnn_module, tmp_path):
    from PIL import Image

    images = digit_images(12, seed=23)
    pred = cnn_predictions(cnn_module, images)
    truth = [3 if i < 6 else 7 for i in range(12)]
    root = tmp_path / "digits"
    for i, (img, label) in enumerate(zip(images, truth)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / str(label) / f"{i:02d}.png")
    (root / "3" / "notes.txt").write_text("not an image")  # ignored
    result = converted("cnn-eval-folder", cnn_factory, target="onnx", eval_data=root)
    report = result.manifest.validation.eval.to_dict()
    accuracy = float(np.mean(np.array(pred) == np.array(truth)))
    check_eval_report(report, 12, accuracy, macro_f1_reference(pred, truth))


def test_vit_eval_folder_with_label_names(converted, vit_dir, tmp_path):
    import torch
    from PIL import Image
    from transformers import ViTForImageClassification

    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (9, VIT_SIZE, VIT_SIZE, 3), dtype=np.uint8)
    root = tmp_path / "pets"
    for i, img in enumerate(images):
        label = VIT_LABELS[i % 3]
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / label / f"{i}.png")
    dataset = load_dataset(root)  # folder order: bird, cat, dog
    ordered = np.stack([np.asarray(Image.open(p)) for p in dataset.items])
    truth = [VIT_LABELS.index(name) for name in dataset.labels]
    model = ViTForImageClassification.from_pretrained(str(vit_dir)).eval()
    with torch.no_grad():
        x = (ordered.astype(np.float32) / 255 - 0.5) / 0.5
        pred = model(pixel_values=torch.from_numpy(x.transpose(0, 3, 1, 2))).logits.argmax(1).tolist()
    result = converted("vit-eval", vit_dir, target="onnx", eval_data=root)
    report = result.manifest.validation.eval.to_dict()
    check_eval_report(report, 9, float(np.mean(np.array(pred) == np.array(truth))), macro_f1_reference(pred, truth))


def test_eval_labels_must_match_the_model(bert_classifier_dir, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(
        json.dumps({"text": "good", "label": "neutral"})
        + "\n"
        + json.dumps({"text": "bad", "label": "negative"})
        + "\n"
    )
    out = tmp_path / "x.bmsdk"
    with pytest.raises(DataError, match="neutral"):
        bmsdk.convert(bert_classifier_dir, output=out, eval_data=data)
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["bad.jsonl"]
