"""TFLite precisions with ai-edge-quantizer: fp16 weights, dynamic int8, and static int8 calibrated per signature."""

from __future__ import annotations

import numpy as np

from bmsdk.errors import ConversionError, DataError
from bmsdk.runtimes.litert_io import pad_to, row_lengths, signature_for

CALIBRATION_ROWS = 256  # per signature
TEXT_STATIC_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")  # static int8 scope for text models; the rest stays float

SCHEMES = {
    "fp16": {"scheme": "fp16-weights", "tool": "ai-edge-quantizer FLOAT_CASTING",
             "weights": "float16", "activations": "float32 (weights are cast back to float32 at load)"},
    "int8-dynamic": {"scheme": "dynamic_wi8_afp32", "tool": "ai-edge-quantizer",
                     "weights": "int8 per-channel", "activations": "float32, quantized to int8 at run time per op"},
    "int8": {"scheme": "static_wi8_ai8", "tool": "ai-edge-quantizer",
             "weights": "int8 per-channel", "activations": "int8 per-tensor, ranges from calibration (min/max)"},
}


def quantize(model: bytes, precision: str, lengths: list[int | None], calibration: list[dict] | None,
             pad_values: dict, float_scopes: list[str] | None = None) -> tuple[bytes, dict]:
    """The model in `precision`, and what was done for the manifest's `compression`; ops named in `float_scopes` stay float."""
    if precision == "fp32":
        return model, {}
    from ai_edge_quantizer import quantizer, recipe
    from ai_edge_quantizer.algorithm_manager import AlgorithmName
    from ai_edge_quantizer.qtyping import TFLOperationName

    from .layers import exact_regex

    text = lengths != [None]
    q = quantizer.Quantizer(bytearray(model))
    if precision == "fp16":
        q.add_weight_only_config(regex=".*", operation_name=TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                 algorithm_key=AlgorithmName.FLOAT_CASTING)
    elif precision == "int8-dynamic":
        q.load_quantization_recipe(recipe.dynamic_wi8_afp32())
    elif text:  # full-graph int8 (softmax, layer norm, the additive mask) collapsed a BERT classifier's outputs
        for op in TEXT_STATIC_OPS:
            q.add_static_config(regex=".*", operation_name=TFLOperationName(op), activation_num_bits=8, weight_num_bits=8)
    else:
        q.load_quantization_recipe(recipe.static_wi8_ai8())
    for scope in float_scopes or []:  # later recipe entries win over the scheme's ".*"
        q.update_quantization_recipe(regex=exact_regex(scope), operation_name=TFLOperationName.ALL_SUPPORTED,
                                     algorithm_key=AlgorithmName.NO_QUANTIZE)
    details = dict(SCHEMES[precision])
    if precision == "int8":
        details["ops"] = list(TEXT_STATIC_OPS) if text else "all supported"
    if float_scopes:
        details["float_ops"] = len(float_scopes)
    qsv = None
    if q.need_calibration:  # a property
        if not calibration:
            raise DataError(f"tflite {precision} needs calibration data", "pass --calibration DATA")
        sets = calibration_sets(calibration, lengths, pad_values)
        try:
            qsv = q.calibrate(sets, num_threads=1)
        except Exception as e:
            raise ConversionError(f"calibration failed: {str(e).strip().splitlines()[0][:300]}", "check the calibration data") from e
        details["calibration"] = {"method": "minmax", "examples_per_signature": {k: len(v) for k, v in sets.items()}}
        details["io"] = "int8 where the quantizer put it; scale and zero point per tensor in target_config.signatures"
    try:
        result = q.quantize(qsv, enable_progress_bar=False, enable_progress_report=False)
    except Exception as e:
        raise ConversionError(f"ai-edge-quantizer failed ({precision}): {str(e).strip().splitlines()[0][:300]}",
                              "try another precision, or run with --debug") from e
    return bytes(result.quantized_model), {"quantization": details}


def calibration_sets(calibration: list[dict], lengths: list[int | None], pad_values: dict,
                     limit: int = CALIBRATION_ROWS) -> dict[str, list[dict]]:
    """Calibration rows for every signature, one example each, in the float model's dtypes (int64 -> int32).

    A text row calibrates each bucket it fits (padded as the runtime pads it); a bucket no row fits gets rows cut
    to its length, so every signature has activation ranges.
    """
    rows = [({k: v[i:i + 1] for k, v in batch.items()}) for batch in calibration for i in range(len(next(iter(batch.values()))))]
    sets: dict[str, list[dict]] = {}
    for length in lengths:
        if length is None:
            chosen = rows
        else:
            chosen = [r for r in rows if row_lengths(r)[0] <= length] or rows
            chosen = [{k: pad_to(v, length, pad_values.get(k, 0)) for k, v in r.items()} for r in chosen]
        sets[signature_for(length)] = [{k: v.astype(np.int32) if v.dtype == np.int64 else v for k, v in r.items()}
                                       for r in chosen[:limit]]
    return sets
