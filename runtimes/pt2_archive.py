"""Loading a torch.export `.pt2` archive without running anything it carries.

`torch.export.load` is not safe on a stranger's file (torch 2.13): it unpickles sample inputs that a
`weights_only` load rejects, weights and constants marked `use_pickle`, custom and opaque objects; it loads the
native libraries of an AOTInductor package; it evaluates every shape expression with `sympy.sympify` (Python's
`eval`); it resolves graph targets by attribute lookup on `torch`, `math` and `operator` (so a node may call any
function reachable from there); and `ExportedProgram.module()` `exec`s the archive's `guards_code`.

`inspect_archive` reads the zip and its JSON itself and refuses all of that before torch sees the file;
`load_exported_program` then calls `torch.export.load`, drops the guard code and checks that every input is a
tensor (a constant input's value would be pasted into generated code). Sources and the torch backend both load
`.pt2` files only through `load_exported_program`.
"""

from __future__ import annotations

import ast
import io
import json
import math
import re
import zipfile
from pathlib import Path, PurePosixPath

from bmsdk.errors import SourceError
from bmsdk.runtimes.base import short_error

MAX_JSON_BYTES = 256 << 20
MAX_ENTRIES = 100_000
MAX_ZERO_FILLED_BYTES = 64 << 20  # a weight stored as 0 bytes is allocated as zeros of its declared size
ALLOWED_FILES = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/[\w.-]+|models/\w+\.json|extra/[\w.-]+"
    r"|data/weights/(weight_\d+|\w+_weights_config\.json)|data/constants/(tensor_\d+|\w+_constants_config\.json)"
    r"|data/sample_inputs/\w+\.pt)"
)
# graph targets a program may call: registered torch ops, symbolic-shape helpers, and plain arithmetic
TORCH_OP = re.compile(r"torch\.ops\.[A-Za-z]\w*\.\w+(\.[A-Za-z]\w*)?")
SYM_FUNCTION = re.compile(r"torch\.(_?sym_\w+)")
OPERATORS = frozenset(
    {
        "getitem",
        "add",
        "sub",
        "mul",
        "truediv",
        "floordiv",
        "mod",
        "pow",
        "neg",
        "pos",
        "abs",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "and_",
        "or_",
        "xor",
        "not_",
        "invert",
        "lshift",
        "rshift",
        "truth",
    }
)
MATH = frozenset(
    {
        "ceil",
        "floor",
        "trunc",
        "sqrt",
        "exp",
        "log",
        "log2",
        "log10",
        "sin",
        "cos",
        "tan",
        "tanh",
        "atan",
        "pow",
        "fabs",
        "isnan",
        "isinf",
        "isfinite",
        "gcd",
    }
)
SYMBOL_ARG = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
SYMPY_KEYWORDS = frozenset(
    {
        "positive",
        "negative",
        "integer",
        "real",
        "nonnegative",
        "nonpositive",
        "finite",
        "evaluate",
        "zero",
        "nonzero",
        "odd",
        "even",
        "prime",
        "rational",
        "commutative",
        "precision",
    }
)
FIX = (
    "re-export the model with torch.export.export and save it with torch.export.save; "
    "bmsdk runs no code from model files"
)


def inspect_archive(path: Path) -> None:
    """Refuse (SourceError) any `.pt2` that `torch.export.load` could not load without running code from it."""
    if not zipfile.is_zipfile(path):
        raise SourceError(f"{path} is not a torch.export archive (not a zip file)", FIX)
    try:
        with zipfile.ZipFile(path) as archive:
            _inspect(path, archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as e:
        raise SourceError(f"{path} is a damaged archive ({short_error(e, 200)})", FIX) from None


def _inspect(path: Path, archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    if not names or len(names) > MAX_ENTRIES:
        raise SourceError(f"{path} holds {len(names)} entries", FIX)
    root = names[0].split("/", 1)[0]
    files = {}
    for name in names:
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or len(parts) < 2 or parts[0] != root:
            raise SourceError(f"{path} has an entry outside its root folder: {name[:120]!r}", FIX)
        files[name[len(root) + 1 :]] = name
    if "archive_format" not in files or archive.read(files["archive_format"]) != b"pt2":
        raise SourceError(
            f"{path} is not a current torch.export archive (no archive_format 'pt2'; it may be a legacy "
            "format that torch unpickles)",
            FIX,
        )
    for rel in files:
        if not ALLOWED_FILES.fullmatch(rel):
            why = (
                "native code (an AOTInductor package)"
                if rel.startswith("data/aotinductor/")
                else "an entry torch may unpickle or run"
            )
            raise SourceError(f"{path} contains {rel!r}: {why}", FIX)
    models = [rel[len("models/") : -len(".json")] for rel in files if rel.startswith("models/")]
    if not models:
        raise SourceError(f"{path} holds no exported program (models/*.json)", FIX)
    for model in models:
        _check_program(path, _json(archive, files, f"models/{model}.json", path))
        for kind in ("weights", "constants"):
            config = f"data/{kind}/{model}_{kind}_config.json"
            if config not in files:
                raise SourceError(f"{path} lacks {config} (a legacy, pickled {kind} file)", FIX)
            _check_payloads(path, archive, files, kind, _json(archive, files, config, path))
        sample = f"data/sample_inputs/{model}.pt"
        if sample in files:
            _check_sample_inputs(path, archive.read(files[sample]))


def _json(archive: zipfile.ZipFile, files: dict, rel: str, path: Path):
    info = archive.getinfo(files[rel])
    if info.file_size > MAX_JSON_BYTES:
        raise SourceError(f"{path}: {rel} declares {info.file_size} bytes", FIX)
    try:
        return json.loads(archive.read(info))
    except (ValueError, RecursionError) as e:
        raise SourceError(f"{path}: {rel} is not valid JSON ({short_error(e, 200)})", FIX) from None


def _check_program(path: Path, program) -> None:
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        raise SourceError(f"{path} holds a malformed exported program", FIX)
    guards = program.get("guards_code", [])
    if not isinstance(guards, list) or not all(isinstance(g, str) for g in guards):
        raise SourceError(f"{path} has malformed guard code", FIX)
    for node in _walk(program):
        if "target" in node and "inputs" in node and "outputs" in node:
            _check_target(path, node["target"])
        expr = node.get("expr_str")
        if expr is not None:
            _check_sym_expr(path, expr)
    if program["graph_module"].get("graph", {}).get("custom_obj_values"):
        raise SourceError(f"{path} holds custom (script) objects, which torch unpickles", FIX)


def _walk(value):
    """Every dict nested in a JSON value, iteratively (a deep document must not exhaust the stack)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check_target(path: Path, target) -> None:
    ok = isinstance(target, str) and (
        (TORCH_OP.fullmatch(target) and _is_operator(target))
        or (SYM_FUNCTION.fullmatch(target) and "__" not in target)
        or (target.startswith("_operator.") and target[len("_operator.") :] in OPERATORS)
        or (target.startswith("math.") and target[len("math.") :] in MATH)
    )
    if not ok:
        raise SourceError(f"{path} has a graph node calling {str(target)[:120]!r}, which is not a torch operator", FIX)


def _is_operator(target: str) -> bool:
    """`torch.ops.ns.op[.overload]` names a registered operator (aten's names include dunders such as __and__)."""
    import torch

    obj = torch
    for name in target.split(".")[1:]:
        obj = getattr(obj, name, None)
        if obj is None:
            return False
    return isinstance(obj, (torch._ops.OpOverload, torch._ops.OpOverloadPacket, torch._ops.HigherOrderOperator))


def _check_sym_expr(path: Path, expr) -> None:
    """A shape expression must be a plain sympy term: torch evaluates it with sympy.sympify, i.e. Python's eval."""
    if not isinstance(expr, str) or len(expr) > 10_000:
        raise SourceError(f"{path} has a malformed shape expression", FIX)
    try:
        tree = ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise SourceError(f"{path} has a shape expression that is not a sympy term: {expr[:120]!r}", FIX) from None
    for node in ast.walk(tree):
        if not _safe_sym_node(node):
            raise SourceError(f"{path} has a shape expression that is not a sympy term: {expr[:120]!r}", FIX)


def _safe_sym_node(node) -> bool:
    if isinstance(
        node,
        (
            ast.Expression,
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.BoolOp,
            ast.operator,
            ast.unaryop,
            ast.cmpop,
            ast.boolop,
            ast.Load,
        ),
    ):
        return True
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name)
    if isinstance(node, ast.keyword):
        return node.arg in SYMPY_KEYWORDS
    if isinstance(node, ast.Constant):
        value = node.value
        return (
            value is None
            or isinstance(value, (bool, int, float))
            or (isinstance(value, str) and bool(SYMBOL_ARG.fullmatch(value)) and "__" not in value)
        )
    if isinstance(node, ast.Name):
        return node.id in ("True", "False", "None") or _sympy_name(node.id)
    return False


def _sympy_name(name: str) -> bool:
    """A sympy class or constant, or one of torch's sympy functions: nothing that parses or evaluates strings."""
    if "__" in name or not name.isidentifier():
        return False
    import sympy
    from torch.utils._sympy import functions as torch_functions

    obj = getattr(torch_functions, name, None) if hasattr(torch_functions, name) else getattr(sympy, name, None)
    return isinstance(obj, sympy.Basic) or (isinstance(obj, type) and issubclass(obj, sympy.Basic))


def _check_payloads(path: Path, archive: zipfile.ZipFile, files: dict, kind: str, config) -> None:
    payloads = config.get("config") if isinstance(config, dict) else None
    if not isinstance(payloads, dict):
        raise SourceError(f"{path} has a malformed {kind} config", FIX)
    for fqn, meta in payloads.items():
        if not isinstance(meta, dict) or meta.get("use_pickle") is not False:
            raise SourceError(f"{path}: {kind[:-1]} {str(fqn)[:80]!r} is stored as a pickle", FIX)
        name = meta.get("path_name")
        prefix = "weight_" if kind == "weights" else "tensor_"
        if not isinstance(name, str) or not name.startswith(prefix):
            raise SourceError(
                f"{path}: {kind[:-1]} {str(fqn)[:80]!r} is a custom or opaque object ({str(name)[:40]!r}), "
                "which torch unpickles",
                FIX,
            )
        record = files.get(f"data/{kind}/{name}")
        if record is None:
            raise SourceError(f"{path}: {kind[:-1]} {str(fqn)[:80]!r} has no data ({name})", FIX)
        _check_extent(path, fqn, meta.get("tensor_meta"), archive.getinfo(record).file_size)


def _check_extent(path: Path, fqn: str, meta, stored: int) -> None:
    """The declared size must fit the stored bytes; torch allocates zeros for an empty record."""
    try:
        sizes = [int(d["as_int"]) for d in meta["sizes"]]
        strides = [int(d["as_int"]) for d in meta["strides"]]
        offset = int(meta["storage_offset"]["as_int"])
        element = _element_size(int(meta["dtype"]))
    except (KeyError, TypeError, ValueError):
        raise SourceError(f"{path}: tensor {str(fqn)[:80]!r} has a malformed or symbolic size", FIX) from None
    if min(sizes + strides + [offset], default=0) < 0:
        raise SourceError(f"{path}: tensor {str(fqn)[:80]!r} has a negative size or stride", FIX)
    numel = math.prod(sizes)
    extent = 0 if numel == 0 else offset + 1 + sum((s - 1) * st for s, st in zip(sizes, strides))
    limit = stored if stored else MAX_ZERO_FILLED_BYTES
    if extent * element > limit:
        raise SourceError(
            f"{path}: tensor {str(fqn)[:80]!r} declares {extent * element:,} bytes but stores {stored:,}", FIX
        )


def _element_size(dtype_code: int) -> int:
    import torch
    from torch._export.serde.schema import ScalarType
    from torch._export.serde.serialize import _SERIALIZE_TO_TORCH_DTYPE

    return torch.empty((), dtype=_SERIALIZE_TO_TORCH_DTYPE[ScalarType(dtype_code)]).element_size()


def _check_sample_inputs(path: Path, payload: bytes) -> None:
    """torch retries a failed `weights_only` load of the sample inputs with full unpickling: refuse such files."""
    import torch

    try:
        torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - any refusal of the safe unpickler means torch would unpickle fully
        raise SourceError(
            f"{path} has sample inputs that only a full (unsafe) unpickle can read ({short_error(e, 200)})", FIX
        ) from None


def load_exported_program(path: str | Path):
    """`torch.export.load` of an inspected archive, with its guard code dropped and only tensor inputs allowed."""
    import torch

    path = Path(path)
    inspect_archive(path)
    try:
        program = torch.export.load(str(path))
    except Exception as e:  # noqa: BLE001 - torch raises many types for malformed programs
        raise SourceError(f"{path} is not a loadable torch.export program ({short_error(e, 200)})", FIX) from None
    program._guards_code = []  # ExportedProgram.module() would exec these strings
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for name, node in placeholders.items():
        if not isinstance(node.meta.get("val"), torch.Tensor):
            raise SourceError(
                f"input '{name}' of {path} is not a tensor", "export a program whose inputs are all tensors"
            )
    return program
