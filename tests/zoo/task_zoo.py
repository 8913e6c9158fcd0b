"""The task zoo: for each task beyond classification, the architectures its end-to-end tests train (tiny, in
seconds to a minute each, no downloads) with a small labelled set made in code, so `make zoo` can convert each on
every target with `--eval` and record the task metric beside bmsdk's verdict.

    build_sources("token-classification", folder)  ->  {"bert": folder/bert, "roberta": folder/roberta}

The builders are the ones the task tests use (bmsdk.benchmarks.task_models, tests/tiny_lms.py); what is listed here
is what `bmsdk tasks` reports per task (through sdk/tasks/support.json).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bmsdk.benchmarks.task_models import audio, detection, ner, qa, segmentation


@dataclass(frozen=True)
class TaskZoo:
    architectures: dict[str, str]  # name -> tokenizer kind ("" for image and audio models)
    build: Callable[[str, Path], object]  # (arch, folder) -> a source: a folder, or (factory spec, weights)
    eval_data: Callable[[Path], Path]  # folder -> the labelled set the cells are evaluated on
    calibrate: bool = False  # int8 cells calibrate on the eval data (image and audio models)


def _detector(arch: str, folder: Path):
    return detection.train_yolo(folder) if arch == "yolo" else detection.build_detector(arch, folder)


def _lm(arch: str, folder: Path) -> Path:
    import tiny_lms  # tests/tiny_lms.py: on sys.path in pytest and in support_table.py

    return tiny_lms.build(folder, arch)


def _lm_texts(folder: Path) -> Path:
    import tiny_lms

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in tiny_lms.CORPUS))
    return path


def _audio_eval(folder: Path) -> Path:
    return audio.write_folder(folder / "clips", *audio.clips(40, seed=5))


TASKS = {
    "token-classification": TaskZoo(
        {"bert": "wordpiece", "roberta": "bpe"},
        ner.build_tagger,
        lambda folder: ner.write_tagged(folder / "ner.jsonl", ner.tagged_sentences(30, seed=3)),
    ),
    "question-answering": TaskZoo(
        {"bert": "wordpiece", "roberta": "bpe"},
        qa.build_reader,
        lambda folder: qa.write_questions(folder / "qa.jsonl", qa.questions(24, 3) + qa.questions(4, 4, facts=7)),
    ),
    "audio-classification": TaskZoo(
        {arch: "" for arch in audio.ARCHS}, audio.build_classifier, _audio_eval, calibrate=True
    ),
    "semantic-segmentation": TaskZoo(
        {"segformer": "", "mobilevit": ""},
        segmentation.build_segmenter,
        lambda folder: segmentation.write_eval_set(folder, n=12, seed=5),
        calibrate=True,
    ),
    "object-detection": TaskZoo(
        {"yolo": "", "yolos": "", "detr": ""},
        _detector,
        lambda folder: detection.write_eval_set(folder, n=16, seed=5),
        calibrate=True,
    ),
    "text-generation": TaskZoo({"llama": "bpe", "qwen2": "bpe", "gpt2": "bpe"}, _lm, _lm_texts),
}


def source_and_weights(source) -> tuple[str, Path | None]:
    """What bmsdk.convert takes for a built source: (a folder or factory spec, its weights file or None)."""
    return (source[0], source[1]) if isinstance(source, tuple) else (str(source), None)
