"""TFLite precisions with ai-edge-quantizer: fp16 weights, dynamic int8, and static int8 calibrated per signature
and checked against the int8 tolerance on held-out rows (`tflite_mixed` leaves float the op groups that break it)."""

from __future__ import annotations

import contextlib
import io

import numpy as np

from bmsdk.compare import INT8
from bmsdk.converters.layers import exact_regex
from bmsdk.converters.targets.tflite.mixed import WEIGHTED_OPS, group_regex, hold_tolerance, op_groups
from bmsdk.errors import ConversionError, DataError
from bmsdk.manifest import TensorSpec
from bmsdk.runtimes.litert_io import pad_feeds, row_lengths, signature_for
from bmsdk.sections import Calibration, Compression, Quantization

CALIBRATION_ROWS = 256  # per signature
TEXT_STATIC_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")  # static int8 scope for text models; the rest stays float
HOLD_OUT_EVERY = 4  # every 4th calibration row checks the quantized model instead of calibrating it
# validation's samples are the first calibration rows (converters/feeds.py, convert's default num_samples): the
# tolerance search holds every one of them too, so that a search that says `met` passes validation
VALIDATED_ROWS = 8

SCHEMES = {  # keyword arguments of the manifest's Quantization
    "fp16": dict(
        scheme="fp16-weights",
        tool="ai-edge-quantizer FLOAT_CASTING",
        weights="float16",
        activations="float32 (weights are cast back to float32 at load)",
    ),
    "int8-dynamic": dict(
        scheme="dynamic_wi8_afp32",
        tool="ai-edge-quantizer",
        weights="int8 per-channel",
        activations="float32, quantized to int8 at run time per op",
    ),
    "int8": dict(
        scheme="static_wi8_ai8",
        tool="ai-edge-quantizer",
        weights="int8 per-channel",
        activations="int8 per-tensor, ranges from calibration (min/max)",
    ),
}


def quantize(
    model: bytes,
    precision: str,
    lengths: list[int | None],
    calibration: list[dict] | None,
    pad_values: dict,
    float_scopes: list[str] | None = None,
    specs: list[TensorSpec] | None = None,
) -> tuple[bytes, Compression]:
    """The model in `precision`, and what was done for the manifest's `compression`; ops named in `float_scopes` stay
    float. `specs` (the source's inputs) say which axes a bucket pads."""
    if precision == "fp32":
        return model, Compression()
    if precision == "int8":
        return quantize_static(model, lengths, calibration, pad_values, float_scopes or [], specs=specs)
    from ai_edge_quantizer import recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    q = _quantizer(model)
    if precision == "fp16":
        q.add_weight_only_config(
            regex=".*",
            operation_name=TFLOperationName.ALL_SUPPORTED,
            num_bits=16,
            algorithm_key=AlgorithmName.FLOAT_CASTING,
        )
    else:
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    _keep_float(q, [exact_regex(s) for s in float_scopes or []])
    details = Quantization(**SCHEMES[precision], float_ops=len(float_scopes) if float_scopes else None)
    return _run(q, None, precision), Compression(quantization=details)


def quantize_static(
    model: bytes,
    lengths: list[int | None],
    calibration: list[dict] | None,
    pad_values: dict,
    float_scopes: list[str],
    min_cosine: float | None = None,
    specs: list[TensorSpec] | None = None,
) -> tuple[bytes, Compression]:
    """Static int8 calibrated on 3/4 of the calibration rows; the other 1/4, run in every signature it fits, checks
    it against `min_cosine` (the int8 tolerance unless given), leaving float the op groups that break it
    (`tflite_mixed`)."""

    if not calibration:
        raise DataError("tflite int8 needs calibration data", "pass --calibration DATA")
    text = lengths != [None]
    rows = _rows(calibration)
    if len(rows) >= 2 * HOLD_OUT_EVERY:
        fit, held_out, checked_on = (
            [r for i, r in enumerate(rows) if i % HOLD_OUT_EVERY],
            rows[::HOLD_OUT_EVERY],
            "held-out calibration rows",
        )
    else:  # too few to hold any out
        fit, held_out, checked_on = rows, rows, "calibration rows (too few to hold any out)"
    forced = [exact_regex(s) for s in float_scopes]
    sets = calibration_sets(fit, lengths, pad_values, specs=specs)
    try:
        with _no_progress_bars():
            qsv = _static_quantizer(model, text, forced).calibrate(sets, num_threads=1)
    except Exception as e:
        raise ConversionError(
            f"calibration failed: {str(e).strip().splitlines()[0][:300]}", "check the calibration data"
        ) from e

    def build(float_paths: list[str]) -> bytes:
        return _run(
            _static_quantizer(model, text, forced + ([group_regex(float_paths)] if float_paths else [])), qsv, "int8"
        )

    groups = op_groups(model, TEXT_STATIC_OPS if text else WEIGHTED_OPS)
    if min_cosine is None:
        min_cosine = INT8.min_cosine
    quantized, search = hold_tolerance(
        build,
        model,
        groups,
        calibration_sets(held_out, lengths, pad_values, specs=specs),
        min_cosine,
        checked_on,
        validated=calibration_sets(rows[:VALIDATED_ROWS], lengths, pad_values, specs=specs),
    )
    ops = (list(TEXT_STATIC_OPS) + ["EMBEDDING_LOOKUP (weights only)"]) if text else "all supported"
    details = Quantization(
        **SCHEMES["int8"],
        ops=ops,
        float_ops=len(float_scopes) if float_scopes else None,
        calibration=Calibration(method="minmax", examples_per_signature={k: len(v) for k, v in sets.items()}),
        io="float32 (text: the source's dtypes); the graph quantizes inputs and dequantizes outputs itself",
        tolerance_search=search,
    )
    return quantized, Compression(quantization=details)


def _quantizer(model: bytes):
    from ai_edge_quantizer import quantizer

    return quantizer.Quantizer(bytearray(model))


def _static_quantizer(model: bytes, text: bool, float_regexes: list[str]):
    from ai_edge_quantizer import recipe
    from ai_edge_quantizer.qtyping import TFLOperationName

    q = _quantizer(model)
    if text:  # full-graph int8 (softmax, layer norm, the additive mask) collapsed a BERT classifier's outputs
        for op in TEXT_STATIC_OPS:
            q.add_static_config(
                regex=".*", operation_name=TFLOperationName(op), activation_num_bits=8, weight_num_bits=8
            )
        q.add_weight_only_config(regex=".*", operation_name=TFLOperationName.EMBEDDING_LOOKUP, num_bits=8)
    else:
        q.load_quantization_recipe(recipe.static_wi8_ai8())
        _float_io(q)
    _keep_float(q, float_regexes)
    return q


def _float_io(q) -> None:
    """Graph inputs and outputs stay float32: the graph's own QUANTIZE/DEQUANTIZE ops convert them, in C++ (about
    10 µs less per call than numpy doing it for a 28x28 image, and callers pass what the source takes)."""
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    for op in (TFLOperationName.INPUT, TFLOperationName.OUTPUT):
        q.update_quantization_recipe(regex=".*", operation_name=op, algorithm_key=AlgorithmName.NO_QUANTIZE)


def _keep_float(q, regexes: list[str]) -> None:
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    for regex in regexes:  # later recipe entries win over the scheme's ".*"
        q.update_quantization_recipe(
            regex=regex, operation_name=TFLOperationName.ALL_SUPPORTED, algorithm_key=AlgorithmName.NO_QUANTIZE
        )


def _no_progress_bars():
    """ai-edge-quantizer's calibration and transformation bars take no off switch; they write to stderr."""
    return contextlib.redirect_stderr(io.StringIO())


def _run(q, qsv, precision: str) -> bytes:
    try:
        with _no_progress_bars():
            result = q.quantize(qsv, enable_progress_bar=False, enable_progress_report=False)
    except Exception as e:
        raise ConversionError(
            f"ai-edge-quantizer failed ({precision}): {str(e).strip().splitlines()[0][:300]}",
            "try another precision, or run with --debug",
        ) from e
    return bytes(result.quantized_model)


def _rows(calibration: list[dict]) -> list[dict]:
    return [
        {k: v[i : i + 1] for k, v in batch.items()}
        for batch in calibration
        for i in range(len(next(iter(batch.values()))))
    ]


def _int32(row: dict) -> dict:
    return {k: v.astype(np.int32) if v.dtype == np.int64 else v for k, v in row.items()}


def calibration_sets(
    calibration: list[dict],
    lengths: list[int | None],
    pad_values: dict,
    limit: int = CALIBRATION_ROWS,
    specs: list[TensorSpec] | None = None,
) -> dict[str, list[dict]]:
    """Calibration rows for every signature, one example each, in the float model's dtypes (int64 -> int32).

    A text row calibrates each bucket it fits (padded as the runtime pads it); a bucket no row fits gets rows cut
    to its length, so every signature has activation ranges.
    """
    rows = _rows(calibration)
    sets: dict[str, list[dict]] = {}
    for length in lengths:
        if length is None:
            chosen = rows
        else:
            chosen = [r for r in rows if row_lengths(r)[0] <= length] or rows
            chosen = [pad_feeds(r, length, pad_values, specs) for r in chosen]
        sets[signature_for(length)] = [_int32(r) for r in chosen[:limit]]
    return sets
