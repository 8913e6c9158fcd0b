"""Static int8 that holds the int8 tolerance where it can: op groups whose int8 breaks it stay float.

Per-tensor int8 activations are too coarse for some models (a fine-tuned MiniLM flipped 16% of its decisions
with every matmul in int8: its FFN outputs carry outlier channels). So after calibrating, bmsdk checks the
quantized model against the float one on held-out calibration rows, in every signature. If fewer than `SHARE` of
them meet the precision's cosine tolerance, it ranks the op groups by how much their int8 alone costs, then adds
them back to int8 from the least harmful, keeping each one only if the check still holds.

A group is the ops LiteRT scoped to one module path, in every signature. LiteRT scopes an op by the tensor it
writes, which is not always its own module's: the query/key/value projections of a BERT layer write tensors named
after the LayerNorm folded into them (the previous layer's), and a conv fused with its ReLU is named after the ReLU.
The manifest lists the float groups by those names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bmsdk.converters.search import fallback_search, trial
from bmsdk.errors import ConversionError
from bmsdk.runtimes.litert_io import from_signature, row_lengths, tensor_record, to_signature
from bmsdk.sections import Faithfulness, ToleranceSearch

SHARE = 0.95  # of held-out rows that must meet the cosine tolerance
WEIGHTED_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D_TRANSPOSE")


def op_groups(model: bytes, ops: tuple[str, ...] = WEIGHTED_OPS) -> dict[str, list[str]]:
    """Group name -> the scope prefixes (module paths) of its ops in `ops`, one per signature where an op is named
    after a signature's output. A path nested in another group's path belongs to that group."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as tfl

    flat = tfl.read_model(bytearray(model))
    signatures = sorted((s.signatureKey.decode() for s in flat.signatureDefs), key=len, reverse=True)
    paths = set()
    for subgraph in flat.subgraphs:
        for op in subgraph.operators:
            name = tfl.TFL_OP_CODE_TO_NAME.get(flat.operatorCodes[op.opcodeIndex].builtinCode)
            if name is not None and str(getattr(name, "value", name)) in ops:
                paths.add(tfl.get_op_scope(op, subgraph.tensors).split(";")[0])
    groups: dict[str, list[str]] = {}
    for path in sorted(p for p in paths if not any(p.startswith(q + "/") for q in paths)):
        key = next((path[len(s) + 1 :] for s in signatures if path.startswith(s + "_")), path)
        groups.setdefault(group_name(key), []).append(path)
    return groups


def group_regex(paths: list[str]) -> str:
    """Every op scoped to one of `paths` or inside it."""
    return "^(?:" + "|".join(re.escape(p) for p in paths) + ")[/;]"


def group_name(path: str) -> str:
    """A scope path shortened to attribute names: "pkg.BertLayer_5/pkg.BertOutput_output" -> "5.output" (ModuleList
    names and bmsdk's wrappers dropped); a scope that is no module path (a signature output's name) as it is."""
    if "." not in path:
        return path
    parts = [p[p.rfind(".") + 1 :].partition("_")[2] for p in path.split("/")]
    return ".".join(p for p in parts if p and p != "inner")


def run_rows(model: bytes, rows: dict[str, list[dict]]) -> list[np.ndarray]:
    """Every row through its signature: one flat vector of all outputs (sorted by name) per row, sequence outputs
    cut back to the row's tokens as the runtime cuts them."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model, num_threads=1)
    result = []
    for signature, feeds in rows.items():
        runner = interpreter.get_signature_runner(signature)
        ins, outs = runner.get_input_details(), runner.get_output_details()
        for feed in feeds:
            got = runner(**{k: to_signature(v, tensor_record(ins[k], k)) for k, v in feed.items()})
            values = [from_signature(got[n], tensor_record(outs[n], n), "float32") for n in sorted(got)]
            if "input_ids" in feed:
                padded, real = feed["input_ids"].shape[1], int(row_lengths(feed)[0])
                values = [v[:, :real] if v.ndim > 1 and v.shape[1] == padded else v for v in values]
            result.append(np.concatenate([v.ravel() for v in values]))
    return result


def faithfulness(
    reference: list[np.ndarray], quantized: bytes, rows: dict[str, list[dict]], min_cosine: float
) -> Faithfulness:
    """How closely `quantized` follows the float model's outputs `reference` on `rows`: per-row cosine."""
    cos = np.array(
        [
            float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
            for a, b in zip(run_rows(quantized, rows), reference)
        ]
    )
    return Faithfulness(
        p5_cosine=float(np.percentile(cos, 5)),
        min_cosine=float(cos.min()),
        share_within=float(np.mean(cos >= min_cosine)),
        rows=int(len(cos)),
    )


def hold_tolerance(
    build: Callable[[list[str]], bytes],
    float_model: bytes,
    groups: dict[str, list[str]],
    rows: dict[str, list[dict]],
    min_cosine: float,
    rows_are: str,
    validated: dict[str, list[dict]] | None = None,
) -> tuple[bytes, ToleranceSearch]:
    """`build(float_paths)` quantizes all but the ops under `float_paths`. A model that keeps `SHARE` of `rows`, and
    every one of the `validated` rows (those validation will check), within `min_cosine` if one is found (greedy, so
    not always with the fewest float groups), and what the search found, for the manifest: the float-fallback
    search of search.py over op groups, returning them to int8."""
    reference = run_rows(float_model, rows)
    must = (run_rows(float_model, validated), validated) if validated else None
    check = GroupCheck(build, groups, reference, rows, min_cosine, must)
    first = trial(check, [])
    criterion = f"{SHARE:.0%} of {first.score.rows or 0} {rows_are} within cosine {min_cosine} of the float model"
    if validated:
        criterion += ", and every row validation checks"
    if first.ok:
        return first.outcome, ToleranceSearch(criterion=criterion, all_int8=first.score, met=True, float_groups=[])
    result = fallback_search(list(groups), check.ranking, check, direction="return", first=first)
    model, stats = result.final.outcome, result.final.score
    if model is None:
        raise ConversionError(
            f"static int8 failed even with every op group float: {stats.error}", "use --precision int8-dynamic"
        )
    final = faithfulness(reference, model, rows, min_cosine)
    return model, ToleranceSearch(
        criterion=criterion,
        all_int8=first.score,
        met=result.final.ok,
        float_groups=result.float_units,
        int8_groups=len(groups) - len(result.float_units),
        groups=len(groups),
        result=final,
    )


@dataclass
class GroupCheck:
    """The search's `evaluate` over op groups: quantize all but `float_groups`, and check the rows' cosine."""

    build: Callable[[list[str]], bytes]
    groups: dict[str, list[str]]
    reference: list[np.ndarray]
    rows: dict[str, list[dict]]
    min_cosine: float
    must: tuple[list[np.ndarray], dict[str, list[dict]]] | None = None  # (reference, rows) that must all hold

    def __call__(self, float_groups: list[str]) -> tuple[bool, Faithfulness, bytes | None]:
        try:
            model = self.build([p for g in float_groups for p in self.groups[g]])
        except ConversionError as e:  # a mix the quantizer cannot make counts as not holding
            return False, Faithfulness(share_within=0.0, error=e.problem), None
        stats = faithfulness(self.reference, model, self.rows, self.min_cosine)
        held = stats.share_within >= SHARE
        if held and self.must is not None:
            must_reference, must_rows = self.must
            held = faithfulness(must_reference, model, must_rows, self.min_cosine).share_within == 1.0
        return held, stats, model

    def ranking(self) -> list[str]:
        """Groups from most to least harmful in int8: by the share of rows that hold with the group alone in int8."""
        alone = {g: self([h for h in self.groups if h != g])[1].share_within for g in self.groups}
        return sorted(self.groups, key=lambda g: -alone[g])[::-1]  # reversed: "return" walks it from the end
