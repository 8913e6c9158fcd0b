"""What the classification tasks share: softmax post-processing, accuracy / macro-F1, top-1 agreement."""

from __future__ import annotations

import numpy as np

from .base import Task
from .metrics import classify, score_logits


class Classification(Task):
    classifier = True

    def postprocessing(self, output, labels):
        return {"output": output, "labels": labels, "softmax": True}

    def postprocess(self, post, outputs, feeds):
        return classify(self.primary(post, outputs, feeds), post.get("labels"))

    def metrics(self, primary, labels, label_names):
        return score_logits(primary, labels, label_names)

    def agreement(self, reference, actual):
        return {"top1_agreement": float(np.mean(reference.argmax(-1) == actual.argmax(-1)))}
