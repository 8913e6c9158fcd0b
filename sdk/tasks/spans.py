"""Answer spans from start/end logits, as transformers 4's QuestionAnsweringPipeline chose them (numpy only).

Per window of the context: logits outside the context (question, special tokens, padding; the CLS token kept)
are masked, start and end are softmaxed, every span of at most `max_answer_len` tokens is scored by
p(start) * p(end), the best `top_k` are kept and mapped to character offsets of the context (whole words with
`align_to_words`). The answers of all windows are then ranked together. `decode_spans` and `select_starts_ends`
follow transformers' own (still in `pipelines/document_question_answering.py` in transformers 5, which removed
the question-answering pipeline), quirks included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NULL_START = 1000000.0  # "no null score seen yet", as transformers starts it


@dataclass
class SpanOptions:
    top_k: int = 1
    max_answer_len: int = 15
    handle_impossible_answer: bool = False
    align_to_words: bool = True


def decode_spans(start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int, undesired: np.ndarray):
    """The `topk` best (start, end) token pairs of one window [1, tokens] and their scores."""
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)  # end >= start, at most max_answer_len tokens
    flat = candidates.flatten()
    if topk == 1:
        order = [np.argmax(flat)]
    elif len(flat) <= topk:
        order = np.argsort(-flat)
    else:
        part = np.argpartition(-flat, topk)[0:topk]
        order = part[np.argsort(-flat[part])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    keep = np.isin(starts, undesired.nonzero()) & np.isin(ends, undesired.nonzero())
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends]


def select_starts_ends(start, end, p_mask, attention_mask, min_null_score, options: SpanOptions):
    """Mask, normalise and decode one window's logits [1, tokens]: (starts, ends, scores, min_null_score)."""
    undesired = np.abs(np.asarray(p_mask) - 1)
    if attention_mask is not None:
        undesired = undesired & attention_mask
    masked = undesired == 0.0
    start = np.where(masked, -10000.0, start)
    end = np.where(masked, -10000.0, end)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if options.handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0  # the CLS position is no answer
    starts, ends, scores = decode_spans(start, end, options.top_k, options.max_answer_len, undesired)
    return starts, ends, scores, min_null_score


def p_mask(encoding) -> np.ndarray:
    """1 for the tokens that cannot be in an answer (not the context), 0 for the context and the CLS token."""
    mask = np.asarray([0 if s == 1 else 1 for s in encoding.sequence_ids], dtype=np.int64)
    if encoding.special_tokens_mask and encoding.special_tokens_mask[0]:
        mask[np.asarray(encoding.ids) == encoding.ids[0]] = 0  # the CLS token, wherever it occurs
    return mask


def window_answers(encoding, context: str, start_logits, end_logits, min_null: float, options: SpanOptions):
    """(answers of one window, updated min null score); logits cut to the window's own tokens."""
    n = len(encoding.ids)
    starts, ends, scores, min_null = select_starts_ends(
        np.asarray(start_logits[:n], dtype=np.float32)[None],
        np.asarray(end_logits[:n], dtype=np.float32)[None],
        p_mask(encoding)[None],
        np.ones((1, n), dtype=np.int64),
        min_null,
        options,
    )
    answers = []
    for s, e, score in zip(starts, ends, scores):
        first, last = _char_span(encoding, int(s), int(e), options.align_to_words)
        answers.append({"score": float(score), "start": first, "end": last, "answer": context[first:last]})
    return answers, min_null


def rank(answers: list[dict], min_null: float, options: SpanOptions):
    """The best answers over all windows: a dict for top_k 1, else a list."""
    if options.handle_impossible_answer:
        answers = [*answers, {"score": min_null, "start": 0, "end": 0, "answer": ""}]
    best = sorted(answers, key=lambda a: a["score"], reverse=True)[: options.top_k]
    return best[0] if len(best) == 1 else best


def _char_span(encoding, s: int, e: int, align_to_words: bool) -> tuple[int, int]:
    if align_to_words:
        try:
            first_word, last_word = encoding.token_to_word(s), encoding.token_to_word(e)
            return encoding.word_to_chars(first_word, 1)[0], encoding.word_to_chars(last_word, 1)[1]
        except Exception:  # noqa: BLE001 - tokenizers without words (transformers falls back to offsets too)
            pass
    return encoding.offsets[s][0], encoding.offsets[e][1]
