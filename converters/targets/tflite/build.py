"""TFLite / LiteRT target: litert-torch export (no TensorFlow), quantization with ai-edge-quantizer.

litert-torch exports neither a dynamic batch nor a dynamic sequence length (`dynamic_shapes` fails on BERT and on
CNNs), so the model takes one example per call (the runtime runs a batch row by row), and a text model gets
one signature per sequence-length bucket (`seq_16`, `seq_32`, ...) in one `.tflite` whose weights are stored once.
A text-generation step graph gets the prefill chunk lengths and `seq_1`, the decode step; its attention mask (a
derived dim, cache slots + the bucket) is padded with the ids, its KV cache inputs keep their fixed slots.
Everything the runtime must apply at the boundary (int64 -> int32, int8 scale and zero point, buckets, padding)
is recorded in `target_config`; `bmsdk.runtimes.litert_io` applies it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bmsdk.converters.layers import tflite_scopes
from bmsdk.converters.sources.loader import Source, example_feeds
from bmsdk.converters.speed import FloatTwin
from bmsdk.converters.target import BuildResult
from bmsdk.converters.targets.tflite.quantize import quantize
from bmsdk.errors import ConversionError, DataError, UnsupportedError
from bmsdk.runtimes.litert_io import signature_for, tensor_record
from bmsdk.sections import LiteRTConfig, Signature
from bmsdk.versions import package_version as version

MODEL_FILE = "model.tflite"
DEFAULT_BUCKETS = (16, 32, 64, 128)
# text generation: prefill chunk lengths (a prompt is run in chunks of the longest, each padded to the next bucket),
# and 1, the decode step; capped at the KV cache length
GENERATION_BUCKETS = (1, 8, 32, 128)
TEXT_PAD_VALUES = {"attention_mask": 0, "token_type_ids": 0}


def check_request(source: Source, precision: str, has_calibration: bool, options: dict) -> None:
    """Refuse, before any export work, what build() would refuse later."""
    if source.module is None:
        raise UnsupportedError(
            "the tflite target converts PyTorch models only (litert-torch)",
            "convert the checkpoint folder, .pt2, TorchScript or factory the ONNX file came from",
        )
    if precision == "int8" and not has_calibration:
        raise DataError(
            "tflite int8 (static, int8 activations) needs calibration data",
            "pass --calibration DATA (a few hundred representative inputs), or use --precision int8-dynamic",
        )
    sequence_buckets(source, options.get("seq_buckets"))


def sequence_buckets(source: Source, requested) -> list[int]:
    """Bucket lengths for a text model (none for others), capped at the longest sequence the model takes (the
    tokenizer's max length; for text generation the cache length), which is always one. Text generation always has
    1, its decode step."""
    if not any("sequence" in s.shape for s in source.inputs):
        if requested:
            raise UnsupportedError("--seq-buckets applies to text models only", "leave it out for this model")
        return []
    if isinstance(requested, str):
        try:
            requested = [int(v) for v in requested.split(",") if v.strip()]
        except ValueError:
            raise UnsupportedError(
                f"cannot read --seq-buckets '{requested}'", "write lengths comma-separated, e.g. 16,32,64,128"
            ) from None
    generation = source.preprocessing.get("kind") == "generation"
    buckets = [int(b) for b in (requested or (GENERATION_BUCKETS if generation else DEFAULT_BUCKETS))]
    if not buckets or min(buckets) < 1:
        raise UnsupportedError(
            f"bad sequence buckets {buckets}", "pass positive lengths, e.g. --seq-buckets 16,32,64,128"
        )
    longest = source.preprocessing.get("cache_length" if generation else "max_length")
    longest = int(longest or max(buckets))
    return sorted({b for b in buckets if b < longest} | {longest} | ({1} if generation else set()))


def pad_values(source: Source, buckets: list[int]) -> dict[str, int]:
    """What a bucket pads each input with (others: 0): the tokenizer's pad id for the tokens, 0 (masked) in masks."""
    return {**TEXT_PAD_VALUES, "input_ids": int(source.preprocessing.get("pad_id", 0))} if buckets else {}


def build(source: Source, folder: Path, precision: str, calibration: list[dict] | None, options: dict) -> BuildResult:
    import ai_edge_litert
    import litert_torch

    buckets = sequence_buckets(source, options.get("seq_buckets"))
    lengths = buckets or [None]
    float_model = export(source, lengths)
    pads = pad_values(source, buckets)
    float_scopes, unmatched = (
        _float_scopes(float_model, source, options.get("float_layers")) if precision != "fp32" else ([], [])
    )
    model, compression = quantize(float_model, precision, lengths, calibration, pads, float_scopes, source.inputs)
    if options.get("float_layers") and compression.quantization:
        compression.quantization.float_layers = [n for n in options["float_layers"] if n not in unmatched]
        # a layer with no op of its own, nor a parent module with ops
        compression.quantization.float_layers_not_found = unmatched or None
    path = folder / MODEL_FILE
    path.write_bytes(model)
    config = LiteRTConfig(
        batch_size=1,
        batching="litert-torch exports no dynamic batch: each signature takes one example; "
        "the runtime runs a batch row by row",
        sequence_buckets=buckets,
        pad_values=pads,
        int64_to_int32=[s.name for s in source.inputs if s.dtype == "int64"],
        layout=source.preprocessing.get("layout"),
        signatures=describe_signatures(path, source, lengths),
    )
    twin = None
    if precision != "fp32":  # what --precision fp32 would ship, to time the quantized model against
        twin = FloatTwin.new()
        (twin.folder / MODEL_FILE).write_bytes(float_model)
        signatures = describe_signatures(twin.folder / MODEL_FILE, source, lengths)
        twin.target_config = dataclasses.replace(config, signatures=signatures)
    return BuildResult(
        model_file=MODEL_FILE,
        float_twin=twin,
        compression=compression,
        target_config=config,
        toolchain={
            "litert-torch": litert_torch.__version__,
            "ai-edge-litert": version("ai-edge-litert") or getattr(ai_edge_litert, "__version__", "unknown"),
            "ai-edge-quantizer": version("ai-edge-quantizer"),
        },
    )


def _float_scopes(model: bytes, source: Source, float_layers: list[str] | None) -> tuple[list[str], list[str]]:
    """The op scopes (ai-edge-quantizer's op names) of the source layers asked to stay float, and the layers no op
    could be matched to (they stay quantized, and the manifest says so)."""
    if not float_layers:
        return [], []

    found = tflite_scopes(model, source.module, list(float_layers))
    missing = [n for n in float_layers if n not in found]
    return sorted({scope for scopes in found.values() for scope in scopes}), missing


def export(source: Source, lengths: list[int | None]) -> bytes:
    """One float signature per bucket (or one signature), batch 1, inputs named as the source names them."""
    import litert_torch
    import torch

    litert_torch.config.show_progress = False
    converter = litert_torch.Converter()
    for length in lengths:
        feeds = example_feeds(source.inputs, batch=1, sequence=length or 1)
        converter.signature(
            signature_for(length), source.module, sample_kwargs={k: torch.from_numpy(v) for k, v in feeds.items()}
        )
    try:
        return converter.convert().model_content()
    except Exception as e:  # litert-torch raises many types
        reason = str(e).strip().splitlines()[0][:400] if str(e).strip() else type(e).__name__
        raise ConversionError(
            f"litert-torch conversion failed: {reason}", "run with --debug for the converter's report"
        ) from e


def describe_signatures(path: Path, source: Source, lengths: list[int | None]) -> dict[str, Signature]:
    """Per signature: the LiteRT tensor behind each manifest input/output, its dtype, shape and quantization."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    found = set(interpreter.get_signature_list())
    signatures = {}
    for length in lengths:
        name = signature_for(length)
        if name not in found:
            raise ConversionError(
                f"the converted model lacks the signature '{name}' (has {sorted(found)})", "report this as a bmsdk bug"
            )
        runner = interpreter.get_signature_runner(name)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        missing = [s.name for s in source.inputs if s.name not in ins]
        if missing or len(outs) != len(source.outputs):
            raise ConversionError(
                f"signature '{name}' has inputs {sorted(ins)} and {len(outs)} outputs; expected {source.input_names} "
                f"and {len(source.outputs)}",
                "report this as a bmsdk bug",
            )
        out_names = sorted(outs, key=lambda n: int(n.rsplit("_", 1)[-1]) if n.rsplit("_", 1)[-1].isdigit() else n)
        signatures[name] = Signature(
            sequence=length,
            inputs={s.name: tensor_record(ins[s.name], s.name) for s in source.inputs},
            outputs={s.name: tensor_record(outs[t], t) for s, t in zip(source.outputs, out_names)},
        )
    return signatures
