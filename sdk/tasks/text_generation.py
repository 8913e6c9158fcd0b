"""text-generation: a decoder-only language model (`*ForCausalLM`) with a KV cache; `generate()` gives text.

The artifact is one step graph (see generation.py for its contract). Over a dataset of texts the task scores
perplexity, and compares artifact and source by next-token agreement and the change in perplexity.
"""

from __future__ import annotations

import numpy as np

from bmsdk.sections import EvalReport, GreedyCheck

from .base import Task
from .generation import Sampling, token_scores

GREEDY_EXACT = ("fp32", "fp16")  # precisions whose greedy tokens must equal the source's
# the largest relative rise in perplexity on --eval data, per precision (others: the default)
PERPLEXITY_BUDGET = {"fp32": 0.001, "fp16": 0.01, "int8": 0.02}
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

    def eval_failure(self, report: EvalReport, precision: str) -> str | None:
        """Perplexity on the eval data may rise by the precision's budget at most."""
        if report.perplexity_change is None:
            return None
        report.perplexity_budget = perplexity_budget(precision)
        if report.perplexity_change > report.perplexity_budget:
            return (
                f"perplexity {report.perplexity:.4f} is {report.perplexity_change:+.2%} from the source's "
                f"{report.source_perplexity:.4f} (budget {report.perplexity_budget:+.0%})"
            )
        return None

    def vector_prediction(self, post, outputs, feeds):
        return token_scores(outputs["logits"], feeds, _width(feeds))[0, 2:].astype(int).tolist()


def perplexity(scores: np.ndarray) -> float:
    tokens = scores[:, 1].sum()
    return float(np.exp(scores[:, 0].sum() / tokens)) if tokens else float("nan")


def perplexity_budget(precision: str) -> float:
    return PERPLEXITY_BUDGET.get(precision, DEFAULT_PERPLEXITY_BUDGET)


def _width(feeds) -> int:
    return feeds["past_key_0"].shape[2]  # the cache length: the longest text, so every batch gives equal rows


def sample_prompts(feeds: dict[str, np.ndarray]) -> list[list[int]]:
    """Prompts from prefill sample feeds: the first half (at least one token) of each text's ids."""
    ids, real = feeds["input_ids"], feeds["attention_mask"][:, -feeds["input_ids"].shape[1] :]
    return [ids[r, : max(1, int(real[r].sum()) // 2)].tolist() for r in range(len(ids))]


def greedy_check(reference, artifact, prompts: list[list[int]], precision: str, new_tokens: int = 16) -> GreedyCheck:
    """Greedy tokens of the artifact's Generator against the reference's, prompt by prompt."""
    identical, matched = 0, 0
    room = reference.cache_shape.length
    for prompt in prompts:
        prompt = prompt[: room // 2]
        count = max(1, min(new_tokens, room - len(prompt)))
        want = list(reference.tokens(prompt, count, Sampling()))
        got = list(artifact.tokens(prompt, count, Sampling()))
        same = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), min(len(want), len(got)))
        identical += want == got
        matched += same / max(len(want), 1)
    required = precision in GREEDY_EXACT
    return GreedyCheck(
        prompts=len(prompts),
        new_tokens=new_tokens,
        identical=identical,
        tokens_matched=matched / max(len(prompts), 1),
        required=required,
        passed=identical == len(prompts) or not required,
    )
