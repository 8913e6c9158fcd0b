"""Switching the attention implementation of the transformers models inside a source's module for one step."""

from __future__ import annotations

import contextlib


def hf_models(module) -> list:
    """The transformers models under `module` that can switch their attention implementation."""
    return [m for m in module.modules() if hasattr(m, "set_attn_implementation") and hasattr(m, "config")]


def uses_sdpa(module) -> bool:
    return any(getattr(m.config, "_attn_implementation", None) == "sdpa" for m in hf_models(module))


@contextlib.contextmanager
def attention_implementation(module, implementation: str):
    """Every transformers model under `module` on `implementation` ("eager", "sdpa") while the block runs."""
    models = [m for m in hf_models(module) if getattr(m.config, "_attn_implementation", None) != implementation]
    before = [m.config._attn_implementation for m in models]
    for m in models:
        m.set_attn_implementation(implementation)
    try:
        yield
    finally:
        for m, name in zip(models, before):
            m.set_attn_implementation(name)
