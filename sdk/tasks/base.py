"""The interface every task implements: what the model takes and returns, and how its answers are scored.

A task is one module in `sdk/tasks/` with one `Task` subclass, registered as a `bmsdk.tasks` entry point.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np


class Task:
    name: ClassVar[str]
    classifier: ClassVar[bool] = False  # outputs are class logits, scored by accuracy and macro-F1
    # How a Hugging Face checkpoint is recognised and loaded: config.json "architectures" ending in one of these
    # suffixes, the transformers Auto class, the model's input modality and the output bmsdk keeps.
    hf_suffixes: ClassVar[tuple[str, ...]] = ()
    hf_auto_class: ClassVar[str] = "AutoModel"
    hf_inputs: ClassVar[str] = "text"
    hf_output: ClassVar[str] = "logits"
    fallback: ClassVar[bool] = False  # the task of a checkpoint no other task recognises
    priority: ClassVar[int] = (
        0  # tried before tasks of lower priority (audio before text: both *ForSequenceClassification)
    )
    per_token: ClassVar[bool] = False  # its output has a row per token: [batch, sequence, ...]
    hf_outputs: ClassVar[tuple[str, ...]] = ()  # several outputs kept, each [batch, sequence] (start/end logits)
    sample_texts: ClassVar[tuple] = ()  # inputs for samples.npz when no data is given (default: a few sentences)
    predict_options: ClassVar[tuple[str, ...]] = ()  # keyword options predict() takes (token-classification: ...)
    agreement_floor: ClassVar[bool] = False  # the target's min_top1_agreement applies to agreement() (classifiers do)

    @classmethod
    def detects(cls, architectures: Sequence[str], config: dict | None = None) -> bool:
        """Whether a checkpoint is this task's: its config.json `architectures`, and `config` (config.json, with
        the checkpoint's preprocessor_config.json under "preprocessor" when it has one) where known."""
        return any(a.endswith(s) for a in architectures for s in cls.hf_suffixes)

    def postprocessing(self, output: str, labels: list[str] | None) -> dict:
        """The manifest's post-processing section for a model whose primary output is `output`."""
        return {"output": output}

    def hf_postprocessing(self, labels: list[str] | None) -> dict:
        """The post-processing section of a Hugging Face image checkpoint's model (outputs `hf_outputs`, or logits)."""
        return self.postprocessing("logits", labels)

    def source_resize(self, height: int, width: int, hints: dict) -> dict | None:
        """The image resize of a source without an image processor (a file or a factory, whose `bmsdk_spec` are
        `hints`) when not a plain resize to height x width (object detection: a letterbox); None: the plain one."""
        return None

    def primary(self, post: dict, outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The array a dataset evaluation compares (logits, pooled embeddings), one row per input."""
        return outputs[post.get("output") or next(iter(outputs))].astype(np.float32)

    def postprocess(self, post: dict, outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> Any:
        """What predict() returns for a batch: a list of one result per input, or an (N, ...) array."""
        return self.primary(post, outputs, feeds)

    def postprocess_images(
        self,
        post: dict,
        outputs: dict[str, np.ndarray],
        feeds: dict[str, np.ndarray],
        sizes: Sequence[tuple[int, int]],
        options: dict | None = None,
    ) -> Any:
        """predict() for a batch of images whose own (height, width) before pre-processing are `sizes`
        (semantic segmentation answers at each image's size); `options` are predict()'s keyword options (object
        detection: thresholds). By default the outputs alone decide."""
        return self.postprocess(post, outputs, feeds)

    def primary_images(
        self, post: dict, outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray], sizes: Sequence[tuple[int, int]]
    ) -> np.ndarray:
        """primary() for a batch of images of (height, width) `sizes` before pre-processing."""
        return self.primary(post, outputs, feeds)

    def batch_of(self, x: Any) -> tuple[list, bool] | None:
        """(the batch predict(x) runs, whether x is one input) for tasks with inputs of their own (question
        answering: {"question", "context"} dicts); None: the Model decides."""
        return None

    def text_preprocessing(self, max_length: int) -> dict:
        """Extra text pre-processing settings of this task (question answering: the window stride)."""
        return {}

    def split(self, rows: Sequence) -> tuple[list, list[int]]:
        """The model rows of encoded inputs and the input each comes from (question answering: one row per window
        of a long context); by default one row per input."""
        return list(rows), list(range(len(rows)))

    def merge(self, results: list, owners: list[int], count: int) -> list:
        """One result per input from the results of its rows (the inverse of split)."""
        return results

    def postprocess_text(
        self, post: dict, outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray], rows: Sequence, pre, options
    ) -> Any:
        """predict() for a batch of texts: `rows` are their TextRows (text, tokens, offsets), `pre` the
        TextPreprocessor, `options` predict()'s keyword options. By default the outputs alone decide."""
        return self.postprocess(post, outputs, feeds)

    def primary_text(
        self, post: dict, outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray], rows: Sequence
    ) -> np.ndarray:
        """primary() for a batch of texts, with their TextRows."""
        return self.primary(post, outputs, feeds)

    def sample_masks(
        self, post: dict, feeds: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """{output: [batch, sequence] bool} for per-token outputs whose padding positions a sample check skips
        (object detection: [batch, queries], the queries the source finds an object with); `reference` are the
        source's outputs for `feeds`."""
        return {}

    def metrics(self, primary: np.ndarray, labels: Sequence, label_names: Sequence[str] | None) -> dict | None:
        """The task metric against data labels; None where the task has no labels to score."""
        return None

    def agreement(self, reference: np.ndarray, actual: np.ndarray) -> dict:
        """How closely an artifact's primary outputs follow the source's over a dataset."""
        raise NotImplementedError

    def source_scores(self, primary: np.ndarray, labels: Sequence, label_names: Sequence[str] | None) -> dict:
        """The source's task metric as eval report fields, for tasks whose agreement() does not give it."""
        return {}

    def eval_failure(self, report, precision: str) -> str | None:
        """Why an artifact's eval report fails beyond the target's tolerance (text generation: its perplexity
        budget); None when it passes."""
        return None

    def vector_prediction(self, post: dict, outputs: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> Any:
        """The prediction of one input (outputs of batch 1) as JSON for the device libraries' test vectors."""
        result = self.postprocess(post, outputs, feeds)
        return result[0] if isinstance(result, list) else np.asarray(result)[0].tolist()

    def __repr__(self) -> str:
        return f"<task {self.name}>"
