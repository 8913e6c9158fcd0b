"""The artifact manifest (`bmsdk.json`): a versioned schema, validated on load."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import ManifestError

SCHEMA_VERSION = 1
MANIFEST_NAME = "bmsdk.json"
SIGNATURE_NAME = "bmsdk.sig"  # optional: an Ed25519 signature of bmsdk.json's bytes (see signing.py)
TASKS = ("text-classification", "image-classification", "feature-extraction")
DTYPES = ("float32", "float16", "int64", "int32", "int8", "uint8", "bool")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
            raise ManifestError(f"tensor '{self.name}' has unknown dtype '{self.dtype}'", f"use one of {', '.join(DTYPES)}")

    @classmethod
    def from_dict(cls, d: dict) -> TensorSpec:
        _check_fields(d, {"name": str, "dtype": str, "shape": list}, "tensor spec")
        for dim in d["shape"]:
            if not isinstance(dim, (int, str)) or isinstance(dim, bool):
                raise ManifestError(f"tensor '{d['name']}' has a bad dim {dim!r}", "dims are ints or names")
        value_range, max_dims = d.get("value_range"), d.get("max_dims")
        if value_range is not None and not (isinstance(value_range, list) and len(value_range) == 2
                                            and all(_is_int(v) for v in value_range) and value_range[0] <= value_range[1]):
            raise ManifestError(f"tensor '{d['name']}' has a bad value_range", "it is [lowest, highest], two integers")
        if max_dims is not None and not (isinstance(max_dims, dict)
                                         and all(isinstance(k, str) and _is_int(v) and v >= 1 for k, v in max_dims.items())):
            raise ManifestError(f"tensor '{d['name']}' has bad max_dims", "it maps dim names to positive integers")
        return cls(d["name"], d["dtype"], list(d["shape"]), value_range, max_dims)

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
    compression: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)
    toolchain: dict[str, str] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    target_config: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    bmsdk_version: str = ""
    schema_version: int = SCHEMA_VERSION

    # --- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["inputs"], d["outputs"] = [t.to_dict() for t in self.inputs], [t.to_dict() for t in self.outputs]
        return d

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, d: Any) -> Manifest:
        if not isinstance(d, dict):
            raise ManifestError("bmsdk.json is not a JSON object", "re-create the artifact with `bmsdk convert`")
        version = d.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ManifestError("bmsdk.json has no integer 'schema_version'", "re-create the artifact with `bmsdk convert`")
        if version > SCHEMA_VERSION:
            raise ManifestError(
                f"bmsdk.json uses schema version {version}, newer than this bmsdk understands ({SCHEMA_VERSION})",
                "upgrade bmsdk (`pip install -U bmsdk`)",
            )
        _check_fields(
            d,
            {"name": str, "task": str, "target": str, "precision": str, "model_file": str,
             "inputs": list, "outputs": list, "files": dict},
            "bmsdk.json",
        )
        if d["task"] not in TASKS:
            raise ManifestError(f"bmsdk.json names unknown task '{d['task']}'", f"tasks are {', '.join(TASKS)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ManifestError(f"bmsdk.json has unknown fields {sorted(unknown)}", "re-create the artifact with this bmsdk")
        for rel in [d["model_file"], *d["files"]]:
            if not _inside(rel):
                raise ManifestError(f"bmsdk.json names a file outside the artifact: '{rel}'",
                                    "never load an artifact whose manifest was edited; re-create it with `bmsdk convert`")
        if not all(isinstance(t, dict) for t in d["inputs"] + d["outputs"]):
            raise ManifestError("bmsdk.json inputs/outputs must be objects", "re-create the artifact with `bmsdk convert`")
        kwargs = dict(d)
        kwargs["inputs"] = [TensorSpec.from_dict(t) for t in d["inputs"]]
        kwargs["outputs"] = [TensorSpec.from_dict(t) for t in d["outputs"]]
        for key in ("preprocessing", "postprocessing", "compression", "source", "toolchain", "validation", "target_config"):
            if key in kwargs and not isinstance(kwargs[key], dict):
                raise ManifestError(f"bmsdk.json field '{key}' must be an object", "re-create the artifact with `bmsdk convert`")
        model_file = d["model_file"]  # a file, or a folder (model.mlpackage/) whose files are listed one by one
        if model_file not in d["files"] and not any(f.startswith(model_file.rstrip("/") + "/") for f in d["files"]):
            raise ManifestError("bmsdk.json does not list a checksum for its model file", "re-create the artifact with `bmsdk convert`")
        return cls(**kwargs)

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        return cls.parse(manifest_bytes(folder), Path(folder) / MANIFEST_NAME)

    @classmethod
    def parse(cls, data: bytes, path: Path) -> Manifest:
        """The manifest in `data`, the bytes of bmsdk.json at `path` (named in errors)."""
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ManifestError(f"{path} is not valid JSON ({e})", "re-create the artifact with `bmsdk convert`") from None
        return cls.from_dict(parsed)

    # --- conveniences --------------------------------------------------------
    @property
    def labels(self) -> list[str] | None:
        return self.postprocessing.get("labels")

    def input(self, name: str) -> TensorSpec:
        return next(t for t in self.inputs if t.name == name)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def manifest_bytes(folder: str | Path) -> bytes:
    """The exact bytes of `folder`/bmsdk.json: what a signature covers, read once and then parsed."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{folder} has no {MANIFEST_NAME}", "pass a folder written by `bmsdk convert`")
    return path.read_bytes()


def _inside(rel: str) -> bool:
    """A relative path that stays inside the artifact folder (no absolute paths, no '..')."""
    path = PurePosixPath(rel)
    return isinstance(rel, str) and bool(rel) and not path.is_absolute() and ".." not in path.parts and "\\" not in rel


def _check_fields(d: dict, types: dict[str, type], where: str) -> None:
    for key, typ in types.items():
        if key not in d:
            raise ManifestError(f"{where} is missing the field '{key}'", "re-create the artifact with `bmsdk convert`")
        if not isinstance(d[key], typ):
            raise ManifestError(f"{where} field '{key}' must be a {typ.__name__}", "re-create the artifact with `bmsdk convert`")
