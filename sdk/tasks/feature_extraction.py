"""feature-extraction: an encoder's embeddings; token vectors are mean-pooled over the attention mask.

The task of a base-model checkpoint (`*Model`, loaded with `AutoModel`) that no other task recognises.
"""

from __future__ import annotations

from bmsdk.compare import cosines

from .base import Task
from .metrics import mean_pool


class FeatureExtraction(Task):
    name = "feature-extraction"
    hf_suffixes = ("Model",)  # the base model of any architecture
    hf_output = "last_hidden_state"
    fallback = True

    def postprocessing(self, output, labels):
        return {"output": output, "pooling": "mean", "normalize": True}

    def primary(self, post, outputs, feeds):
        hidden = outputs[post.get("output") or next(iter(outputs))]
        if hidden.ndim == 3:
            return mean_pool(hidden, feeds.get("attention_mask"), bool(post.get("normalize", True)))
        return hidden

    def agreement(self, reference, actual):
        cos = cosines(actual, reference)
        return {"mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}
