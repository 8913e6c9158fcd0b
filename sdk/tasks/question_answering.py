"""question-answering: extractive QA (`*ForQuestionAnswering`), start and end logits [batch, sequence].

predict({"question": ..., "context": ...}) gives {"answer", "score", "start", "end"} (character offsets into the
context). A long context is cut into windows of max_length tokens that overlap by `stride` tokens (transformers'
doc_stride); the best span over all windows wins (spans.py: transformers 4's QuestionAnsweringPipeline,
`top_k`, `max_answer_len`, `handle_impossible_answer`, `align_to_words`). Over --eval data (JSON lines
`{"question", "context", "answers": [...]}`) it scores SQuAD's exact match and F1 (squad.py); artifact and source
are compared by the share of questions given the same answer span.
"""

from __future__ import annotations

import numpy as np

from bmsdk.errors import InputError

from .base import Task
from .preprocessing import TextRow
from .spans import NULL_START, SpanOptions, rank, window_answers
from .squad import squad_scores

OPTIONS = ("top_k", "max_answer_len", "handle_impossible_answer", "align_to_words")
ASK = "pass predict({'question': ..., 'context': ...}) or a list of such dicts"


class QuestionAnswering(Task):
    name = "question-answering"
    hf_suffixes = ("ForQuestionAnswering",)
    hf_auto_class = "AutoModelForQuestionAnswering"
    hf_outputs = ("start_logits", "end_logits")
    predict_options = OPTIONS
    sample_texts = (
        ("Where does Mary live?", "Mary lives in Paris and works in London."),
        ("Who works at Acme?", "John works at Acme. Alice works at Initech."),
    )

    def batch_of(self, x):
        if isinstance(x, dict):
            return [_pair(x)], True
        if isinstance(x, tuple) and len(x) == 2 and all(isinstance(v, str) for v in x):
            return [_pair({"question": x[0], "context": x[1]})], True  # (question, context), as data holds it
        if isinstance(x, (list, tuple)) and x and all(isinstance(v, dict) for v in x):
            return [_pair(v) for v in x], False
        raise InputError(f"a question-answering model cannot take {type(x).__name__}", ASK)

    def text_preprocessing(self, max_length):
        return {"stride": min(max_length // 2, 128)}

    def postprocessing(self, output, labels):
        return {"output": "start_logits", **vars(SpanOptions())}

    def primary(self, post, outputs, feeds):
        return np.stack([outputs["start_logits"], outputs["end_logits"]], axis=-1).astype(np.float32)

    def postprocess(self, post, outputs, feeds):
        """Without the texts (test vectors): each row's best (start, end) token pair within its attention mask."""
        return [_best_pair(s, e, m, int(post.get("max_answer_len", 15))) for s, e, m in _rows(outputs, feeds)]

    def vector_prediction(self, post, outputs, feeds):
        return self.postprocess(post, outputs, feeds)[0]

    def split(self, rows):
        windows, owners = [], []
        for i, row in enumerate(rows):
            for e in [row.encoding, *row.encoding.overflowing]:
                windows.append(TextRow(np.asarray(e.ids, np.int64), np.asarray(e.type_ids, np.int64), row.text, e))
                owners.append(i)
        return windows, owners

    def postprocess_text(self, post, outputs, feeds, rows, pre, options):
        """Per window: (its answers, its null score); merge() ranks them per question."""
        spans = _options(post, options)
        found = []
        for r, row in enumerate(rows):
            found.append(
                window_answers(
                    row.encoding, row.text[1], outputs["start_logits"][r], outputs["end_logits"][r], NULL_START, spans
                )
                + (spans,)
            )
        return found

    def merge(self, results, owners, count):
        merged: list[list] = [[] for _ in range(count)]
        for owner, result in zip(owners, results):
            merged[owner].append(result)
        out = np.empty(count, dtype=object) if isinstance(results, np.ndarray) else [None] * count
        for i, parts in enumerate(merged):
            spans = parts[0][2]
            answers = [a for found, _, _ in parts for a in found]
            out[i] = rank(answers, min(null for _, null, _ in parts), spans)
        return out

    def primary_text(self, post, outputs, feeds, rows):
        found = self.postprocess_text(post, outputs, feeds, rows, None, {})
        out = np.empty(len(found), dtype=object)
        for i, window in enumerate(found):
            out[i] = window
        return out

    def metrics(self, primary, labels, label_names):
        if labels is None:
            return None
        return squad_scores([_text(a) for a in primary], labels)

    def source_scores(self, primary, labels, label_names):
        scores = self.metrics(primary, labels, label_names)
        return {"source_exact_match": scores["exact_match"], "source_answer_f1": scores["answer_f1"]} if scores else {}

    def agreement(self, reference, actual):
        same = [_span(a) == _span(b) for a, b in zip(reference, actual)]
        return {"top1_agreement": float(np.mean(same)) if same else None}

    def sample_masks(self, post, feeds, reference=None):
        mask = feeds.get("attention_mask")
        return {} if mask is None else {name: mask != 0 for name in self.hf_outputs}


def _pair(item: dict) -> tuple[str, str]:
    question, context = item.get("question"), item.get("context")
    if not (isinstance(question, str) and question.strip() and isinstance(context, str) and context.strip()):
        raise InputError("a question-answering input needs a 'question' and a 'context' string", ASK)
    return question, context


def _options(post: dict, options: dict) -> SpanOptions:
    spans = SpanOptions(**{k: post[k] for k in OPTIONS if k in post})
    for key, value in options.items():
        setattr(spans, key, value)
    for key in ("top_k", "max_answer_len"):
        value = getattr(spans, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{key} must be a whole number >= 1, got {value!r}", f"pass e.g. {key}=1")
    return spans


def _text(answer) -> str:
    best = answer if isinstance(answer, dict) else (answer[0] if answer else {"answer": ""})
    return best["answer"]


def _span(answer) -> tuple:
    best = answer if isinstance(answer, dict) else (answer[0] if answer else {})
    return best.get("start"), best.get("end")


def _rows(outputs, feeds):
    mask = feeds.get("attention_mask")
    start, end = outputs["start_logits"], outputs["end_logits"]
    for r in range(len(start)):
        m = mask[r, : start.shape[1]] != 0 if mask is not None else np.ones(start.shape[1], dtype=bool)
        yield start[r], end[r], m


def _best_pair(start: np.ndarray, end: np.ndarray, mask: np.ndarray, max_len: int) -> list[int]:
    n = int(mask.sum())
    scores = start[:n, None] + end[None, :n]
    allowed = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), max_len)
    s, e = np.unravel_index(np.where(allowed, scores, -np.inf).argmax(), scores.shape)
    return [int(s), int(e)]
