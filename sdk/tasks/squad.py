"""Exact match and F1 of answers, as the official SQuAD evaluation script defines them.

Answers are normalised (lower case, punctuation and the articles a/an/the removed, whitespace collapsed); a
prediction scores the best over the gold answers. A question without gold answers (SQuAD 2.0's unanswerable)
scores 1 only for an empty prediction. Scores are fractions (0-1), averaged over the questions.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    common = sum((Counter(predicted) & Counter(wanted)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(wanted)
    return 2 * precision * recall / (precision + recall)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 of each prediction against its gold answers."""
    em, f1 = [], []
    for prediction, answers in zip(predictions, golds):
        answers = list(answers) or [""]
        em.append(max(exact_match(prediction, a) for a in answers))
        f1.append(max(token_f1(prediction, a) for a in answers))
    n = len(em)
    return {"exact_match": sum(em) / n if n else float("nan"), "answer_f1": sum(f1) / n if n else float("nan"), "n": n}
