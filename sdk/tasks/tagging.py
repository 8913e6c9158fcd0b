"""Entity-level precision, recall and F1 of tag sequences, exactly as seqeval's default (CoNLL) mode computes them.

Chunks are read from IOB-style tags the way seqeval's `get_entities` reads them (B-/I-/E-/S- prefixes, an `I-`
after `O` or after another type starts a chunk); an entity counts as found only with the same type and the same
first and last word. The scores are micro-averaged over all entities, 0 where a denominator is 0 (seqeval's
`zero_division` default).
"""

from __future__ import annotations

from collections.abc import Sequence


def chunks(sequences: Sequence[Sequence[str]]) -> set[tuple[str, int, int]]:
    """(type, first, last) of every chunk, positions counted over all sequences with an `O` after each."""
    flat = [tag for seq in sequences for tag in [*seq, "O"]]
    found, prev_tag, prev_type, begin = set(), "O", "", 0
    for i, label in enumerate([*flat, "O"]):
        tag, type_ = label[:1], label[1:].split("-", maxsplit=1)[-1] or "_"
        if _ends(prev_tag, tag, prev_type, type_):
            found.add((prev_type, begin, i - 1))
        if _starts(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return found


def _ends(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
    )


def _starts(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
    )


def entity_scores(truth: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro-averaged entity precision, recall and F1 (seqeval `precision_score`, `recall_score`, `f1_score`)."""
    gold, found = chunks(truth), chunks(predicted)
    hits = len(gold & found)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"entity_precision": precision, "entity_recall": recall, "entity_f1": f1, "entities": len(gold)}
