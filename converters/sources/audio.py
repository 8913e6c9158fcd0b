"""Waveform audio checkpoints (wav2vec2, HuBERT, WavLM): their feature extractor settings, and the rewrites that
make them export on every target with the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bmsdk.converters.sources.files import read_json
from bmsdk.errors import SourceError
from bmsdk.manifest import MAX_SAMPLING_RATE
from bmsdk.tasks.audio_classification import WAVEFORM_EXTRACTORS


def read_extractor(path: Path) -> dict:
    """The checkpoint's waveform feature extractor settings (preprocessor_config.json); spectrogram front ends
    (AST's fbank, Whisper's log-mel) are refused."""
    file = path / "preprocessor_config.json"
    if not file.is_file():
        raise SourceError(
            f"the audio checkpoint in {path} has no preprocessor_config.json (its sampling rate and normalisation)",
            "save the feature extractor next to the model: Wav2Vec2FeatureExtractor(...).save_pretrained(folder)",
        )
    fe = read_json(file, "preprocessor config")
    kind = fe.get("feature_extractor_type", "Wav2Vec2FeatureExtractor")
    if kind not in WAVEFORM_EXTRACTORS:
        raise SourceError(
            f"{path} reads audio through {str(kind)[:80]}, which bmsdk does not implement",
            f"audio-classification supports raw-waveform models ({', '.join(WAVEFORM_EXTRACTORS)}: wav2vec2, "
            "HuBERT, WavLM, ...)",
        )
    if fe.get("feature_size", 1) != 1:
        raise SourceError(f"{file} sets feature_size {fe.get('feature_size')!r}", "a waveform model has feature_size 1")
    rate = fe.get("sampling_rate", 16000)
    if not (isinstance(rate, int) and 0 < rate <= MAX_SAMPLING_RATE):
        raise SourceError(f"{file} sets sampling_rate {rate!r}", "set an integer rate in Hz, e.g. 16000")
    padding = fe.get("padding_value", 0.0)
    if isinstance(padding, bool) or not isinstance(padding, (int, float)) or not np.isfinite(padding):
        raise SourceError(f"{file} sets padding_value {padding!r}", "set a finite number, e.g. 0.0")
    return {
        "sampling_rate": rate,
        "do_normalize": bool(fe.get("do_normalize", True)),
        "padding_value": float(padding),
        "attention_mask": bool(fe.get("return_attention_mask", False)),
        "feature_extractor": kind,
    }


def fold_weight_norm(model) -> list[str]:
    """Fold weight-norm reparametrizations (wav2vec2's positional conv embedding) into plain weights: the same
    numbers, and a graph exporters see as one convolution. Returns the modules changed."""
    import torch
    from torch.nn.utils import parametrize

    changed = []
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            changed.append(name)
        elif hasattr(module, "weight_g") and hasattr(module, "weight_v"):
            torch.nn.utils.remove_weight_norm(module)
            changed.append(name)
    return changed


def direct_frame_masks(model) -> None:
    """wav2vec2-family models turn the sample mask into a frame mask by scattering a 1 at each clip's last frame and
    summing the reversed row (a scatter litert-torch cannot type and the MIL executor needed two ops for). The same
    mask, computed directly: frame t is attended where t < the clip's frame count (all frames for a count of 0,
    as the original's index -1 gives)."""
    import types

    import torch

    def frame_mask(self, feature_vector_length, attention_mask, **kwargs):
        lengths = self._get_feat_extract_output_lengths(attention_mask.sum(-1), **kwargs).to(torch.long)
        lengths = torch.where(lengths > 0, lengths, torch.full_like(lengths, feature_vector_length))
        frames = torch.arange(feature_vector_length, device=attention_mask.device)
        return frames[None, :] < lengths[:, None]

    for module in model.modules():
        if hasattr(module, "_get_feature_vector_attention_mask"):
            module._get_feature_vector_attention_mask = types.MethodType(frame_mask, module)


def _masked_assignments_mode():
    import torch
    from torch.overrides import TorchFunctionMode

    class MaskedAssignments(TorchFunctionMode):
        """`x[mask] = value` with a boolean mask of x's own shape (wav2vec2/HuBERT encoders zero their padded frames
        this way) as `x.masked_fill_(mask, value)`: the same numbers, and an op every exporter lowers (a boolean
        index_put is data-dependent for litert-torch and refused by coremltools)."""

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.Tensor.__setitem__ and len(args) == 3:
                x, index, value = args
                whole = isinstance(index, torch.Tensor) and index.dtype == torch.bool and index.shape == x.shape
                if whole and (not isinstance(value, torch.Tensor) or value.dim() == 0):
                    return x.masked_fill_(index, value)
            return func(*args, **kwargs)

    return MaskedAssignments


class MaskedAssignments:
    """Context manager: the TorchFunctionMode of _masked_assignments_mode (torch imported on first use)."""

    def __enter__(self):
        self.mode = _masked_assignments_mode()()
        return self.mode.__enter__()

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)


def logits_module(model):
    """The classifier as a module that returns its logits, its boolean-mask assignments made masked_fill."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **feeds):
            with MaskedAssignments():
                return self.inner(**feeds, return_dict=True).logits

    return LogitsOnly(model)
