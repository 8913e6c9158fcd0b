"""The layers import one way: core <- tasks <- runtimes <- converters <- benchmarks <- cli.

import-linter cannot see bmsdk (one import package spread over four top-level folders), so this test parses every
module with `ast` and checks each import of a bmsdk module, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {
    "sdk": "bmsdk",
    "converters": "bmsdk.converters",
    "runtimes": "bmsdk.runtimes",
    "benchmarks": "bmsdk.benchmarks",
}
LAYERS = ["core", "tasks", "runtimes", "converters", "benchmarks", "cli"]  # each may import only those before it
FACADE = "bmsdk"  # sdk/__init__.py: the lazy facade over load/convert/benchmark, above every layer


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "core"


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported bmsdk module, line, inside a function) for every import in the file."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            local = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            names = []
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - child.level + 1]
                    names = [".".join(base + ([child.module] if child.module else []))]
                elif child.module == "bmsdk":  # from bmsdk import cleanup: the module bmsdk.cleanup
                    names = [f"bmsdk.{alias.name}" for alias in child.names]
                else:
                    names = [child.module or ""]
            elif isinstance(child, ast.Import):
                names = [a.name for a in child.names]
            found.extend((n, child.lineno, local) for n in names if n == "bmsdk" or n.startswith("bmsdk."))
            visit(child, local)

    visit(tree, False)
    return found


def test_every_module_is_seen():
    names = modules()
    assert {
        "bmsdk.errors",
        "bmsdk.tasks",
        "bmsdk.runtimes.model",
        "bmsdk.converters.pipeline",
        "bmsdk.benchmarks.harness",
        "bmsdk.cli",
    } <= set(names)
    assert len(names) > 60


def test_layers_import_one_way():
    wrong = []
    for module, path in modules().items():
        if module == FACADE:
            continue
        here = LAYERS.index(layer_of(module))
        for target, line, _ in imports(module, path):
            if target == FACADE:
                wrong.append(f"{path.relative_to(ROOT)}:{line} imports the facade `bmsdk` (import the module itself)")
            elif LAYERS.index(layer_of(target)) > here:
                wrong.append(
                    f"{path.relative_to(ROOT)}:{line} ({layer_of(module)}) imports {target} ({layer_of(target)})"
                )
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_function_local_imports_of_bmsdk_modules():
    """Only the facade imports lazily (to keep `import bmsdk` free of torch and runtimes)."""
    local = [
        f"{path.relative_to(ROOT)}:{line} imports {target} inside a function"
        for module, path in modules().items()
        if module != FACADE
        for target, line, in_function in imports(module, path)
        if in_function
    ]
    assert not local, "\n".join(local)


def test_the_checker_catches_an_upward_import(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("from bmsdk.cli import main\n\ndef f():\n    from bmsdk.runtimes import open_backend\n")
    found = imports("bmsdk.runtimes.bad", path)
    assert ("bmsdk.cli", 1, False) in found and ("bmsdk.runtimes", 4, True) in found
    assert LAYERS.index(layer_of("bmsdk.cli")) > LAYERS.index(layer_of("bmsdk.runtimes.bad"))
