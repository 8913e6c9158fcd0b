"""The artifact manifest (`bmsdk.json`): a versioned schema, validated on load."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bmsdk.errors import ManifestError
from bmsdk.image_pipeline import MAX_SIDE as MAX_IMAGE_SIDE
from bmsdk.image_pipeline import pipeline_problem
from bmsdk.plugins import plugin_names
from bmsdk.sections import REMAKE, Compression, TargetConfig, Validation, target_config_from_dict
from bmsdk.sections import show as _show

SCHEMA_VERSION = 2  # v2: validation, compression and target_config are typed (bmsdk.sections); v1 is migrated on read
MANIFEST_NAME = "bmsdk.json"
TASKS_GROUP = "bmsdk.tasks"
SIGNATURE_NAME = "bmsdk.sig"  # optional: an Ed25519 signature of bmsdk.json's bytes (see signing.py)
DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool")
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_DEPTH = 64
MAX_RANK = 16
MAX_DIM = 2**20
MAX_ELEMENTS = 2**31  # product of a tensor's fixed dims
MAX_NAME = 256
MAX_TEXT_LENGTH = 65536
DIM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:+\-*/() ]{0,63}")  # "batch", "sequence", ONNX dim_params like "s0 + 1"
FREE_FORM = ("source", "toolchain")
SECTIONS = ("compression", "validation", "target_config")
LAYOUTS = ("NCHW", "NHWC")
MAX_SAMPLING_RATE = 384_000
MAX_CLIP_SAMPLES = 1 << 24


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_dim(dim: str) -> tuple[str, int]:
    """("sequence", 128) for a derived dim "sequence+128" (another named dim plus a constant); else (dim, 0)."""
    base, plus, offset = dim.partition("+")
    return (base.strip(), int(offset)) if plus and offset.strip().isdigit() else (dim, 0)


def dim_size(dim: int | str, sizes: dict[str, int], default: int) -> int:
    """The size of a dim: fixed, named in `sizes` (else `default`), or derived from a named one plus its constant."""
    if isinstance(dim, int):
        return dim
    base, offset = split_dim(dim)
    return sizes.get(base, default) + offset


def data_kind(input_kind: str | None) -> str | None:
    """What data a model with this pre-processing kind is fed: text-generation models take texts too."""
    return "text" if input_kind == "generation" else input_kind


@dataclass
class TensorSpec:
    """A model input or output. A dim is an int (fixed) or a name (dynamic, e.g. "batch")."""

    name: str
    dtype: str
    shape: list[int | str]
    value_range: list[int] | None = None  # [lowest, highest] an integer input may hold (token ids: the vocabulary)
    max_dims: dict[str, int] | None = None  # the largest size of a named dim (sequence: the model's positions)

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ManifestError(
                f"tensor '{self.name}' has unknown dtype '{self.dtype}'", f"use one of {', '.join(DTYPES)}"
            )

    @classmethod
    def from_dict(cls, d: dict) -> TensorSpec:
        _check_fields(d, {"name": str, "dtype": str, "shape": list}, "tensor spec")
        name, shape = d["name"], d["shape"]
        if not name or len(name) > MAX_NAME:
            raise ManifestError(
                f"a tensor has the name {_show(name)}", f"names are 1 to {MAX_NAME} characters; {REMAKE}"
            )
        if len(shape) > MAX_RANK:
            raise ManifestError(f"tensor {_show(name)} has {len(shape)} dims", f"at most {MAX_RANK}; {REMAKE}")
        for dim in shape:
            if not _good_dim(dim):
                raise ManifestError(
                    f"tensor {_show(name)} has a bad dim {_show(dim)}",
                    f"dims are ints from 1 to {MAX_DIM} or names like 'batch'; {REMAKE}",
                )
        if math.prod(dim for dim in shape if isinstance(dim, int)) > MAX_ELEMENTS:
            raise ManifestError(
                f"tensor {_show(name)} of shape {_show(shape)} is too large",
                f"at most {MAX_ELEMENTS} elements in its fixed dims; {REMAKE}",
            )
        value_range, max_dims = d.get("value_range"), d.get("max_dims")
        if value_range is not None and not (
            isinstance(value_range, list)
            and len(value_range) == 2
            and all(_is_int(v, -(2**63), 2**63) for v in value_range)
            and value_range[0] <= value_range[1]
        ):
            raise ManifestError(
                f"tensor {_show(name)} has a bad value_range", f"it is [lowest, highest], two integers; {REMAKE}"
            )
        if max_dims is not None and not (
            isinstance(max_dims, dict) and all(isinstance(k, str) and _is_int(v, 1) for k, v in max_dims.items())
        ):
            raise ManifestError(
                f"tensor {_show(name)} has bad max_dims", f"it maps dim names to positive integers; {REMAKE}"
            )
        return cls(name, d["dtype"], list(shape), value_range, max_dims)

    def to_dict(self) -> dict:
        """The optional fields only when set, so plain specs stay {name, dtype, shape}."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def describe(self) -> str:
        return f"{self.name}: {self.dtype}[{', '.join(str(d) for d in self.shape)}]"


@dataclass
class Manifest:
    name: str
    task: str
    target: str
    precision: str
    model_file: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256, the model file included
    preprocessing: dict[str, Any] = field(default_factory=dict)
    postprocessing: dict[str, Any] = field(default_factory=dict)
    compression: Compression = field(default_factory=Compression)
    source: dict[str, Any] = field(default_factory=dict)
    toolchain: dict[str, str] = field(default_factory=dict)
    validation: Validation = field(default_factory=Validation)
    target_config: TargetConfig | None = None  # its class comes from the bmsdk.target_configs entry points
    created: str = ""
    bmsdk_version: str = ""
    schema_version: int = SCHEMA_VERSION

    # --- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        """The manifest as the JSON of the current schema (always SCHEMA_VERSION: a migrated v1 writes v2)."""
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in SECTIONS}
        d["inputs"], d["outputs"] = [t.to_dict() for t in self.inputs], [t.to_dict() for t in self.outputs]
        d["compression"], d["validation"] = self.compression.to_dict(), self.validation.to_dict()
        d["target_config"] = self.target_config.to_dict() if self.target_config is not None else {}
        d["schema_version"] = SCHEMA_VERSION
        return {f.name: d[f.name] for f in dataclasses.fields(self)}

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: Any) -> Manifest:
        if not isinstance(d, dict):
            raise ManifestError("bmsdk.json is not a JSON object", REMAKE)
        if _too_deep(d):
            raise ManifestError(f"bmsdk.json is nested more than {MAX_DEPTH} levels deep", REMAKE)
        version = d.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ManifestError("bmsdk.json has no integer 'schema_version'", REMAKE)
        if version > SCHEMA_VERSION:
            raise ManifestError(
                f"bmsdk.json uses schema version {version}, newer than this bmsdk understands ({SCHEMA_VERSION})",
                "upgrade bmsdk (`pip install -U bmsdk`)",
            )
        d = migrate(d)
        _check_fields(
            d,
            {
                "name": str,
                "task": str,
                "target": str,
                "precision": str,
                "model_file": str,
                "inputs": list,
                "outputs": list,
                "files": dict,
            },
            "bmsdk.json",
        )
        tasks = plugin_names(TASKS_GROUP)  # entry point names only: the tasks themselves are a layer above
        if d["task"] not in tasks:
            raise ManifestError(
                f"bmsdk.json names unknown task {_show(d['task'])}",
                f"tasks this bmsdk knows: {', '.join(tasks)}; a newer bmsdk or a plugin may know it",
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ManifestError(
                f"bmsdk.json has unknown fields {_show(sorted(unknown))}", "re-create the artifact with this bmsdk"
            )
        _check_files(d["model_file"], d["files"])
        kwargs = dict(d)
        kwargs["inputs"] = _tensor_specs(d["inputs"], "inputs")
        kwargs["outputs"] = _tensor_specs(d["outputs"], "outputs")
        for key in ("preprocessing", "postprocessing", *FREE_FORM):
            if key in kwargs and not isinstance(kwargs[key], dict):
                raise ManifestError(f"bmsdk.json field '{key}' must be an object", REMAKE)
        for key in ("created", "bmsdk_version"):
            if key in kwargs and not isinstance(kwargs[key], str):
                raise ManifestError(f"bmsdk.json field '{key}' must be a str", REMAKE)
        kwargs["compression"] = Compression.from_dict(d.get("compression", {}), "compression")
        kwargs["validation"] = Validation.from_dict(d.get("validation", {}), "validation")
        kwargs["target_config"] = target_config_from_dict(d["target"], d.get("target_config", {}))
        _check_preprocessing(kwargs.get("preprocessing", {}), kwargs["inputs"], d["files"])
        _check_postprocessing(kwargs.get("postprocessing", {}), kwargs["outputs"])
        return cls(**kwargs)

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        return cls.parse(manifest_bytes(folder), Path(folder) / MANIFEST_NAME)

    @classmethod
    def parse(cls, data: bytes, path: Path) -> Manifest:
        """The manifest in `data`, the bytes of bmsdk.json at `path` (named in errors)."""
        try:
            parsed = json.loads(data)
        except RecursionError:
            raise ManifestError(f"{path} is nested too deeply to be a manifest", REMAKE) from None
        except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
            raise ManifestError(f"{path} is not valid JSON ({str(e)[:200]})", REMAKE) from None
        return cls.from_dict(parsed)

    # --- conveniences --------------------------------------------------------
    @property
    def input_kind(self) -> str | None:
        """What predict() takes: "text", "image", or None (arrays fed as they are)."""
        return self.preprocessing.get("kind")

    @property
    def data_kind(self) -> str | None:
        """What data the model is fed: "text" (text and text-generation models), "image", or None."""
        return data_kind(self.input_kind)

    @property
    def labels(self) -> list[str] | None:
        return self.postprocessing.get("labels")

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)


def migrate(d: dict) -> dict:
    """A manifest of an older schema as the current one, one version step at a time."""
    version = d["schema_version"]
    if version < 1:
        raise ManifestError(f"bmsdk.json uses schema version {version}, which no bmsdk wrote", REMAKE)
    while version < SCHEMA_VERSION:
        d = MIGRATIONS[version](d)
        version = d["schema_version"]
    return d


def _v1_to_v2(d: dict) -> dict:
    """v2 types validation, compression and target_config. Their JSON is v1's: the same keys, with the fields
    v1 wrote as null (e.g. `top1_agreement`, `engine`, a tensor's `quantization`) read as unset and left out on
    write. So the step only bumps the version; the typed load that follows checks the sections."""
    return {**d, "schema_version": 2}


MIGRATIONS = {1: _v1_to_v2}  # from version -> the step to the next


def manifest_bytes(folder: str | Path) -> bytes:
    """The exact bytes of `folder`/bmsdk.json: what a signature covers, read once and then parsed."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{folder} has no {MANIFEST_NAME}", "pass a folder written by `bmsdk convert`")
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise ManifestError(f"{path} is larger than {MAX_MANIFEST_BYTES >> 20} MB", REMAKE)
        return path.read_bytes()
    except OSError as e:
        raise ManifestError(f"cannot read {path} ({e.strerror or e})", "check the file's permissions") from None


def _inside(rel: str) -> bool:
    """A relative path that stays inside the artifact folder (no absolute paths, no '..')."""
    if not isinstance(rel, str) or not rel or "\\" in rel:
        return False
    path = PurePosixPath(rel)
    return not path.is_absolute() and ".." not in path.parts


def _check_fields(d: dict, types: dict[str, type], where: str) -> None:
    for key, typ in types.items():
        if key not in d:
            raise ManifestError(f"{where} is missing the field '{key}'", REMAKE)
        if not isinstance(d[key], typ):
            raise ManifestError(f"{where} field '{key}' must be a {typ.__name__}", REMAKE)


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if level > MAX_DEPTH:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def _good_dim(dim: Any) -> bool:
    if isinstance(dim, bool):
        return False
    if isinstance(dim, int):
        return 1 <= dim <= MAX_DIM
    return isinstance(dim, str) and DIM_NAME.fullmatch(dim) is not None


def _is_int(value: Any, low: int, high: float = math.inf) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_files(model_file: str, files: dict) -> None:
    for rel in [model_file, *files]:
        if not _inside(rel):
            raise ManifestError(
                f"bmsdk.json names a file outside the artifact: {_show(rel)}",
                f"never load an artifact whose manifest was edited; {REMAKE}",
            )
    if not all(isinstance(digest, str) for digest in files.values()):
        raise ManifestError("bmsdk.json 'files' must map each path to its sha256 string", REMAKE)
    folder = model_file.rstrip("/") + "/"  # a file, or a folder (model.mlpackage/) whose files are listed one by one
    if model_file not in files and not any(f.startswith(folder) for f in files):
        raise ManifestError("bmsdk.json does not list a checksum for its model file", REMAKE)


def _tensor_specs(items: list, key: str) -> list[TensorSpec]:
    if not items:
        raise ManifestError(f"bmsdk.json declares no {key}", REMAKE)
    if not all(isinstance(t, dict) for t in items):
        raise ManifestError("bmsdk.json inputs/outputs must be objects", REMAKE)
    specs = [TensorSpec.from_dict(t) for t in items]
    names = [t.name for t in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ManifestError(f"bmsdk.json declares {key} {_show(repeated)} more than once", REMAKE)
    return specs


def _pre_error(problem: str) -> ManifestError:
    return ManifestError(f"bmsdk.json preprocessing: {problem}", REMAKE)


def _check_preprocessing(pre: dict, inputs: list[TensorSpec], files: dict) -> None:
    """'text' and 'image' pre-processing must be complete and agree with the inputs; no kind means raw tensors."""
    kind = pre.get("kind")
    if kind is None:
        return
    if kind == "text":
        _check_text(pre, inputs, files)
    elif kind == "image":
        _check_image(pre, inputs)
    elif kind == "audio":
        _check_audio(pre, inputs)
    elif kind == "generation":
        _check_generation(pre, inputs, files)
    else:
        raise _pre_error(f"unknown kind {_show(kind)} (kinds are 'text', 'image', 'audio' and 'generation')")


def _check_text(pre: dict, inputs: list[TensorSpec], files: dict) -> None:
    tokenizer = pre.get("tokenizer")
    if not _inside(tokenizer) or tokenizer not in files:
        raise _pre_error(f"'tokenizer' must name a checksummed file inside the artifact, got {_show(tokenizer)}")
    if not _is_int(pre.get("max_length"), 1, MAX_TEXT_LENGTH):
        raise _pre_error(f"'max_length' must be an int from 1 to {MAX_TEXT_LENGTH}, got {_show(pre.get('max_length'))}")
    if "pad_id" in pre and not _is_int(pre["pad_id"], 0):
        raise _pre_error(f"'pad_id' must be an int >= 0, got {_show(pre['pad_id'])}")
    if "stride" in pre and not _is_int(pre["stride"], 0, pre["max_length"] - 1):
        raise _pre_error(f"'stride' must be an int from 0 to max_length - 1, got {_show(pre['stride'])}")
    if "pad_token" in pre and not isinstance(pre["pad_token"], str):
        raise _pre_error(f"'pad_token' must be a string, got {_show(pre['pad_token'])}")
    if not any(t.name == "input_ids" for t in inputs):
        raise _pre_error("text pre-processing needs an input named 'input_ids'")


def _check_generation(pre: dict, inputs: list[TensorSpec], files: dict) -> None:
    """A text-generation step graph: its tokenizer, cache shape and the cache inputs it implies."""
    tokenizer = pre.get("tokenizer")
    if not _inside(tokenizer) or tokenizer not in files:
        raise _pre_error(f"'tokenizer' must name a checksummed file inside the artifact, got {_show(tokenizer)}")
    for key, high in (("cache_length", MAX_TEXT_LENGTH), ("layers", 1024), ("kv_heads", 1024), ("head_dim", 4096)):
        if not _is_int(pre.get(key), 1, high):
            raise _pre_error(f"{_show(key)} must be an int from 1 to {high}, got {_show(pre.get(key))}")
    eos = pre.get("eos_ids", [])
    if not (isinstance(eos, list) and all(_is_int(i, 0) for i in eos)):
        raise _pre_error(f"'eos_ids' must be a list of token ids, got {_show(eos)}")
    if "max_positions" in pre and not _is_int(pre["max_positions"], 1):
        raise _pre_error(f"'max_positions' must be an int >= 1, got {_show(pre['max_positions'])}")
    if not isinstance(pre.get("chat_template", ""), str):
        raise _pre_error("'chat_template' must be a string")
    names = {t.name for t in inputs}
    needed = {"input_ids", "position_ids", "attention_mask"} | {
        f"past_{kind}_{i}" for i in range(pre["layers"]) for kind in ("key", "value")
    }
    if needed - names:
        raise _pre_error(f"a text-generation model needs the inputs {_show(sorted(needed - names))}")


def _check_image(pre: dict, inputs: list[TensorSpec]) -> None:
    size, channels, layout = pre.get("size"), pre.get("channels"), pre.get("layout")
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(v, 1, MAX_IMAGE_SIDE) for v in size)):
        raise _pre_error(f"'size' must be [height, width] of ints from 1 to {MAX_IMAGE_SIDE}, got {_show(size)}")
    if not _is_int(channels, 1, 4):
        raise _pre_error(f"'channels' must be an int from 1 to 4, got {_show(channels)}")
    if layout not in LAYOUTS:
        raise _pre_error(f"'layout' must be NCHW or NHWC, got {_show(layout)}")
    spec = next((t for t in inputs if t.name == pre.get("input_name")), None)
    if spec is None:
        raise _pre_error(f"'input_name' {_show(pre.get('input_name'))} is not one of the inputs")
    _check_image_input(spec, size, channels, layout)
    if not _is_number(pre.get("scale")):
        raise _pre_error(f"'scale' must be a finite number, got {_show(pre.get('scale'))}")
    for key in ("mean", "std"):
        values = pre.get(key)
        if not (isinstance(values, list) and len(values) == channels and all(_is_number(v) for v in values)):
            raise _pre_error(f"'{key}' must be {channels} finite numbers (one per channel), got {_show(values)}")
    if 0 in pre["std"]:
        raise _pre_error(f"'std' must not contain 0, got {_show(pre['std'])}")
    problem = pipeline_problem(pre, size, channels)
    if problem:
        raise _pre_error(problem)


def _check_audio(pre: dict, inputs: list[TensorSpec]) -> None:
    """A fixed-length waveform input [batch, samples] (and an attention mask of the same shape) at a sampling rate."""
    rate, samples = pre.get("sampling_rate"), pre.get("samples")
    if not _is_int(rate, 1, MAX_SAMPLING_RATE):
        raise _pre_error(f"'sampling_rate' must be an int from 1 to {MAX_SAMPLING_RATE}, got {_show(rate)}")
    if not _is_int(samples, 1, MAX_CLIP_SAMPLES):
        raise _pre_error(f"'samples' must be an int from 1 to {MAX_CLIP_SAMPLES}, got {_show(samples)}")
    if not isinstance(pre.get("do_normalize", True), bool):
        raise _pre_error(f"'do_normalize' must be true or false, got {_show(pre.get('do_normalize'))}")
    if not _is_number(pre.get("padding_value", 0.0)):
        raise _pre_error(f"'padding_value' must be a finite number, got {_show(pre.get('padding_value'))}")
    spec = next((t for t in inputs if t.name == pre.get("input_name")), None)
    if spec is None:
        raise _pre_error(f"'input_name' {_show(pre.get('input_name'))} is not one of the inputs")
    for t in inputs:
        if t.name not in (spec.name, "attention_mask"):
            raise _pre_error(f"audio pre-processing feeds {_show(spec.name)} and 'attention_mask', not {_show(t.name)}")
        if len(t.shape) != 2 or t.shape[1] != samples:
            raise _pre_error(f"audio input {_show(t.name)} must be [batch, {samples}], got {_show(t.shape)}")
    if not spec.dtype.startswith("float"):
        raise _pre_error(f"audio input {_show(spec.name)} must be float, got {_show(spec.dtype)}")


def _check_image_input(spec: TensorSpec, size: list[int], channels: int, layout: str) -> None:
    if len(spec.shape) != 4:
        raise _pre_error(f"image input {_show(spec.name)} must have 4 dims ({layout}), got {_show(spec.shape)}")
    c, h, w = (spec.shape[1], *spec.shape[2:]) if layout == "NCHW" else (spec.shape[3], *spec.shape[1:3])
    if isinstance(c, int) and c != channels:
        raise _pre_error(f"'channels' is {channels} but input {_show(spec.name)} has {c} channels")
    if all(isinstance(v, int) for v in (h, w)) and [h, w] != size:
        raise _pre_error(f"'size' is {size} but input {_show(spec.name)} is {h}x{w}")


def _check_postprocessing(post: dict, outputs: list[TensorSpec]) -> None:
    name = post.get("output")
    if name is not None and not any(t.name == name for t in outputs):
        raise ManifestError(f"bmsdk.json postprocessing names output {_show(name)}, which is not declared", REMAKE)
    labels = post.get("labels")
    if labels is None:
        return
    if not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
        raise ManifestError(
            f"bmsdk.json postprocessing 'labels' must be a list of strings, got {_show(labels)}", REMAKE
        )
    spec = next(t for t in outputs if t.name == name) if name is not None else outputs[0]
    axis = post.get("label_axis", -1)  # the output's label dimension (semantic segmentation: 1, [N, labels, h, w])
    if (
        isinstance(axis, bool)
        or not isinstance(axis, int)
        or not -len(spec.shape or [0]) <= axis < len(spec.shape or [0])
    ):
        raise ManifestError(f"bmsdk.json postprocessing 'label_axis' {_show(axis)} is not a dim of {spec.name}", REMAKE)
    classes = spec.shape[axis] if spec.shape else None
    extra = post.get("label_extra", 0)  # entries of that dim that are no label (DETR's no-object, YOLO's box)
    if isinstance(extra, bool) or not isinstance(extra, int) or extra < 0:
        raise ManifestError(f"bmsdk.json postprocessing 'label_extra' {_show(extra)} is not a count", REMAKE)
    classes = classes - extra if isinstance(classes, int) else classes
    if isinstance(classes, int) and len(labels) != classes:
        raise ManifestError(
            f"bmsdk.json has {len(labels)} labels but output {_show(spec.name)} has {classes} classes", REMAKE
        )
