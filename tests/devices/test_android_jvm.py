"""The Android library's plain-JVM core (examples/android) against vectors the Python side writes.

Builds TFLite artifacts of the tiny test models, writes for each `bmsdk export-vectors` output, its bmsdk.json and
tokenizer, boundary cases computed with `bmsdk.runtimes.litert_io` (bucketed int32 token inputs, int8 image inputs,
dequantized int8 outputs), tokenizer cases (tricky texts; the real MiniLM vocabulary too when the demo has cached
it), the text-generation folders of generation_fixture.py and the span, audio, segmentation and detection folders, then
compiles the Java core with javac and runs its JUnit 4 tests. Fails if any JUnit test fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import write_audio_folders
from conftest import TEXT_GOLD, TEXTS, digit_images
from detection_fixtures import write_detection_folders
from generation_fixture import write_generation_folders
from image_pipeline_fixture import write_image_pipeline_folders
from segmentation_fixtures import write_segmentation_folders
from span_fixtures import write_span_folders
from tokenizer_fixtures import demo_tweets, tiny_classifiers, tokenizer_cases, write_minilm_cases, write_tokenizer_cases
from vector_folders import TASK_FOLDERS

import bmsdk
from bmsdk.cli import main as cli
from bmsdk.runtimes.litert_io import from_signature, pad_to, pick_bucket, signature_for, to_signature

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "android" / "run-jvm-tests.sh"
JUNIT = Path("/usr/share/java/junit4.jar")
TRICKY = [
    "Héllo, Wörld!! Ça va?",
    "naïve café — “quotes” and 'apostrophes'",
    "tabs\tand\nnewlines\r\n  spaces",
    "数字 and 漢字 mixed",
    "emoji 😀🔥 and #hashtags @users http://t.co/abc?x=1&y=2",
    "ALLCAPS MiXeD cAsE",
    "a\u00a0non-breaking\u2009thin space",
    "control\u0007char\u200bzero-width",
    "[CLS] literal [SEP] tokens [UNK]",
    "x" * 150,
    " ".join(["word"] * 200),
    "",
    "goodmovie unbelievablyterrible",
]


def _text_boundary(model, texts: list[str]) -> list[dict]:
    config = model.manifest.target_config
    cases = []
    for text in texts:
        feeds = model.preprocess([text])
        bucket = pick_bucket(feeds["input_ids"].shape[1], config.sequence_buckets)
        signature = config.signatures[signature_for(bucket)]
        inputs = {
            k: to_signature(pad_to(feeds[k], bucket, config.pad_values.get(k, 0)), t)[0].tolist()
            for k, t in signature.inputs.items()
        }
        cases.append({"kind": "text-inputs", "text": text, "signature": signature_for(bucket), "inputs": inputs})
    return cases


def _image_boundary(model, images: np.ndarray) -> list[dict]:
    signature = model.manifest.target_config.signatures[signature_for(None)]
    cases = []
    for image in images:
        feeds = model.preprocess([image])
        inputs = {k: to_signature(feeds[k], t)[0].ravel().tolist() for k, t in signature.inputs.items()}
        cases.append(
            {
                "kind": "image-inputs",
                "pixels_hwc": image[..., None].tolist(),
                "signature": signature_for(None),
                "inputs": inputs,
            }
        )
    return cases


def _dequantize_cases(model) -> list[dict]:
    cases = []
    raw = np.arange(-128, 128, dtype=np.int8)
    for name, signature in model.manifest.target_config.signatures.items():
        for output, t in signature.outputs.items():
            if t.quantization:
                cases.append(
                    {
                        "kind": "dequantize",
                        "signature": name,
                        "output": output,
                        "int8": raw.tolist(),
                        "expected": from_signature(raw, t, "float32").tolist(),
                    }
                )
    return cases


def _artifact_folder(root: Path, result, boundary: list[dict]) -> Path:
    folder = root / result.path.stem
    folder.mkdir()
    assert cli(["export-vectors", str(result.path), "-o", str(folder / "vectors.json")]) == 0
    shutil.copyfile(result.path / "bmsdk.json", folder / "bmsdk.json")
    if (result.path / "tokenizer" / "tokenizer.json").is_file():
        shutil.copyfile(result.path / "tokenizer" / "tokenizer.json", folder / "tokenizer.json")
    (folder / "boundary.json").write_text(json.dumps({"cases": boundary}))
    return folder


@pytest.fixture(scope="module")
def subword_classifiers(tmp_path_factory) -> dict[str, Path]:
    return tiny_classifiers(tmp_path_factory.mktemp("subword-classifiers"))


@pytest.fixture(scope="module")
def vectors_dir(
    tmp_path_factory, converted, bert_classifier_dir, subword_classifiers, text_jsonl, cnn_factory, calib_npz
) -> Path:
    root = tmp_path_factory.mktemp("android-vectors")
    bert = converted(
        "tflite-bert-int8",
        bert_classifier_dir,
        target="tflite",
        precision="int8",
        eval_data=text_jsonl,
        calibration=text_jsonl,
    )
    cnn = converted("tflite-cnn-int8", cnn_factory, target="tflite", precision="int8", calibration=calib_npz)
    long_text = " ".join(TEXTS) * 3  # past the 16 and 32 buckets
    with bmsdk.load(bert.path) as model:
        boundary = _text_boundary(model, TEXTS + [long_text]) + _dequantize_cases(model)
    _artifact_folder(root, bert, boundary)
    with bmsdk.load(cnn.path) as model:
        boundary = _image_boundary(model, digit_images(4, seed=7)) + _dequantize_cases(model)
    _artifact_folder(root, cnn, boundary)

    tricky = root / "tricky.jsonl"  # samples of export-vectors: the toy texts and TRICKY
    labels = TEXT_GOLD + ["positive"] * len(TRICKY)
    tricky.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in zip(TEXTS + TRICKY, labels)))
    for kind, source in subword_classifiers.items():
        result = converted(f"tflite-{kind}-fp32", source, target="tflite", eval_data=tricky, num_samples=len(labels))
        with bmsdk.load(result.path) as model:
            _artifact_folder(root, result, _text_boundary(model, TEXTS + TRICKY + [long_text]))
    tricky.unlink()

    tiny = root / "tokenizer-tiny-bert"
    tiny.mkdir()
    shutil.copyfile(bert.path / "tokenizer" / "tokenizer.json", tiny / "tokenizer.json")
    (tiny / "tokenizer-cases.json").write_text(json.dumps(tokenizer_cases(tiny / "tokenizer.json", TEXTS + TRICKY, 64)))
    write_tokenizer_cases(root, TEXTS + TRICKY + demo_tweets(), tmp_path_factory.mktemp("tokenizers"))
    write_minilm_cases(root, demo_tweets() + TRICKY)  # the real MiniLM vocabulary, when the demo cached it
    write_generation_folders(root)  # the tiny Llama's vectors and BPE cases, for GenerationTest
    write_image_pipeline_folders(root)  # checkpoint image processors: offset, include_top, BGR, crops
    write_span_folders(root, tmp_path_factory.mktemp("span-models"))  # NER and QA: windows, raw outputs, predict()
    write_audio_folders(root, tmp_path_factory.mktemp("audio-models"))  # waveforms, feeds, logits, predict()
    write_segmentation_folders(root, tmp_path_factory.mktemp("seg-models"))  # logits, predict()'s masks and fractions
    write_detection_folders(root, tmp_path_factory.mktemp("det-models"))  # letterboxed pixels, outputs, predict()
    return root


def test_android_jvm_core_passes_its_junit_tests(vectors_dir):
    assert shutil.which("javac") and JUNIT.is_file(), "needs a JDK and Debian's junit4: run `make install`"
    for kind in ("bert-int8", "roberta-fp32", "xlmr-fp32"):  # one classifier per tokenizer kind, with its vectors
        assert (vectors_dir / f"tflite-{kind}" / "vectors.json").is_file(), kind
    cases = json.loads((vectors_dir / "tflite-xlmr-fp32" / "vectors.json").read_text())["cases"]
    assert [c["text"] for c in cases] == TEXTS + TRICKY
    for kind in ("ner-bert", "ner-roberta", "qa-bert", "qa-roberta"):  # SpansTest: entities and answers
        assert (vectors_dir / f"spans-{kind}" / "spans.json").is_file(), kind
    for folder, file in TASK_FOLDERS:  # AudioTest, SegmentationTest, DetectionTest
        assert (vectors_dir / folder / file).is_file(), folder
    for kind in (
        "roberta",
        "roberta-prefix-space",
        "xlmr",
        "xlmr-legacy",
        "xlmr-prepend-first",
        "albert",
        "deberta-v2",
    ):
        assert (vectors_dir / f"tokenizer-{kind}" / "tokenizer-cases.json").is_file(), kind
    result = subprocess.run(["bash", str(SCRIPT), str(vectors_dir)], capture_output=True, text=True, timeout=600)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-4000:]
    assert "OK (" in report, report[-2000:]
