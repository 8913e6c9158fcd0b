"""text-generation: a decoder-only language model (`*ForCausalLM`) with a KV cache; `generate()` gives text.

The artifact is one step graph (see generation.py for its contract). Over a dataset of texts the task scores
perplexity, and compares artifact and source by next-token agreement and the change in perplexity.
"""

from __future__ import annotations

import numpy as np

from .base import Task
from .generation import token_scores

GREEDY_EXACT = ("fp32", "fp16")  # precisions whose greedy tokens must equal the source's
PERPLEXITY_BUDGET = {"int8": 0.02}  # other precisions: the largest relative rise in perplexity (default below)
DEFAULT_PERPLEXITY_BUDGET = 0.05


class TextGeneration(Task):
    name = "text-generation"
    hf_suffixes = ("ForCausalLM", "LMHeadModel")
    hf_auto_class = "AutoModelForCausalLM"

    def postprocessing(self, output, labels):
        return {"output": "logits"}

    def primary(self, post, outputs, feeds):
        return token_scores(outputs["logits"], feeds, _width(feeds))

    def metrics(self, primary, labels, label_names):
        return {"perplexity": perplexity(primary), "tokens": int(primary[:, 1].sum())}

    def agreement(self, reference, actual):
        width = min(reference.shape[1], actual.shape[1])
        ref, art = reference[:, 2:width], actual[:, 2:width]
        scored = ref >= 0
        source, artifact = perplexity(reference), perplexity(actual)
        return {
            "top1_agreement": float((ref[scored] == art[scored]).mean()) if scored.any() else None,
            "perplexity": artifact,
            "source_perplexity": source,
            "perplexity_change": artifact / source - 1,
        }

    def vector_prediction(self, post, outputs, feeds):
        return token_scores(outputs["logits"], feeds, _width(feeds))[0, 2:].astype(int).tolist()


def perplexity(scores: np.ndarray) -> float:
    tokens = scores[:, 1].sum()
    return float(np.exp(scores[:, 0].sum() / tokens)) if tokens else float("nan")


def perplexity_budget(precision: str) -> float:
    return PERPLEXITY_BUDGET.get(precision, DEFAULT_PERPLEXITY_BUDGET)


def _width(feeds) -> int:
    return feeds["past_key_0"].shape[2]  # the cache length: the longest text, so every batch gives equal rows
