"""Tasks: one module each (text_classification.py, ...), found through the `bmsdk.tasks` entry points."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from bmsdk.manifest import TASKS_GROUP as GROUP
from bmsdk.plugins import load_plugin, plugin_names

from .base import Task


@functools.cache
def get_task(name: str) -> Task:
    """The task named `name`; an unknown name is an UnsupportedError listing the known tasks."""
    return load_plugin(GROUP, name, "task")()


def task_names() -> list[str]:
    return plugin_names(GROUP)


def detect_task(architectures: Sequence[str], config: dict | None = None) -> Task | None:
    """The task of a Hugging Face checkpoint from its config.json `architectures` and, where known, the config
    itself (its "preprocessor" key: the preprocessor_config.json); None: not recognised."""
    # a fallback task is tried last; higher priority first (audio-classification before text-classification)
    tasks = sorted((get_task(n) for n in task_names()), key=lambda t: (t.fallback, -t.priority))
    return next((t for t in tasks if t.detects(architectures, config)), None)


__all__ = ["Task", "detect_task", "get_task", "task_names"]
