"""token-classification: tiny trained BERT (WordPiece) and RoBERTa (byte-level BPE) taggers converted to ONNX,
TFLite and CoreML; entities equal to transformers' pipeline, seqeval's entity F1 on tagged words, the CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from task_checks import build_all, checked_eval, conversions, quick_bench

import bmsdk
from bmsdk.benchmarks.task_models.ner import NER_LABELS, build_tagger, tagged_sentences, write_tagged
from bmsdk.cli import main as cli
from bmsdk.converters.sources.loader import load_source
from bmsdk.data import load_dataset
from bmsdk.runtimes.model import Model
from bmsdk.tasks.tagging import entity_scores

TEXTS = [
    "Kimberly and Bob Smith visited San Francisco yesterday",
    "Mary works for Globex Corp in New York",
    "the weather in Lisbon is nice",
    "nobody knows where Jonathan went",
    "Ann Lee met Alice at Umbrella Labs",
]
STRATEGIES = ("none", "simple", "first", "average", "max")


@pytest.fixture(scope="module")
def taggers(tmp_path_factory) -> dict:
    return build_all(build_tagger, tmp_path_factory.mktemp("taggers"))


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    return write_tagged(tmp_path_factory.mktemp("tagged") / "ner.jsonl", tagged_sentences(30, seed=3))


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, taggers, tagged):
    return conversions(tmp_path_factory.mktemp("ner-artifacts"), taggers, tagged)


def _same_entities(ours: list[dict], theirs: list[dict]) -> None:
    assert len(ours) == len(theirs), (ours, theirs)
    for a, b in zip(ours, theirs):
        assert set(a) == set(b)
        for key in a:
            if key == "score":
                assert abs(a[key] - float(b[key])) < 1e-4
            else:
                assert a[key] == b[key], (key, a, b)


# --- the metric ----------------------------------------------------------------------------------------------


def test_entity_scores_equal_seqeval():
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(0)
    tags = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "I-ORG", "B", "I", "O"]
    for _ in range(300):
        lengths = [rng.randint(1, 8) for _ in range(rng.randint(1, 4))]
        truth = [[rng.choice(tags) for _ in range(n)] for n in lengths]
        pred = [[rng.choice(tags) for _ in range(n)] for n in lengths]
        ours = entity_scores(truth, pred)
        assert ours["entity_precision"] == pytest.approx(precision_score(truth, pred), abs=1e-12)
        assert ours["entity_recall"] == pytest.approx(recall_score(truth, pred), abs=1e-12)
        assert ours["entity_f1"] == pytest.approx(f1_score(truth, pred), abs=1e-12)


def test_tagged_words_are_read_and_bad_rows_refused(tmp_path):
    data = load_dataset(write_tagged(tmp_path / "ok.jsonl", [(["John", "lives"], ["B-PER", "O"])]))
    assert data.items == ["John lives"] and data.labels == [["B-PER", "O"]]
    for row, problem in (
        ({"tokens": ["John", "lives"], "tags": ["B-PER"]}, "2 words but 1 tags"),
        ({"tokens": ["New York"], "tags": ["B-LOC"]}, "without whitespace"),
        ({"tokens": ["a"], "tags": [3]}, "not a list of tag names"),
    ):
        (tmp_path / "bad.jsonl").write_text(json.dumps(row) + "\n")
        with pytest.raises(bmsdk.DataError, match=problem):
            load_dataset(tmp_path / "bad.jsonl")


# --- the source and predict() --------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_a_token_classifier_is_detected_with_per_token_logits(taggers, arch):
    source = load_source(taggers[arch])
    assert source.task == "token-classification"
    assert source.outputs[0].shape == ["batch", "sequence", len(NER_LABELS)]
    assert source.postprocessing["aggregation_strategy"] == "simple"
    assert source.postprocessing["labels"] == NER_LABELS


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_predict_equals_transformers_pipeline(artifacts, taggers, arch):
    from transformers import pipeline

    result = artifacts(arch, "onnx")
    with bmsdk.load(result.path) as model:
        source = Model(result.path, model.manifest, load_source(taggers[arch]))
        for strategy in STRATEGIES:
            hf = pipeline("token-classification", model=str(taggers[arch]), aggregation_strategy=strategy)
            theirs = [hf(text) for text in TEXTS]
            for text, want in zip(TEXTS, theirs):
                _same_entities(model.predict(text, aggregation_strategy=strategy), want)
                _same_entities(source.predict(text, aggregation_strategy=strategy), want)
            for got, want in zip(model.predict(TEXTS, aggregation_strategy=strategy), theirs):
                _same_entities(got, want)  # a padded batch gives each text its own answer
        assert model.predict(TEXTS[0]) == model.predict(TEXTS[0], aggregation_strategy="simple")  # the default
        found = model.predict(TEXTS[1])
        assert found and all(0 <= e["start"] <= e["end"] <= len(TEXTS[1]) for e in found)


def test_bad_predict_options_are_refused(artifacts):
    with bmsdk.load(artifacts("bert", "onnx").path) as model:
        with pytest.raises(bmsdk.InputError, match="unknown aggregation_strategy"):
            model.predict("John", aggregation_strategy="longest")
        with pytest.raises(bmsdk.InputError, match="unknown option"):
            model.predict("John", top_k=3)


# --- targets ---------------------------------------------------------------------------------------------------

CELLS = [
    tuple(cell.split())
    for cell in (
        "bert onnx fp32", "bert onnx int8", "bert tflite fp32", "bert tflite int8-dynamic", "bert coreml fp32",
        "bert coreml int8", "roberta onnx fp32", "roberta tflite fp32", "roberta coreml fp32",
    )
]  # fmt: skip


@pytest.mark.parametrize("arch,target,precision", CELLS)
def test_targets_validate_with_entity_f1(artifacts, arch, target, precision):
    result = artifacts(arch, target, precision)
    ev = checked_eval(result, precision)
    assert result.manifest.outputs[0].shape == ["batch", "sequence", len(NER_LABELS)]
    floor = 1.0 if precision == "fp32" else 0.98  # int8 may flip a token whose two best labels nearly tie
    assert result.manifest.validation.samples.top1_agreement >= floor  # per real token
    assert ev.entities > 0 and ev.source_entity_f1 > 0.5  # the toy tagger learnt something
    assert ev.top1_agreement >= floor
    assert abs(ev.entity_f1 - ev.source_entity_f1) <= (0 if precision == "fp32" else 0.05)
    with bmsdk.load(result.path) as model:
        fp32 = artifacts(arch, "onnx")
        with bmsdk.load(fp32.path) as reference:
            want, got = reference.predict(TEXTS), model.predict(TEXTS)
        if precision == "fp32":
            for a, b in zip(got, want):
                _same_entities(a, b)


def test_padding_positions_do_not_count_in_the_sample_check(artifacts):
    from bmsdk.artifact import load_samples
    from bmsdk.compare import INT8, compare_outputs

    inputs, outputs, _ = load_samples(artifacts("bert", "onnx").path)
    mask = inputs["attention_mask"] != 0
    assert not mask.all()  # the samples are a padded batch
    noisy = {k: v.copy() for k, v in outputs.items()}
    noisy["logits"][~mask] = 1e3  # garbage where no token is
    assert not compare_outputs(outputs, noisy, INT8).passed
    check = compare_outputs(outputs, noisy, INT8, {"logits": mask})
    assert check.passed and check.max_abs_error == 0


# --- command line ----------------------------------------------------------------------------------------------


def test_cli_predict_validate_and_vectors(artifacts, tagged, capsys, tmp_path):
    path = str(artifacts("bert", "onnx").path)
    assert cli(["predict", path, TEXTS[0]]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == TEXTS[0] and any(line.split("\t")[0].strip() == "PER" for line in out[1:])
    assert cli(["predict", path, TEXTS[0], "--aggregation-strategy", "none", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["output"] and all("entity" in e and "index" in e for e in rows[0]["output"])
    assert cli(["validate", path, "--eval", str(tagged)]) == 0
    out = capsys.readouterr().out
    assert "entity F1" in out and "source F1" in out
    assert cli(["export-vectors", path, "-o", str(tmp_path / "v.json")]) == 0
    case = json.loads((tmp_path / "v.json").read_text())["cases"][0]
    assert (
        case["prediction"]
        == np.asarray(case["outputs"]["logits"])[: len(case["feeds"]["input_ids"])].argmax(-1).tolist()
    )


def test_bench_reports_entity_f1(taggers, tagged, tmp_path):
    cell, source = quick_bench(taggers["bert"], tagged, tmp_path / "bench")
    assert cell["metric"]["entity_f1"] > 0.5 and cell["accuracy_change_pt"] == 0
    assert source["metric"]["entity_f1"] == cell["metric"]["entity_f1"]
