"""The stateful form of a text-generation step graph (iOS18 / macOS15): the KV cache lives in CoreML states, written
in place by the model, so a decode step moves one token's keys and values instead of the whole window.

The program (per layer i, states `key_cache_i` / `value_cache_i` of [1, H, C, D], fp16: CoreML states are fp16 only):
- inputs: `input_ids` [1, T] and `position_ids` [1, T] (int32), and `attention_mask` [1, 1, T, n+T] (float, 1 where
  a new token sees a slot): its width says where the new tokens go (slots n .. n+T-1; jit.trace keeps shapes
  dynamic, not values), and it is the attention mask as is;
- outputs: the step graph's own (`logits`, `present_key_i`, `present_value_i` of the new tokens), so the caller's
  contract (bmsdk/tasks/generation.py) holds; the backends adapt the contract's feeds (runtimes/coreml_state.py).

transformers' own forward runs, with a cache whose layers write into the registered buffers that become the states.
"""

from __future__ import annotations

import numpy as np

from bmsdk.converters.sources.loader import Source
from bmsdk.errors import UnsupportedError

STATE_DEPLOYMENT_TARGETS = ("iOS18", "macOS15")
TRACE_SEQUENCE, TRACE_PAST = 4, 4  # the example step traced: 4 new tokens after 4 cached ones


def state_names(layers: int) -> list[str]:
    return [f"{kind}_cache_{i}" for i in range(layers) for kind in ("key", "value")]


def check(source: Source, frontend: str, deployment: str) -> None:
    if source.task != "text-generation" or source.preprocessing.get("kind") != "generation":
        raise UnsupportedError(
            f"--coreml-state keeps a KV cache in CoreML states: it needs a text-generation model, not {source.task}",
            "leave --coreml-state out",
        )
    if deployment not in STATE_DEPLOYMENT_TARGETS:
        raise UnsupportedError(
            f"CoreML states need iOS18 / macOS15, not {deployment}",
            "pass --minimum-deployment-target iOS18 (the default with --coreml-state), or leave --coreml-state out",
        )
    if frontend != "trace":
        raise UnsupportedError("the stateful export traces the model (torch.jit.trace)", "leave --coreml-frontend out")


IO_DTYPES = {"input_ids": "int32", "position_ids": "int32", "attention_mask": "float32"}


def flexible_dims(source: Source) -> dict[str, list[int]]:
    """The program's dims: new tokens 1..C, and the slots they see (cached + new) 1..C."""
    window = int(source.preprocessing["cache_length"])
    return {"sequence": [1, window], "end": [1, window]}


def states(source: Source) -> dict[str, list[int]]:
    """State name -> shape, for the manifest and the backends."""
    pre = source.preprocessing
    shape = [1, int(pre["kv_heads"]), int(pre["cache_length"]), int(pre["head_dim"])]
    return {name: list(shape) for name in state_names(int(pre["layers"]))}


def convert(ct, source: Source, common: dict):
    """The stateful ML program of the source's causal LM (`common`: ct.convert's other arguments)."""
    import torch

    pre = source.preprocessing
    module = stateful_module(_causal_lm(source), int(pre["layers"]), states(source))
    dims = flexible_dims(source)
    seq = ct.RangeDim(*dims["sequence"], default=TRACE_SEQUENCE, symbol="sequence")
    end = ct.RangeDim(*dims["end"], default=TRACE_SEQUENCE + TRACE_PAST, symbol="end")
    inputs = [
        ct.TensorType(name="input_ids", shape=(1, seq), dtype=np.int32),
        ct.TensorType(name="position_ids", shape=(1, seq), dtype=np.int32),
        ct.TensorType(name="attention_mask", shape=(1, 1, seq, end), dtype=np.float32),
    ]
    state_types = [
        ct.StateType(wrapped_type=ct.TensorType(shape=tuple(shape), dtype=np.float16), name=name)
        for name, shape in states(source).items()
    ]
    with torch.inference_mode(False), torch.no_grad():
        traced = torch.jit.trace(module, _example(TRACE_SEQUENCE, TRACE_PAST), check_trace=False, strict=False)
    return ct.convert(traced, inputs=inputs, states=state_types, **common)


def _example(width: int, past: int):
    import torch

    mask = torch.ones(1, 1, width, past + width)
    mask[0, 0, :, past:] = torch.ones(width, width).tril()
    positions = torch.arange(past, past + width)[None]
    return torch.full((1, width), 3, dtype=torch.long), positions, mask


def _causal_lm(source: Source):
    """The transformers *ForCausalLM inside the source's step module."""
    from transformers import PreTrainedModel

    for module in source.module.modules():
        if isinstance(module, PreTrainedModel) and module.get_output_embeddings() is not None:
            return module
    raise UnsupportedError(
        "--coreml-state needs a Hugging Face causal LM checkpoint (its transformers model)",
        "convert the checkpoint folder, or leave --coreml-state out",
    )


def stateful_module(model, layers: int, shapes: dict[str, list[int]]):
    """forward(input_ids, position_ids, attention_mask) -> (logits, present_key_0, present_value_0, ...), the cache in
    buffers named as the states (coremltools turns in-place buffer writes into state updates)."""
    import inspect

    import torch
    from transformers.cache_utils import Cache, CacheLayerMixin

    argument = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    class StateLayer(CacheLayerMixin):
        """One layer's cache: writes the new keys/values at slots end-T .. end-1, returns slots 0 .. end-1."""

        is_sliding = False

        def __init__(self, owner, index: int):
            super().__init__()
            self.owner, self.index, self.is_initialized = owner, index, True

        def lazy_initialization(self, key_states, value_states) -> None:
            pass

        def update(self, key_states, value_states, *args, **kwargs):
            owner, end = self.owner, self.owner.end
            begin = end - key_states.shape[-2]
            keys, values = owner.caches(self.index)
            keys[:, :, begin:end] = key_states
            values[:, :, begin:end] = value_states
            owner.presents.extend((key_states, value_states))
            return keys[:, :, :end], values[:, :, :end]

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.owner.end, 0

        def get_seq_length(self) -> int:
            return self.owner.end - self.owner.width

        def get_max_length(self) -> int:
            return self.owner.window

    class StatefulStep(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            for name, shape in shapes.items():
                self.register_buffer(name, torch.zeros(shape))
            self.window = next(iter(shapes.values()))[2]

        def caches(self, i: int):
            return getattr(self, f"key_cache_{i}"), getattr(self, f"value_cache_{i}")

        def forward(self, input_ids, position_ids, attention_mask):
            # sizes, not values, carry the write position: jit.trace keeps them dynamic
            self.end, self.width, self.presents = attention_mask.shape[-1], input_ids.shape[-1], []
            cache = Cache(layers=[StateLayer(self, i) for i in range(layers)])
            out = self.inner(
                input_ids=input_ids,
                position_ids=position_ids,
                attention_mask=attention_mask > 0.5,  # a 4D mask is used as is; bool: CoreML masks with -3e4 in fp16
                use_cache=True,
                **{argument: cache},
                return_dict=True,
            )
            return (out.logits, *self.presents)

    return StatefulStep(model).eval()
