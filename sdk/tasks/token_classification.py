"""token-classification: a tagger (`*ForTokenClassification`, e.g. NER) with logits [batch, sequence, labels].

predict(text) gives entities with character offsets into the text, aggregated as transformers'
TokenClassificationPipeline does (entities.py; `aggregation_strategy` none / simple / first / average / max,
default simple, from predict() or the manifest's post-processing). Over --eval data of tagged words (JSON lines
`{"tokens": [...], "tags": [...]}`, IOB2) each word takes the label of its first token, scored by seqeval's
entity-level precision / recall / F1 (tagging.py); artifact and source are compared by token-level argmax
agreement over the real tokens (special tokens and padding excluded).
"""

from __future__ import annotations

import re

import numpy as np

from bmsdk.errors import DataError, InputError

from .base import Task
from .entities import TokenText, Vocabulary, check_strategy, entities
from .tagging import entity_scores

WORD = re.compile(r"\S+")


class TokenClassification(Task):
    name = "token-classification"
    hf_suffixes = ("ForTokenClassification",)
    hf_auto_class = "AutoModelForTokenClassification"
    per_token = True
    predict_options = ("aggregation_strategy", "ignore_labels")

    def postprocessing(self, output, labels):
        return {"output": output, "labels": labels, "aggregation_strategy": "simple", "ignore_labels": ["O"]}

    def postprocess(self, post, outputs, feeds):
        """Without the texts (test vectors): each text's label index per real token, special tokens included."""
        logits, mask = self.primary(post, outputs, feeds), _mask(feeds, outputs)
        return [logits[r][mask[r]].argmax(-1).astype(int).tolist() for r in range(len(logits))]

    def vector_prediction(self, post, outputs, feeds):
        return self.postprocess(post, outputs, feeds)[0]

    def postprocess_text(self, post, outputs, feeds, rows, pre, options):
        strategy = check_strategy(options.get("aggregation_strategy") or post.get("aggregation_strategy", "simple"))
        ignore = options.get("ignore_labels", post.get("ignore_labels", ["O"]))
        if isinstance(ignore, str) or not all(isinstance(v, str) for v in ignore):
            raise InputError("ignore_labels must be a list of label names", "pass e.g. ignore_labels=['O']")
        logits = self.primary(post, outputs, feeds)
        names = _names(post, logits)
        vocab = Vocabulary(pre.join_tokens, pre.unk_id, pre.word_aware)
        return [
            entities(_token_text(row), logits[r, : len(row.ids)], names, vocab, strategy, ignore)
            for r, row in enumerate(rows)
        ]

    def primary_text(self, post, outputs, feeds, rows):
        """Per text: (label index of each real non-special token, label index of each word's first token or -1)."""
        logits = self.primary(post, outputs, feeds)
        out = np.empty(len(rows), dtype=object)
        for r, row in enumerate(rows):
            best = logits[r, : len(row.ids)].argmax(-1)
            special = np.asarray(row.encoding.special_tokens_mask, dtype=bool)
            out[r] = (best[~special], _word_labels(row, best, special))
        return out

    def sample_masks(self, post, feeds, reference=None):
        name = post.get("output") or "logits"
        return {name: feeds["attention_mask"] != 0} if "attention_mask" in feeds else {}

    def metrics(self, primary, labels, label_names):
        if labels is None:
            return None
        names = list(label_names) if label_names else None
        predicted = []
        for (_, words), tags in zip(primary, labels):
            if len(words) != len(tags):
                raise DataError(
                    f"a text of {len(words)} words has {len(tags)} tags",
                    "give one tag per word; words may not contain spaces",
                )
            predicted.append([(names[i] if names else str(i)) if i >= 0 else "O" for i in words])
        return entity_scores(labels, predicted)

    def source_scores(self, primary, labels, label_names):
        scores = self.metrics(primary, labels, label_names)
        return {"source_entity_f1": scores["entity_f1"]} if scores else {}

    def agreement(self, reference, actual):
        ref = np.concatenate([tokens for tokens, _ in reference])
        got = np.concatenate([tokens for tokens, _ in actual])
        return {"top1_agreement": float(np.mean(ref == got)) if len(ref) else None}


def _mask(feeds, outputs) -> np.ndarray:
    width = next(iter(outputs.values())).shape[1]
    mask = feeds.get("attention_mask")
    return mask[:, :width] != 0 if mask is not None else np.ones(next(iter(outputs.values())).shape[:2], dtype=bool)


def _names(post: dict, logits: np.ndarray) -> list[str]:
    labels = post.get("labels")
    return list(labels) if labels else [f"LABEL_{i}" for i in range(logits.shape[-1])]


def _token_text(row) -> TokenText:
    e = row.encoding
    return TokenText(row.text, row.ids, e.tokens, e.offsets, e.special_tokens_mask)


def _word_labels(row, best: np.ndarray, special: np.ndarray) -> list[int]:
    """The label of each whitespace-separated word's first token (-1 where truncation dropped the word)."""
    offsets = row.encoding.offsets
    out = []
    for word in WORD.finditer(row.text):
        first = next(
            (i for i, (s, e) in enumerate(offsets) if not special[i] and s < word.end() and e > word.start()), None
        )
        out.append(int(best[first]) if first is not None else -1)
    return out
