"""feature-extraction: an encoder's embeddings; token vectors are mean-pooled over the attention mask.

The task of a base-model checkpoint (`BertModel`, loaded with `AutoModel`): a checkpoint with a head
(`*ForTokenClassification`, `*ForPreTraining`, ...) is never read as one, since its head would be dropped silently.
"""

from __future__ import annotations

import re

from bmsdk.compare import cosines

from .base import Task
from .metrics import mean_pool


class FeatureExtraction(Task):
    name = "feature-extraction"
    hf_suffixes = ("Model",)  # the base model of any architecture
    hf_output = "last_hidden_state"
    fallback = True

    @classmethod
    def detects(cls, architectures, config=None):
        return any(a.endswith("Model") and not re.search(r"For[A-Z]|Head|PreTrain", a) for a in architectures)

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
