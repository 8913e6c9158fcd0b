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


def detect_task(architectures: Sequence[str]) -> Task | None:
    """The task of a Hugging Face checkpoint from its config.json `architectures` (None: not recognised)."""
    tasks = sorted((get_task(n) for n in task_names()), key=lambda t: t.fallback)  # a fallback task is tried last
    return next((t for t in tasks if t.detects(architectures)), None)


__all__ = ["Task", "detect_task", "get_task", "task_names"]
