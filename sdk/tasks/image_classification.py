"""image-classification: an image classifier (`*ForImageClassification`); predict() gives label and scores."""

from __future__ import annotations

from .classification import Classification


class ImageClassification(Classification):
    name = "image-classification"
    hf_suffixes = ("ForImageClassification",)
    hf_auto_class = "AutoModelForImageClassification"
    hf_inputs = "image"
