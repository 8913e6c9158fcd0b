"""The typed report sections of the manifest: `validation`, `compression` and the target's `target_config`.

Each section is a dataclass. `Cls.from_dict(d, where)` builds one from its JSON object and checks every field
against the class's type hints (unknown fields are refused; `where` names the field in errors); `to_dict()`
writes it back, leaving out fields that are None. The JSON is that of schema v1. Stdlib only.
"""

from __future__ import annotations

import dataclasses
import functools
import reprlib
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from .errors import ManifestError
from .plugins import entry_points

REMAKE = "re-create the artifact with `bmsdk convert`"

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxdict = 6


def show(value: Any) -> str:
    """A value as it may appear in an error message: repr, cut to a readable length."""
    return _repr.repr(value)


# --- the generic part: a dataclass from JSON by its type hints, and back ----------------------------------------


class Section:
    """Base of the section classes: from_dict / to_dict over the dataclass fields."""

    @classmethod
    def from_dict(cls, d: Any, where: str | None = None):
        return _load(cls, d, where or cls.__name__)

    def to_dict(self) -> dict:
        return to_plain(self)


def to_plain(value: Any) -> Any:
    """Sections (nested too) as JSON values; None fields of a section are left out."""
    if dataclasses.is_dataclass(value):
        return {f.name: to_plain(v) for f in dataclasses.fields(value) if (v := getattr(value, f.name)) is not None}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


def _error(where: str, problem: str) -> ManifestError:
    where = where if len(where) <= 120 else where[:117] + "..."
    return ManifestError(f"bmsdk.json field '{where}' {problem}", REMAKE)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _load(cls: type, d: Any, where: str):
    if not isinstance(d, dict):
        raise _error(where, f"must be an object, got {show(d)}")
    hints = _hints(cls)
    unknown = sorted(str(k) for k in d if k not in hints)
    if unknown:
        raise _error(where, f"has unknown fields {show(unknown)}")
    for f in dataclasses.fields(cls):
        if f.name not in d and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _error(where, f"is missing '{f.name}'")
    return cls(**{k: _value(hints[k], v, f"{where}.{k}") for k, v in d.items()})


def _arms(tp: Any) -> tuple:
    return typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)


def _fits(tp: Any, value: Any) -> bool:
    """Whether `value` is of the JSON kind `tp` asks for (its items are checked after)."""
    origin = typing.get_origin(tp) or tp
    if tp is Any:
        return True
    if tp is type(None):
        return value is None
    if dataclasses.is_dataclass(tp) or origin is dict:
        return isinstance(value, dict)
    if origin is list:
        return isinstance(value, list)
    if tp in (int, float):
        return isinstance(value, (int, float) if tp is float else int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _describe(tp: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
    kinds = [names.get(a) or ("a list" if typing.get_origin(a) is list else "an object") for a in _arms(tp)]
    return " or ".join(kinds)


def _value(tp: Any, value: Any, where: str) -> Any:
    arm = next((a for a in _arms(tp) if _fits(a, value)), None)
    if arm is None:
        raise _error(where, f"must be {_describe(tp)}, got {show(value)}")
    if dataclasses.is_dataclass(arm):
        return _load(arm, value, where)
    origin, args = typing.get_origin(arm), typing.get_args(arm)
    if origin is list:
        return [_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not all(isinstance(k, str) for k in value):
            raise _error(where, "must have string keys")
        return {k: _value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return float(value) if arm is float else value


# --- validation -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Tolerance(Section):
    """What a precision must meet on the samples (and, for CoreML weight compression, on --eval data)."""

    max_rel_error: float | None = None  # max|artifact - source| / max|source|
    min_cosine: float  # the smallest per-sample cosine (a head of at most 16 classes: the batch's cosine)
    min_top1_agreement: float | None = None  # with the source, on --eval data


@dataclass(kw_only=True)
class SampleCheck(Section):
    """The artifact against the source's outputs on samples.npz. The error statistics are absent when an output
    is missing, misshapen or not finite (`reason` says which)."""

    n: int
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    min_cosine: float | None = None
    top1_agreement: float | None = None  # classifiers (2-D outputs) only
    tolerance: Tolerance
    passed: bool
    reason: str | None = None


@dataclass(kw_only=True)
class Scores(Section):
    """A classifier's task metric on labelled data."""

    accuracy: float
    macro_f1: float
    n: int


@dataclass(kw_only=True)
class Delta(Section):
    """Artifact minus source."""

    accuracy: float
    macro_f1: float


@dataclass(kw_only=True)
class EvalReport(Section):
    """The task metric on --eval data: of the artifact, of the source, and how much the two agree."""

    data: str
    n: int
    artifact: Scores | None = None  # classifiers
    top1_agreement: float | None = None  # classifiers, with the source
    mean_cosine: float | None = None  # feature extractors, with the source
    min_cosine: float | None = None
    source: Scores | None = None
    delta: Delta | None = None
    perplexity: float | None = None  # text generation; top1_agreement is then next-token agreement
    source_perplexity: float | None = None
    perplexity_change: float | None = None  # artifact / source - 1
    perplexity_budget: float | None = None  # the largest change this precision may have
    tokens: int | None = None  # tokens scored
    entity_f1: float | None = None  # token classification (seqeval's entity-level scores); top1_agreement is then
    entity_precision: float | None = None  # token-level argmax agreement
    entity_recall: float | None = None
    entities: int | None = None  # gold entities in the data
    source_entity_f1: float | None = None
    exact_match: float | None = None  # question answering (SQuAD's); top1_agreement is then the share of questions
    answer_f1: float | None = None  # given the same answer span as the source
    source_exact_match: float | None = None
    source_answer_f1: float | None = None
    mean_iou: float | None = None  # semantic segmentation (evaluate's mean_iou); top1_agreement is then the share of
    mean_accuracy: float | None = None  # pixels given the same label as the source
    pixel_accuracy: float | None = None
    pixels: int | None = None  # labelled pixels scored (ignore index left out)
    source_mean_iou: float | None = None
    source_pixel_accuracy: float | None = None
    map_50: float | None = None  # object detection (pycocotools COCOeval); top1_agreement is then the F1 of the
    map_50_95: float | None = None  # artifact's confident detections matched to the source's
    objects: int | None = None  # labelled boxes scored
    source_map_50: float | None = None
    source_map_50_95: float | None = None


@dataclass(kw_only=True)
class GreedyCheck(Section):
    """Text generation: greedy tokens from the artifact against the source's, on the sample prompts."""

    prompts: int
    new_tokens: int
    identical: int  # prompts whose tokens were all equal
    tokens_matched: float  # share of tokens equal up to the first divergence, over all prompts
    required: bool  # whether this precision must give identical tokens
    passed: bool


@dataclass(kw_only=True)
class BundleCheck(Section):
    """A bundle the artifact carries for another engine (tflite `--litertlm`: LiteRT-LM), checked on that engine:
    greedy text from the sample prompts against the source's."""

    file: str
    backend: str | None = None
    validated: bool
    prompts: int
    identical: int | None = None  # prompts whose greedy text was equal (or stopped early at a stop sequence)
    required: bool  # whether this precision must give identical text
    passed: bool | None = None
    reason: str | None = None  # why it was not checked
    first_difference: str | None = None


@dataclass(kw_only=True)
class SpeedCheck(Section):
    """A quantized artifact timed against its float twin (the model it was made from) at batch 1 on one thread, on
    the artifact's runtime: `accelerated` is false when it is slower by more than timing noise."""

    measured: bool
    backend: str | None = None
    artifact_ms: float | None = None
    float_ms: float | None = None
    speedup: float | None = None  # float_ms / artifact_ms
    accelerated: bool | None = None
    reason: str | None = None  # why it was not timed


@dataclass(kw_only=True)
class Validation(Section):
    """The artifact checked on its own runtime (or a stand-in); `validated: false` says why a check did not run."""

    validated: bool = False
    backend: str | None = None
    device_real: bool | None = None
    samples: SampleCheck | None = None
    passed: bool | None = None
    reason: str | None = None
    stand_in: bool | None = None
    note: str | None = None
    eval: EvalReport | None = None
    greedy: GreedyCheck | None = None  # text generation
    bundle: BundleCheck | None = None  # tflite --litertlm
    speed: SpeedCheck | None = None  # quantized onnx / tflite: against the float twin


# --- compression ------------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Calibration(Section):
    method: str
    batches: int | None = None  # onnx, tensorrt
    examples: int | None = None  # onnx, tensorrt
    provider: str | None = None  # tensorrt
    examples_per_signature: dict[str, int] | None = None  # tflite


@dataclass(kw_only=True)
class Faithfulness(Section):
    """A quantized TFLite model against the float one on held-out rows."""

    p5_cosine: float | None = None
    min_cosine: float | None = None
    share_within: float
    rows: int | None = None
    error: str | None = None  # the quantizer could not make this mix


@dataclass(kw_only=True)
class ToleranceSearch(Section):
    """TFLite static int8: which op groups had to stay float to hold the int8 tolerance."""

    criterion: str
    all_int8: Faithfulness
    met: bool
    float_groups: list[str]
    int8_groups: int | None = None
    groups: int | None = None
    result: Faithfulness | None = None


@dataclass(kw_only=True)
class WeightCompression(Section):
    """CoreML: how the weights of the fp16 program were compressed."""

    method: str
    dtype: str | None = None  # linear
    granularity: str | None = None  # linear, palettization
    block_size: int | None = None  # linear per_block
    nbits: int | None = None  # palettization
    target_sparsity: float | None = None  # pruning
    weight_threshold: int
    compressed_weights: int


@dataclass(kw_only=True)
class Quantization(Section):
    """What a target's precision did; each target records the fields that apply to it."""

    scheme: str
    tool: str | None = None  # tflite
    format: str | None = None  # tensorrt Q/DQ
    compute_precision: str | None = None  # coreml
    weights: str | WeightCompression | None = None  # a description; for coreml what was done
    activations: str | None = None
    io_types: str | None = None
    other_ops: str | None = None  # tensorrt Q/DQ
    ops: list[str] | str | None = None  # static int8: the op types quantized
    calibration: Calibration | None = None
    io: str | None = None  # tflite static int8
    tolerance_search: ToleranceSearch | None = None  # tflite static int8
    float_ops: int | None = None  # tflite: ops left float as asked
    float_nodes: list[str] | None = None  # onnx, tensorrt: compute nodes still in float
    excluded_op_types: list[str] | None = None  # tensorrt
    kept_in_fp16: list[str] | None = None  # tensorrt: transformer FFN projections
    float_layers: list[str] | None = None  # source layers kept in float as asked
    float_layers_not_found: list[str] | None = None  # tflite: asked for, but no op matched


@dataclass(kw_only=True)
class BeforeAfter(Section):
    before: int
    after: int


@dataclass(kw_only=True)
class LayerCounts(Section):
    before: list[int]
    after: list[int]


@dataclass(kw_only=True)
class Recovery(Section):
    """Fine-tuning with distillation after pruning."""

    steps: int
    optimizer: str
    seed: int
    loss: str
    examples: int
    loss_first: float
    loss_last: float
    seconds: float


@dataclass(kw_only=True)
class PruneMetrics(Section):
    """Accuracy on --eval data of the unpruned source, the pruned model, and the recovered one."""

    source: Scores | None = None
    pruned: Scores | None = None
    recovered: Scores | None = None

    def stages(self) -> list[tuple[str, Scores]]:
        return [(f.name, s) for f in dataclasses.fields(self) if (s := getattr(self, f.name)) is not None]


@dataclass(kw_only=True)
class PruneTrial(Section):
    ratio: float
    drop_pt: float
    params: int


@dataclass(kw_only=True)
class PruneSearch(Section):
    """--prune auto: the ratios tried and the one chosen."""

    tried: list[PruneTrial]
    allowed_drop_pt: float
    chosen: float


@dataclass(kw_only=True)
class Smoothing(Section):
    """SmoothQuant-style scale migration before int8 (converters/smooth.py)."""

    alpha: float
    layers: int  # linear layers whose inputs were divided per channel
    examples: int  # calibration examples their ranges came from
    scales: int | None = None  # distinct 1/s (layers reading one tensor share one)
    folded: int | None = None  # of those, how many went into an earlier layer's weights rather than a Mul


@dataclass(kw_only=True)
class Pruning(Section):
    method: str
    ratio: float
    importance: str
    tool: str
    params: BeforeAfter
    nonzero_params: BeforeAfter
    macs: BeforeAfter
    removed: str | None = None  # channels
    heads_per_layer: LayerCounts | None = None  # heads-ffn
    ffn_per_layer: LayerCounts | None = None  # heads-ffn
    pattern: str | None = None  # magnitude, 2:4
    layers: int | None = None  # 2:4
    note: str | None = None  # magnitude, 2:4
    recovery: Recovery | None = None
    metric: PruneMetrics | None = None
    search: PruneSearch | None = None


@dataclass(kw_only=True)
class LayerError(Section):
    layer: str
    error: float


@dataclass(kw_only=True)
class BudgetRound(Section):
    float_layers: int
    drop_pt: float | None


@dataclass(kw_only=True)
class Budget(Section):
    """--max-accuracy-drop: the drop measured on the artifact, and the layers returned to float to meet it."""

    max_drop_pt: float
    baseline_accuracy: float | None = None
    reason: str | None = None
    ranking: list[LayerError] | None = None
    drop_pt: float | None
    met: bool
    float_layers: list[str]
    rounds: list[BudgetRound] | None = None
    shipped_precision: str | None = None


@dataclass(kw_only=True)
class Objective(Section):
    """--objective latency: which precision shipped, and why."""

    objective: str
    shipped: str
    reason: str
    p50_ms: dict[str, float] | None = None
    drop_pt: dict[str, float | None] | None = None


@dataclass(kw_only=True)
class Compression(Section):
    quantization: Quantization | None = None
    smoothing: Smoothing | None = None
    pruning: Pruning | None = None
    budget: Budget | None = None
    objective: Objective | None = None


# --- target configs, one class per target -----------------------------------------------------------------------


@dataclass(kw_only=True)
class OnnxConfig(Section):
    opset: int


@dataclass(kw_only=True)
class QuantParams(Section):
    scale: float
    zero_point: int


@dataclass(kw_only=True)
class SignatureTensor(Section):
    """The LiteRT tensor behind a manifest input or output: its name in the signature, dtype, shape, int8 params."""

    tensor: str
    dtype: str
    shape: list[int]
    quantization: QuantParams | None = None


@dataclass(kw_only=True)
class Signature(Section):
    sequence: int | None = None  # the bucket length (text models)
    inputs: dict[str, SignatureTensor]
    outputs: dict[str, SignatureTensor]


@dataclass(kw_only=True)
class LiteRTConfig(Section):
    """tflite: what the runtime applies at the boundary of each signature (see bmsdk.runtimes.litert_io)."""

    batch_size: int
    batching: str
    sequence_buckets: list[int]
    pad_values: dict[str, int]
    int64_to_int32: list[str]
    layout: str | None = None
    signatures: dict[str, Signature]
    litertlm: LiteRTLMInfo | None = None  # text generation with --litertlm: the bundle beside the step graph


@dataclass(kw_only=True)
class LiteRTLMInfo(Section):
    """The `.litertlm` bundle (litert-torch's generative export, run by LiteRT-LM's engine)."""

    file: str
    quantization_recipe: str
    cache_length: int
    prefill_lengths: list[int]
    litert_torch: str | None = None


@dataclass(kw_only=True)
class Profile(Section):
    """An optimization profile's shapes of one input."""

    min: list[int]
    opt: list[int]
    max: list[int]


@dataclass(kw_only=True)
class BuildConfig(Section):
    """What a TensorRT engine is built with."""

    precision: str
    strongly_typed: bool
    profiles: dict[str, Profile]
    workspace_bytes: int | None = None
    sparsity: str | None = None


@dataclass(kw_only=True)
class OpCheck(Section):
    """The ONNX against the TensorRT ONNX parser's operator table."""

    tensorrt_version: str
    table: str
    opset: int
    op_types: dict[str, int]
    unsupported: list[str]
    problems: list[str]
    passed: bool


@dataclass(kw_only=True)
class Gpu(Section):
    name: str
    compute_capability: str


@dataclass(kw_only=True)
class Engine(Section):
    """A packaged engine, for one GPU model and TensorRT version."""

    file: str
    key: str
    gpu: Gpu
    tensorrt: str


@dataclass(kw_only=True)
class SparsityCheck(Section):
    requested: str
    weights: int
    weights_2_4: int
    note: str


@dataclass(kw_only=True)
class TensorRTConfig(Section):
    package: str
    opset: int
    build: BuildConfig
    config_hash: str
    op_check: OpCheck
    engine: Engine | None = None
    timing_cache: str | None = None
    note: str
    sparsity_check: SparsityCheck | None = None
    unverified: str | None = None


@dataclass(kw_only=True)
class CoreMLConfig(Section):
    minimum_deployment_target: str
    frontend: str
    model_type: str
    flexible_shapes: dict[str, list[int]]  # dim name -> [lowest, highest]
    io_dtypes: dict[str, str]
    states: dict[str, list[int]] | None = None  # stateful program (iOS18): state name -> shape (the KV cache)


TargetConfig = OnnxConfig | LiteRTConfig | TensorRTConfig | CoreMLConfig
CONFIGS_GROUP = (
    "bmsdk.target_configs"  # entry points: target name -> its config class (targets without one record none)
)


def target_config_class(target: str) -> type | None:
    """The class of `target`'s config section, registered like the target itself (a third party registers its own)."""
    eps = entry_points(CONFIGS_GROUP)
    return eps[target].load() if target in eps else None


def target_config_from_dict(target: str, d: Any) -> TargetConfig | None:
    """The target's config from `target_config`; an empty object means none was recorded."""
    if not isinstance(d, dict):
        raise _error("target_config", f"must be an object, got {show(d)}")
    if not d:
        return None
    config_class = target_config_class(target)
    if config_class is None:
        raise _error("target_config", f"must be empty for target {show(target)}, got {show(d)}")
    return config_class.from_dict(d, "target_config")


__all__ = [
    "REMAKE",
    "Section",
    "to_plain",
    "Tolerance",
    "SampleCheck",
    "Scores",
    "Delta",
    "EvalReport",
    "Validation",
    "Calibration",
    "Faithfulness",
    "ToleranceSearch",
    "WeightCompression",
    "Quantization",
    "BeforeAfter",
    "LayerCounts",
    "Recovery",
    "PruneMetrics",
    "PruneTrial",
    "PruneSearch",
    "Pruning",
    "LayerError",
    "BudgetRound",
    "Budget",
    "Objective",
    "Compression",
    "OnnxConfig",
    "QuantParams",
    "SignatureTensor",
    "Signature",
    "LiteRTConfig",
    "Profile",
    "BuildConfig",
    "OpCheck",
    "Gpu",
    "Engine",
    "SparsityCheck",
    "TensorRTConfig",
    "CoreMLConfig",
    "TargetConfig",
    "target_config_class",
    "target_config_from_dict",
]
