"""Pruning stage (between source and export): removes channels, attention heads and FFN neurons for real with
torch-pruning (DepGraph), or zeroes weights (unstructured magnitude, 2:4 semi-structured) for targets that use sparsity.

Works on a deep copy of `source.module`, never on the caller's model: `prune` returns a new Source over the pruned
copy, and reports parameters and MACs before and after.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np

from bmsdk.converters.sources.loader import Source, example_feeds
from bmsdk.errors import DataError, UnsupportedError
from bmsdk.sections import BeforeAfter, LayerCounts, Pruning

METHODS = ("channels", "heads-ffn", "magnitude", "2:4")
STRUCTURED = ("channels", "heads-ffn")
IMPORTANCES = ("magnitude", "taylor")
SPARSE_TARGETS = ("coreml", "tensorrt")  # targets that turn zeroed weights into smaller or faster models
TAYLOR_BATCHES = 4


def default_method(source: Source) -> str:
    return "heads-ffn" if attention_modules(source.module) else "channels"


def check_method(method: str, importance: str, target: str) -> None:
    """Refuse, before any work, methods and importances bmsdk does not have, and sparsity a target cannot use."""
    if method not in METHODS:
        raise UnsupportedError(f"unknown pruning method '{method}'", f"use one of: {', '.join(METHODS)}")
    if importance not in IMPORTANCES:
        raise UnsupportedError(f"unknown importance '{importance}'", f"use one of: {', '.join(IMPORTANCES)}")
    if method not in STRUCTURED and target not in SPARSE_TARGETS:
        raise UnsupportedError(
            f"--prune-method {method} only zeroes weights, which target '{target}' cannot use "
            "(the model would be neither smaller nor faster)",
            f"use --prune-method channels (CNNs) or heads-ffn (transformers), or target {' or '.join(SPARSE_TARGETS)}",
        )


def check_source(source: Source, method: str) -> None:
    if source.module is None:
        raise UnsupportedError(
            "pruning needs a PyTorch source", "prune the checkpoint, .pt2, TorchScript or factory the model came from"
        )
    if source.info.get("scripted") or source.exported_program is not None:
        if method in STRUCTURED:
            raise UnsupportedError(
                f"structural pruning needs an eager PyTorch model, not a {source.format} program",
                "pass the Hugging Face checkpoint folder or a factory 'pkg.module:function'",
            )
    has_attention = bool(attention_modules(source.module))
    if method == "heads-ffn" and not has_attention:
        raise UnsupportedError(
            "--prune-method heads-ffn needs a BERT-style transformer (attention with query/key/value)",
            "use --prune-method channels for CNNs",
        )
    if method == "channels" and has_attention:
        raise UnsupportedError(
            "--prune-method channels would cut a transformer's hidden size",
            "use --prune-method heads-ffn for transformers",
        )


def attention_modules(module) -> list:
    return [
        m
        for m in module.modules()
        if hasattr(m, "num_attention_heads") and all(hasattr(m, n) for n in ("query", "key", "value"))
    ]


def torch_example(source: Source, batch: int = 2) -> dict:
    import torch

    return {k: torch.from_numpy(v) for k, v in example_feeds(source.inputs, batch=batch, sequence=16).items()}


def count(module, example: dict) -> dict:
    """Parameters, non-zero parameters and MACs (one example) of a module."""
    import contextlib
    import io

    import torch_pruning as tp

    with contextlib.redirect_stdout(io.StringIO()):  # the op counter prints warnings about keyword inputs
        macs, params = tp.utils.count_ops_and_params(module, example)
    nonzero = int(sum(int((p != 0).sum()) for p in module.parameters()))
    batch = len(next(iter(example.values())))
    return {"params": int(params), "nonzero_params": nonzero, "macs": int(macs // batch)}


def prune(
    source: Source, ratio: float, method: str, importance: str, calibration: list[dict] | None
) -> tuple[Source, Pruning]:
    """A new Source over a pruned deep copy of `source.module` (`source` is left as it is), and the report for the
    manifest's `compression.pruning`."""
    import torch

    module = copy.deepcopy(source.module)
    example = torch_example(source)
    before = count(module, example)
    details = _prune_module(module, example, ratio, method, importance, calibration)  # the method's own fields
    module.eval()
    with torch.no_grad():
        module(**example)  # the pruned model still runs
    after = count(module, example)
    report = Pruning(
        method=method,
        ratio=ratio if method != "2:4" else 0.5,
        importance=importance if method in STRUCTURED else "magnitude",
        tool="torch-pruning" if method in STRUCTURED else "torch",
        params=_change(before, after, "params"),
        nonzero_params=_change(before, after, "nonzero_params"),
        macs=_change(before, after, "macs"),
        **details,
    )
    return dataclasses.replace(source, module=module), report


def _prune_module(module, example: dict, ratio: float, method: str, importance: str, calibration) -> dict:
    """Prune `module` in place with `method`; the fields of Pruning the method reports."""
    if method == "channels":
        return _channels(module, example, ratio, _importance(importance), calibration)
    if method == "heads-ffn":
        return _heads_ffn(module, example, ratio, _importance(importance), calibration)
    if method == "magnitude":
        return _unstructured(module, ratio)
    return _two_four(module)


def _change(before: dict, after: dict, key: str) -> BeforeAfter:
    return BeforeAfter(before=before[key], after=after[key])


def _importance(name: str):
    import torch_pruning as tp

    return tp.importance.GroupTaylorImportance() if name == "taylor" else tp.importance.GroupMagnitudeImportance(p=2)


def _output_layers(module) -> list:
    """The layers that produce the model's outputs (class logits): never pruned."""
    import torch

    layers = [m for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    heads = [
        m
        for name, m in module.named_modules()
        if isinstance(m, torch.nn.Linear)
        and (name.split(".")[-1] in ("classifier", "score") or name.endswith("pooler.dense"))
    ]
    return layers[-1:] + heads


def _taylor_gradients(module, calibration: list[dict] | None) -> None:
    """First-order Taylor importance needs gradients: of the cross-entropy against the model's own predictions."""
    import torch

    if not calibration:
        raise DataError(
            "taylor importance needs calibration data", "pass --calibration DATA, or use --importance magnitude"
        )
    module.zero_grad()
    for batch in calibration[:TAYLOR_BATCHES]:
        out = module(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()})
        out = out[0] if isinstance(out, (tuple, list)) else out
        loss = torch.nn.functional.cross_entropy(out, out.argmax(-1).detach()) if out.ndim == 2 else out.pow(2).mean()
        loss.backward()


def _channels(module, example, ratio, importance, calibration) -> dict:
    import torch_pruning as tp

    pruner = tp.pruner.MetaPruner(
        module, example, importance=importance, pruning_ratio=ratio, ignored_layers=_output_layers(module)
    )
    if isinstance(importance, tp.importance.GroupTaylorImportance):
        _taylor_gradients(module, calibration)
    pruner.step()
    return {"removed": "output channels of every conv/linear layer but the classifier (and their inputs downstream)"}


def _heads_ffn(module, example, ratio, importance, calibration) -> dict:
    """Whole attention heads and FFN neurons; the hidden size (embeddings, LayerNorms, residuals) is kept."""
    import torch_pruning as tp

    attentions = attention_modules(module)
    heads_before = [a.num_attention_heads for a in attentions]
    num_heads, ratios = {}, {}
    for a in attentions:
        for linear in (a.query, a.key, a.value):
            num_heads[linear] = a.num_attention_heads
            ratios[linear] = ratio
    ffn = [m.dense for name, m in module.named_modules() if name.endswith("intermediate") and hasattr(m, "dense")]
    ratios.update({linear: ratio for linear in ffn})
    ffn_before = [linear.out_features for linear in ffn]
    pruner = tp.pruner.MetaPruner(
        module,
        example,
        importance=importance,
        pruning_ratio=0.0,
        pruning_ratio_dict=ratios,
        num_heads=num_heads,
        prune_num_heads=True,
        prune_head_dims=False,
        head_pruning_ratio=ratio,
        ignored_layers=_output_layers(module),
    )
    if isinstance(importance, tp.importance.GroupTaylorImportance):
        _taylor_gradients(module, calibration)
    pruner.step()
    for a in attentions:  # the attention reshapes by head size; keep its bookkeeping right
        a.num_attention_heads = a.query.out_features // a.attention_head_size
        a.all_head_size = a.query.out_features
    return {
        "heads_per_layer": LayerCounts(before=heads_before, after=[a.num_attention_heads for a in attentions]),
        "ffn_per_layer": LayerCounts(before=ffn_before, after=[linear.out_features for linear in ffn]),
    }


def _weights(module) -> list:
    import torch

    return [m.weight for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]


def _unstructured(module, ratio) -> dict:
    """The smallest-magnitude weights of all conv/linear layers together set to zero."""
    import torch

    weights = _weights(module)
    with torch.no_grad():
        magnitudes = torch.cat([w.abs().flatten() for w in weights])
        threshold = torch.kthvalue(magnitudes, max(1, int(ratio * magnitudes.numel()))).values
        for w in weights:
            w.mul_((w.abs() > threshold).to(w.dtype))
    return {"pattern": "unstructured", "note": "weights are zeroed, not removed: a target needs sparse weights to gain"}


def _two_four(module) -> dict:
    """In every group of 4 consecutive input weights, the 2 smallest set to zero (NVIDIA 2:4 sparsity)."""
    import torch

    done = 0
    with torch.no_grad():
        for w in _weights(module):
            flat = w.reshape(w.shape[0], -1)
            if flat.shape[1] % 4:
                continue
            groups = flat.reshape(flat.shape[0], -1, 4)
            keep = groups.abs().topk(2, dim=-1).indices
            mask = torch.zeros_like(groups).scatter_(-1, keep, 1.0)
            w.copy_((groups * mask).reshape(w.shape))
            done += 1
    return {
        "pattern": "2:4",
        "layers": done,
        "note": "2 of every 4 input weights zeroed (layers whose input size is a multiple of 4)",
    }
