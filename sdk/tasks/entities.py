"""Entities from per-token logits, as transformers' TokenClassificationPipeline makes them (numpy only).

Aggregation strategies: `none` (one entry per token), `simple` (adjacent tokens of one entity type grouped, a
`B-` tag starting a new group), and the word-level `first`, `average` and `max` (every piece of a word gets the
label of its first piece, of its average scores, or of its most confident piece; then grouped as `simple`).
Special tokens and padding never become entities; start/end are character offsets into the original text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bmsdk.errors import InputError

STRATEGIES = ("none", "simple", "first", "average", "max")
WORD_STRATEGIES = ("first", "average", "max")


@dataclass
class TokenText:
    """One text's tokens: what the pipeline reads besides the logits."""

    text: str
    ids: Sequence[int]
    tokens: Sequence[str]
    offsets: Sequence[tuple[int, int]]
    special: Sequence[int]  # 1 for special tokens


@dataclass
class Vocabulary:
    """What aggregation needs from the tokenizer: joining tokens into a word, its unknown token, and whether it
    marks word-continuing pieces (otherwise a piece continues a word when no space precedes it)."""

    join: Callable[[Sequence[str]], str]
    unk_id: int | None
    word_aware: bool


def check_strategy(strategy: str) -> str:
    name = str(strategy).lower()
    if name not in STRATEGIES:
        raise InputError(
            f"unknown aggregation_strategy {strategy!r}", f"use one of {', '.join(STRATEGIES)} (default: simple)"
        )
    return name


def token_scores(logits: np.ndarray) -> np.ndarray:
    """Softmax over the labels of each token, in float32 as the pipeline computes it."""
    logits = logits.astype(np.float32)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def entities(
    row: TokenText,
    logits: np.ndarray,
    labels: Sequence[str],
    vocab: Vocabulary,
    strategy: str = "simple",
    ignore: Sequence[str] = ("O",),
) -> list[dict]:
    """The entities of one text from its tokens' logits [tokens, labels] (padding already cut off)."""
    strategy = check_strategy(strategy)
    pieces = _pieces(row, token_scores(logits), vocab)
    if strategy in WORD_STRATEGIES:
        found = [_word(group, labels, vocab, strategy) for group in _words(pieces)]
    else:
        found = [_token(p, labels) for p in pieces]
    if strategy != "none":
        found = _group(found, vocab)
    return [e for e in found if e.get("entity", e.get("entity_group")) not in ignore]


def _pieces(row: TokenText, scores: np.ndarray, vocab: Vocabulary) -> list[dict]:
    out = []
    for i, token_scores_ in enumerate(scores):
        if row.special[i]:
            continue
        start, end = (int(v) for v in row.offsets[i])
        word, ref = row.tokens[i], row.text[start:end]
        if vocab.word_aware:
            subword = len(word) != len(ref)
        else:
            subword = start > 0 and " " not in row.text[start - 1 : start + 1]
        if vocab.unk_id is not None and int(row.ids[i]) == vocab.unk_id:
            word, subword = ref, False
        out.append({"word": word, "scores": token_scores_, "start": start, "end": end, "index": i, "subword": subword})
    return out


def _token(piece: dict, labels: Sequence[str]) -> dict:
    best = int(piece["scores"].argmax())
    return {
        "entity": labels[best],
        "score": float(piece["scores"][best]),
        "index": piece["index"],
        "word": piece["word"],
        "start": piece["start"],
        "end": piece["end"],
    }


def _words(pieces: list[dict]) -> list[list[dict]]:
    groups: list[list[dict]] = []
    for piece in pieces:
        if groups and piece["subword"]:
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


def _word(group: list[dict], labels: Sequence[str], vocab: Vocabulary, strategy: str) -> dict:
    if strategy == "first":
        scores = group[0]["scores"]
    elif strategy == "max":
        scores = max(group, key=lambda p: p["scores"].max())["scores"]
    else:
        scores = np.nanmean(np.stack([p["scores"] for p in group]), axis=0)
    best = int(scores.argmax())
    return {
        "entity": labels[best],
        "score": float(scores[best]),
        "word": vocab.join([p["word"] for p in group]),
        "start": group[0]["start"],
        "end": group[-1]["end"],
    }


def _tag(label: str) -> tuple[str, str]:
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label  # not in B-/I- form: a continuation


def _group(found: list[dict], vocab: Vocabulary) -> list[dict]:
    groups: list[list[dict]] = []
    for entity in found:
        bi, tag = _tag(entity["entity"])
        if groups and tag == _tag(groups[-1][-1]["entity"])[1] and bi != "B":
            groups[-1].append(entity)
        else:
            groups.append([entity])
    return [
        {
            "entity_group": group[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([e["score"] for e in group])),
            "word": vocab.join([e["word"] for e in group]),
            "start": group[0]["start"],
            "end": group[-1]["end"],
        }
        for group in groups
    ]
