"""Converters: sources, the conversion pipeline, and one package per target under `targets/`."""

from __future__ import annotations

from .registry import all_targets, get_target, target_names, toolchain_packages
from .target import BuildResult, Target, TargetOptions

__all__ = ["BuildResult", "Target", "TargetOptions", "all_targets", "get_target", "target_names", "toolchain_packages"]
