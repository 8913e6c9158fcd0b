"""The demo's task table: each row names its task and the metric its value is, from the bench report's cells."""

from __future__ import annotations

from bmsdk.benchmarks import demo, zoo
from bmsdk.benchmarks.report import rows, task_metric_name
from bmsdk.tasks import task_names


def _report(task: str, metric: dict) -> dict:
    cell = {"target": "onnx", "precision": "fp32", "status": "validated", "task": task, "metric": metric}
    source = {"target": "torch", "precision": "fp32", "metric": metric}
    return {"batches": [1], "source_model": source, "cells": [cell]}


def test_each_task_metric_is_named():
    assert task_metric_name({"accuracy": 0.9, "macro_f1": 0.8}) == "accuracy"
    assert task_metric_name({"entity_f1": 0.7, "precision": 0.9}) == "entity_f1"
    assert task_metric_name({"exact_match": 0.5, "answer_f1": 0.6}) == "answer_f1"
    assert task_metric_name({"mean_iou": 0.4, "pixel_accuracy": 0.9}) == "mean_iou"
    assert task_metric_name({"perplexity": 12.0}) is None


def test_task_table_rows_name_task_and_metric():
    table = rows(_report("semantic-segmentation", {"mean_iou": 0.8517}))
    assert [r["task"] for r in table] == ["", "semantic-segmentation"]  # the source's row has no task of its own
    lines = demo.task_table([{"model": "seg", **r, "task": "semantic-segmentation"} for r in table]).splitlines()
    assert len(lines) == 4 and "| mean_iou | 0.8517 |" in lines[3] and "semantic-segmentation" in lines[2]


def test_the_demo_has_a_model_of_every_newer_task():
    tasks = {"token-classification", "question-answering", "audio-classification", "semantic-segmentation"}
    tasks.add("object-detection")
    assert tasks <= set(task_names())
    assert [case[0] for case in demo.TASK_CASES] == list(zoo.TASK_CASES)
    targets = {target for target, _ in demo.TASK_ROWS}
    assert {"onnx", "tflite", "coreml"} <= targets  # the three targets each new task must run on
