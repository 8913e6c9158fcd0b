"""question-answering: tiny trained BERT and RoBERTa readers converted to ONNX, TFLite and CoreML; answers over
long contexts (several windows) equal to transformers 4's QuestionAnsweringPipeline, SQuAD metrics, the CLI."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from task_checks import build_all, checked_eval, conversions, quick_bench

import bmsdk
from bmsdk.benchmarks.task_models.qa import build_reader, questions, write_questions
from bmsdk.cli import main as cli
from bmsdk.converters.sources.loader import load_source
from bmsdk.runtimes.model import Model
from bmsdk.tasks.squad import squad_scores

LONG = questions(4, seed=4, facts=7)  # about 100 tokens: three windows of 64 with a stride of 32


@pytest.fixture(scope="module")
def readers(tmp_path_factory) -> dict:
    return build_all(build_reader, tmp_path_factory.mktemp("readers"))


@pytest.fixture(scope="module")
def qa_data(tmp_path_factory):
    return write_questions(tmp_path_factory.mktemp("qa") / "qa.jsonl", questions(24, seed=3) + LONG)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, readers, qa_data):
    return conversions(tmp_path_factory.mktemp("qa-artifacts"), readers, qa_data)


@functools.cache
def _hf(folder: str):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    return AutoTokenizer.from_pretrained(folder), AutoModelForQuestionAnswering.from_pretrained(folder).eval()


def reference_answer(folder, question, context, top_k=1, max_answer_len=15, handle_impossible_answer=False):
    """transformers 4's QuestionAnsweringPipeline (removed in transformers 5), its own select_starts_ends."""
    import torch
    from transformers.pipelines.document_question_answering import select_starts_ends

    tokenizer, model = _hf(str(folder))
    enc = tokenizer(
        question, context, truncation="only_second", max_length=64, stride=32, return_token_type_ids=True,
        return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True,
    )  # fmt: skip
    answers, min_null = [], 1000000
    for span in range(len(enc["input_ids"])):
        ids = enc["input_ids"][span]
        p_mask = np.asarray([tok != 1 for tok in enc.sequence_ids(span)], dtype=np.int64)
        p_mask[np.asarray(ids) == tokenizer.cls_token_id] = 0
        feeds = {k: torch.tensor([enc[k][span]]) for k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            out = model(**feeds)
        starts, ends, scores, min_null = select_starts_ends(
            out.start_logits.numpy(), out.end_logits.numpy(), p_mask[None], np.ones((1, len(ids)), np.int64),
            min_null, top_k, handle_impossible_answer, max_answer_len,
        )  # fmt: skip
        e = enc.encodings[span]
        for s, t, score in zip(starts, ends, scores):
            try:
                first = e.word_to_chars(e.token_to_word(s), sequence_index=1)[0]
                last = e.word_to_chars(e.token_to_word(t), sequence_index=1)[1]
            except Exception:  # noqa: BLE001 - as the pipeline did
                first, last = e.offsets[s][0], e.offsets[t][1]
            answers.append({"score": float(score), "start": first, "end": last, "answer": context[first:last]})
    if handle_impossible_answer:
        answers.append({"score": min_null, "start": 0, "end": 0, "answer": ""})
    answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
    return answers[0] if len(answers) == 1 else answers


def _same(ours, theirs):
    ours, theirs = (ours, theirs) if isinstance(ours, list) else ([ours], [theirs])
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert (a["start"], a["end"], a["answer"]) == (b["start"], b["end"], b["answer"]), (a, b)
        assert abs(a["score"] - b["score"]) < 1e-4


def test_squad_scores_follow_the_official_definition():
    scores = squad_scores(["The Eiffel Tower!", "in Paris", "", "x"], [["eiffel tower"], ["Paris"], [], ["y", "x"]])
    assert scores["exact_match"] == 0.75
    assert scores["answer_f1"] == pytest.approx((1 + 2 / 3 + 1 + 1) / 4)


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_a_reader_has_start_and_end_logits_and_a_stride(readers, arch):
    source = load_source(readers[arch])
    assert source.task == "question-answering"
    assert [(o.name, o.shape) for o in source.outputs] == [
        ("start_logits", ["batch", "sequence"]),
        ("end_logits", ["batch", "sequence"]),
    ]
    assert source.preprocessing["max_length"] == 64 and source.preprocessing["stride"] == 32


@pytest.mark.parametrize("arch", ["bert", "roberta"])
def test_answers_equal_the_pipeline_over_windows(artifacts, readers, arch):
    result = artifacts(arch, "onnx")
    with bmsdk.load(result.path) as model:
        source = Model(result.path, model.manifest, load_source(readers[arch]))
        windows = len(model.task_spec.split(model.preprocessor.encode([(LONG[0]["question"], LONG[0]["context"])]))[0])
        assert windows >= 3
        for e in LONG:
            pair = {"question": e["question"], "context": e["context"]}
            for options in ({}, {"top_k": 3}, {"top_k": 2, "max_answer_len": 4, "handle_impossible_answer": True}):
                want = reference_answer(readers[arch], e["question"], e["context"], **options)
                _same(model.predict(pair, **options), want)
                _same(source.predict(pair, **options), want)
        batch = model.predict([{"question": e["question"], "context": e["context"]} for e in LONG])
        for got, e in zip(batch, LONG):
            _same(got, reference_answer(readers[arch], e["question"], e["context"]))


def test_bad_questions_are_refused(artifacts):
    with bmsdk.load(artifacts("bert", "onnx").path) as model:
        with pytest.raises(bmsdk.InputError, match="question-answering model cannot take str"):
            model.predict("Where?")
        with pytest.raises(bmsdk.InputError, match="needs a 'question' and a 'context'"):
            model.predict({"question": "Where?"})
        with pytest.raises(bmsdk.InputError, match="top_k must be"):
            model.predict({"question": "Where?", "context": "Here."}, top_k=0)
        with pytest.raises(bmsdk.InputError, match="cannot tokenize"):
            model.predict({"question": "where " * 80, "context": "Here."})


CELLS = [
    tuple(cell.split())
    for cell in (
        "bert onnx fp32", "bert onnx int8", "bert tflite fp32", "bert coreml fp32", "roberta onnx fp32",
        "roberta coreml fp32",
    )
]  # fmt: skip


@pytest.mark.parametrize("arch,target,precision", CELLS)
def test_targets_validate_with_squad_scores(artifacts, arch, target, precision):
    result = artifacts(arch, target, precision)
    ev = checked_eval(result, precision)
    assert ev.source_answer_f1 > 0.1  # the toy reader learnt something
    if precision == "fp32":
        assert ev.top1_agreement == 1.0 and ev.answer_f1 == ev.source_answer_f1
    else:
        assert ev.top1_agreement >= 0.8 and abs(ev.answer_f1 - ev.source_answer_f1) <= 0.1
    with bmsdk.load(result.path) as model, bmsdk.load(artifacts(arch, "onnx").path) as reference:
        pairs = [{"question": e["question"], "context": e["context"]} for e in LONG]
        if precision == "fp32":
            for got, want in zip(model.predict(pairs), reference.predict(pairs)):
                _same(got, want)


def test_cli_predict_and_validate(artifacts, qa_data, capsys, tmp_path):
    path = str(artifacts("bert", "onnx").path)
    e = LONG[0]
    assert cli(["predict", path, e["question"], "--context", e["context"]]) == 0
    out = capsys.readouterr().out
    with bmsdk.load(path) as model:
        best = model.predict({"question": e["question"], "context": e["context"]})
    assert best["answer"] in out and e["question"] in out
    assert cli(["predict", path, e["question"], "--context", e["context"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["output"]["answer"] == best["answer"]
    assert cli(["validate", path, "--eval", str(qa_data)]) == 0
    assert "exact match" in capsys.readouterr().out
    assert cli(["export-vectors", path, "-o", str(tmp_path / "v.json")]) == 0
    assert len(json.loads((tmp_path / "v.json").read_text())["cases"][0]["prediction"]) == 2


def test_bench_reports_exact_match_and_f1(readers, qa_data, tmp_path):
    cell, source = quick_bench(readers["bert"], qa_data, tmp_path / "bench")
    assert cell["metric"]["answer_f1"] > 0.1 and cell["accuracy_change_pt"] == 0
    assert source["metric"] == cell["metric"]
