"""A Hugging Face causal LM as the step graph every target exports (contract: bmsdk/tasks/generation.py).

The model runs with a static window of C cache slots passed in as tensors; it returns the logits and the keys and
values of the new tokens only. This uses transformers' own forward (any `*ForCausalLM` whose cache is a plain
per-layer key/value cache), so no architecture is re-written here.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from pathlib import Path

from bmsdk.errors import SourceError, UnsupportedError
from bmsdk.manifest import TensorSpec

DEFAULT_CACHE_LENGTH = 256


def cache_layout(model) -> tuple[int, int, int, str]:
    """(layers, KV heads, head size, the forward's cache argument), read from one forward pass of the model."""
    import torch

    parameters = inspect.signature(model.forward).parameters
    argument = "cache" if "cache" in parameters else "past_key_values"
    with torch.inference_mode():
        out = model(input_ids=torch.zeros((1, 1), dtype=torch.long), use_cache=True, return_dict=True)
    cache = getattr(out, "past_key_values", None) or getattr(out, "cache", None)
    layers = getattr(cache, "layers", None)
    if not layers or any(getattr(layer, "keys", None) is None for layer in layers):
        raise UnsupportedError(
            f"{type(model).__name__} keeps no plain key/value cache ({type(cache).__name__})",
            "text generation supports decoder-only models with a per-layer KV cache (Llama, Qwen2, Phi, GPT-2...)",
        )
    shapes = {tuple(layer.keys.shape[1::2]) for layer in layers} | {tuple(layer.values.shape[1::2]) for layer in layers}
    if len(shapes) != 1:
        raise UnsupportedError(
            f"{type(model).__name__} has layers with different cache shapes {sorted(shapes)}",
            "models with sliding-window or mixed caches are not supported yet",
        )
    heads, head_dim = shapes.pop()
    return len(layers), heads, head_dim, argument


GROUPED_ATTENTION = "bmsdk_grouped"


def grouped_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention through transformers' AttentionInterface that never repeats the cached K/V heads.

    The query heads sharing a KV head are folded into its rows (grouped-query attention as one matmul per KV head),
    only the query is scaled, and the eager (additive) mask is added to the scores. transformers' sdpa path, once
    exported, repeats every cached K/V head and scales and transposes the whole cache on each decode step: on LiteRT
    those generic broadcast/transpose kernels took most of a decode step and grew with the cache length.
    Shapes: query [B, H, T, D], key/value [B, KVH, S, D] -> ([B, T, H, D], None).
    """
    import torch

    if kwargs.get("s_aux") is not None:  # attention sinks (gpt-oss): transformers' own implementation
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)
    batch, heads, length, dim = query.shape
    kv_heads, slots = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    scale = scaling if scaling is not None else dim**-0.5
    scores = torch.matmul((query * scale).reshape(batch, kv_heads, groups * length, dim), key.transpose(-1, -2))
    if kwargs.get("softcap"):  # Gemma 2
        scores = torch.tanh(scores / kwargs["softcap"]) * kwargs["softcap"]
    if attention_mask is not None:  # [B, 1 or H, T, S] -> the rows of `scores`: (group, token) per KV head
        mask = attention_mask if attention_mask.shape[-1] == slots else attention_mask[:, :, :, :slots]
        if mask.shape[1] == 1:
            mask = mask.repeat(1, 1, groups, 1)  # [B, 1, G*T, S]: broadcast over the KV heads
        else:
            mask = mask.reshape(batch, kv_heads, groups * length, slots)
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(probs, value).reshape(batch, heads, length, dim)
    return out.transpose(1, 2).contiguous(), None


def use_grouped_attention(model) -> None:
    """Switch `model` to grouped_attention (with transformers' eager mask) where it dispatches through the
    AttentionInterface (Llama, Qwen, Gemma, Phi, GPT-2...); other models keep their own attention."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(GROUPED_ATTENTION, grouped_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(GROUPED_ATTENTION, eager_mask)
    if getattr(model, "_can_set_attn_implementation", lambda: False)():
        model.set_attn_implementation(GROUPED_ATTENTION)


@contextlib.contextmanager
def transformers_attention(module):
    """The causal LM under `module` (a source's step graph) on transformers' own sdpa attention while the block
    runs, for a converter that has an attention op of its own (coremltools maps sdpa to CoreML's SDPA op; its
    stateful path is built on it); any other module is left as it is."""
    model = next((m for m in module.modules() if hasattr(m, "set_attn_implementation")), None)
    current = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if current != GROUPED_ATTENTION:
        yield
        return
    model.set_attn_implementation("sdpa")
    try:
        yield
    finally:
        model.set_attn_implementation(GROUPED_ATTENTION)


def step_module(model, layers: int, argument: str):
    """forward(input_ids, position_ids, attention_mask, past_key_0, past_value_0, ...) -> (logits, presents...)."""
    import torch
    from transformers import DynamicCache

    use_grouped_attention(model)

    class CausalStep(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, **feeds):
            past = [(feeds[f"past_key_{i}"], feeds[f"past_value_{i}"]) for i in range(layers)]
            out = self.inner(
                input_ids=feeds["input_ids"],
                position_ids=feeds["position_ids"],
                attention_mask=feeds["attention_mask"],
                use_cache=True,
                return_dict=True,
                **{argument: DynamicCache(ddp_cache_data=past)},
            )
            width = feeds["input_ids"].shape[1]
            cache = getattr(out, "past_key_values", None) or out.cache
            new = [t[:, :, -width:] for layer in cache.layers[:layers] for t in (layer.keys, layer.values)]
            return (out.logits, *new)

    return CausalStep(model).eval()


def step_specs(layers: int, heads: int, head_dim: int, cache_length: int, vocab: int):
    """(inputs, outputs) of the step graph."""
    window = f"sequence+{cache_length}"
    cache = ["batch", heads, cache_length, head_dim]
    chunk = {"sequence": cache_length}  # a step writes at most the whole window
    inputs = [
        TensorSpec("input_ids", "int64", ["batch", "sequence"], [0, vocab - 1], chunk),
        TensorSpec("position_ids", "int64", ["batch", "sequence"], None, dict(chunk)),
        TensorSpec("attention_mask", "int64", ["batch", window], [0, 1]),
    ]
    outputs = [TensorSpec("logits", "float32", ["batch", "sequence", vocab])]
    for i in range(layers):
        for kind in ("key", "value"):
            inputs.append(TensorSpec(f"past_{kind}_{i}", "float32", list(cache)))
            outputs.append(TensorSpec(f"present_{kind}_{i}", "float32", ["batch", heads, "sequence", head_dim]))
    return inputs, outputs


def generation_preprocessing(
    layers: int,
    heads: int,
    head_dim: int,
    cache_length: int,
    config: dict,
    tok_config: dict,
    folder: Path,
    pad_id: int,
) -> dict:
    """The manifest's pre-processing: tokenizer, cache shape, end-of-sequence ids and chat template."""
    pre = {
        "kind": "generation",
        "tokenizer": "tokenizer/tokenizer.json",
        "cache_length": cache_length,
        "layers": layers,
        "kv_heads": heads,
        "head_dim": head_dim,
        "pad_id": pad_id,
        "eos_ids": eos_ids(config, folder),
        "max_positions": int(config.get("max_position_embeddings") or config.get("n_positions") or 0) or None,
    }
    template = tok_config.get("chat_template")
    if not template and (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(template, str) and template:
        pre["chat_template"] = template
    for key in ("bos_token", "eos_token"):
        token = tok_config.get(key)
        token = token.get("content") if isinstance(token, dict) else token
        if isinstance(token, str):
            pre[key] = token
    return {k: v for k, v in pre.items() if v is not None}


def eos_ids(config: dict, folder: Path) -> list[int]:
    """generation_config.json's eos_token_id (an id or a list), else config.json's."""
    value = config.get("eos_token_id")
    path = folder / "generation_config.json"
    if path.is_file():
        try:
            value = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id", value)
        except (ValueError, OSError, AttributeError):
            raise SourceError(f"{path} is not valid JSON", "repair or re-save the generation config") from None
    values = value if isinstance(value, list) else [value] if value is not None else []
    return [int(v) for v in values if isinstance(v, int) and not isinstance(v, bool) and v >= 0]


def cache_length(requested: int | None, config: dict) -> int:
    limit = int(config.get("max_position_embeddings") or config.get("n_positions") or 10**6)
    return min(requested or DEFAULT_CACHE_LENGTH, limit)
