"""text-classification: a sequence classifier (`*ForSequenceClassification`); predict() gives label and scores."""

from __future__ import annotations

from .classification import Classification


class TextClassification(Classification):
    name = "text-classification"
    hf_suffixes = ("ForSequenceClassification",)
    hf_auto_class = "AutoModelForSequenceClassification"
