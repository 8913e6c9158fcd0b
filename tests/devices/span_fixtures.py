"""Token-classification (NER) and question-answering vectors for the device libraries' tests (test_android_jvm.py,
test_ios_swift.py).

For the tiny NER taggers and QA readers of bmsdk.benchmarks.task_models (ner, qa) (a BERT with WordPiece and a
RoBERTa with byte-level BPE each), converted to ONNX fp32, one folder each with bmsdk.json, tokenizer/tokenizer.json
and spans.json. Each case holds the input, every window the Python pre-processing made (ids, type ids, tokens, character
offsets, special-tokens mask, sequence ids, word ids) with the model's raw outputs for it, and what `predict()`
returned: the entities for every aggregation strategy (and with `ignore_labels=[]`), the answers for several
`top_k` / `max_answer_len` / `handle_impossible_answer` settings, long contexts cut into several stride windows
included. The device tests tokenize the input themselves, post-process the recorded raw outputs and must give the
same entities and answers.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from vector_folders import made_once, write_by_hand

from bmsdk.benchmarks.task_models.ner import build_tagger
from bmsdk.benchmarks.task_models.qa import build_reader, questions

NER_TEXTS = [
    "John lives in Paris",
    "Kimberly works for Globex Corp in San Francisco",
    "Bob Smith and Ann Lee visited New York yesterday",
    "Umbrella Labs opened an office in Lisbon",
    "nobody knows where Jonathan went!",
    "Alice met Mary at Initech, then Zoë flew to Berlin.",
    "  Mary   and\tJohn  ",
    "",
]
STRATEGIES = ("none", "simple", "first", "average", "max")


def _qa_cases() -> list[dict]:

    cases = [
        {"question": q, "context": c}
        for q, c in (
            ("Where does Mary live?", "Mary lives in Paris and works in London."),
            ("Who works at Acme?", "John works at Acme. Alice works at Initech."),
            ("Where does Zoë work?", "Zoë works at Umbrella Labs; Bob lives in New York."),
        )
    ]
    for e in questions(2, seed=3, facts=3):
        cases.append({"question": e["question"], "context": e["context"]})
    for e in questions(3, seed=5, facts=7):  # long: several windows of 64 tokens with stride 32
        cases.append({"question": e["question"], "context": e["context"] + " " + e["context"]})
    return cases


QA_OPTIONS = [
    {},
    {"top_k": 3},
    {"top_k": 5, "max_answer_len": 4},
    {"handle_impossible_answer": True, "top_k": 2},
    {"align_to_words": False, "top_k": 2},
]


def _window(encoding, outputs: dict) -> dict:
    n = len(encoding.ids)
    return {
        "ids": list(encoding.ids),
        "type_ids": list(encoding.type_ids),
        "tokens": list(encoding.tokens),
        "offsets": [list(o) for o in encoding.offsets],
        "special": list(encoding.special_tokens_mask),
        "sequence_ids": [-1 if s is None else s for s in encoding.sequence_ids],
        "word_ids": [-1 if w is None else w for w in encoding.word_ids],
        "outputs": {k: np.asarray(v[0, :n], dtype=np.float32).tolist() for k, v in outputs.items()},
    }


def _plain(value):
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _recorded(model, item) -> list[dict]:
    rows, _ = model.task_spec.split(model.preprocessor.encode([item]))
    return [_window(row.encoding, model.run(model.preprocessor.pad([row]))) for row in rows]


def _ner_folder(model) -> list[dict]:
    cases = []
    for text in NER_TEXTS:
        expected = {s: _plain(model.predict(text, aggregation_strategy=s)) for s in STRATEGIES}
        kept = _plain(model.predict(text, aggregation_strategy="none", ignore_labels=[]))
        cases.append({"text": text, "windows": _recorded(model, text), "entities": expected, "entities_all": kept})
    return cases


def _qa_folder(model) -> list[dict]:
    cases = []
    for item in _qa_cases():
        answers = [{"options": o, "expected": _plain(model.predict(item, **o))} for o in QA_OPTIONS]
        windows = _recorded(model, (item["question"], item["context"]))
        cases.append({**item, "windows": windows, "answers": answers})
    return cases


def span_artifacts(work: Path) -> dict[str, Path]:
    """{name: artifact folder}: ONNX fp32 artifacts of the tiny NER and QA models (bert, roberta)."""

    import bmsdk

    out = {}
    for task, build in (("ner", build_tagger), ("qa", build_reader)):
        for arch in ("bert", "roberta"):
            source = build(arch, work / f"{task}-{arch}-source")
            made = bmsdk.convert(str(source), target="onnx", output=work / f"{task}-{arch}.bmsdk")
            out[f"{task}-{arch}"] = made.path
    return out


def write_span_folders(root: Path, work: Path) -> list[Path]:
    """One folder per tiny NER/QA artifact under `root` (spans-ner-bert, ...) with bmsdk.json, tokenizer/tokenizer.json
    and spans.json. The models are built and converted once per process (test_android_jvm and test_ios_swift share
    them in one pytest run)."""
    return made_once("spans", root, lambda: _write_span_folders(root, work))


def _write_span_folders(root: Path, work: Path) -> list[Path]:
    import bmsdk

    folders = []
    for name, artifact in span_artifacts(work).items():
        folder = root / f"spans-{name}"
        folder.mkdir()
        shutil.copyfile(artifact / "bmsdk.json", folder / "bmsdk.json")
        (folder / "tokenizer").mkdir()
        shutil.copyfile(artifact / "tokenizer" / "tokenizer.json", folder / "tokenizer" / "tokenizer.json")
        with bmsdk.load(artifact) as model:
            cases = _ner_folder(model) if name.startswith("ner") else _qa_folder(model)
            task = model.manifest.task
        (folder / "spans.json").write_text(json.dumps({"task": task, "cases": cases}))
        folders.append(folder)
    return folders


if __name__ == "__main__":  # write the folders by hand: python tests/devices/span_fixtures.py OUT
    write_by_hand(write_span_folders)
