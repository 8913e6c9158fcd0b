"""The Android library's plain-JVM core (examples/android) against vectors the Python side writes.

Builds TFLite artifacts of the tiny test models, writes for each `bmsdk export-vectors` output, its bmsdk.json and
tokenizer, boundary cases computed with `bmsdk.runtimes.litert_io` (bucketed int32 token inputs, int8 image inputs,
dequantized int8 outputs), tokenizer cases (tricky texts; the real MiniLM vocabulary too when the demo has cached
it) and the text-generation folders of generation_fixture.py, then compiles the Java core with javac and runs its
JUnit 4 tests. Fails if any JUnit test fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import TEXTS, digit_images
from generation_fixture import write_generation_folders
from image_pipeline_fixture import write_image_pipeline_folders

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


def _tokenizer_cases(tokenizer_json: Path, texts: list[str], max_length: int) -> dict:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return {"max_length": max_length, "cases": [{"text": t, "input_ids": tok.encode(t).ids} for t in texts]}


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
def vectors_dir(tmp_path_factory, converted, bert_classifier_dir, text_jsonl, cnn_factory, calib_npz) -> Path:
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
    with bmsdk.load(bert.path) as model:
        long_text = " ".join(TEXTS) * 3  # past the 16 and 32 buckets
        boundary = _text_boundary(model, TEXTS + [long_text]) + _dequantize_cases(model)
    _artifact_folder(root, bert, boundary)
    with bmsdk.load(cnn.path) as model:
        boundary = _image_boundary(model, digit_images(4, seed=7)) + _dequantize_cases(model)
    _artifact_folder(root, cnn, boundary)

    tiny = root / "tokenizer-tiny-bert"
    tiny.mkdir()
    shutil.copyfile(bert.path / "tokenizer" / "tokenizer.json", tiny / "tokenizer.json")
    (tiny / "tokenizer-cases.json").write_text(
        json.dumps(_tokenizer_cases(tiny / "tokenizer.json", TEXTS + TRICKY, 64))
    )
    _minilm_cases(root)
    write_generation_folders(root)  # the tiny Llama's vectors and BPE cases, for GenerationTest
    write_image_pipeline_folders(root)  # checkpoint image processors: offset, include_top, BGR, crops
    return root


def _minilm_cases(root: Path) -> None:
    """The real MiniLM vocabulary on real tweets, when the demo has built its checkpoint (cheap: no model run)."""
    from bmsdk.benchmarks import zoo

    cache = zoo.cache_dir()
    tokenizer = cache / "minilm-sentiment" / "tokenizer.json"
    tweets = cache / "data" / "sentiment-test.jsonl"
    if not tokenizer.is_file() or not tweets.is_file():
        return
    texts = [json.loads(line)["text"] for line in tweets.read_text().splitlines()]
    folder = root / "tokenizer-minilm"
    folder.mkdir()
    shutil.copyfile(tokenizer, folder / "tokenizer.json")
    (folder / "tokenizer-cases.json").write_text(json.dumps(_tokenizer_cases(tokenizer, texts + TRICKY, 128)))


def test_android_jvm_core_passes_its_junit_tests(vectors_dir):
    assert shutil.which("javac") and JUNIT.is_file(), "needs a JDK and Debian's junit4: run `make install`"
    result = subprocess.run(["bash", str(SCRIPT), str(vectors_dir)], capture_output=True, text=True, timeout=600)
    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-4000:]
    assert "OK (" in report, report[-2000:]
