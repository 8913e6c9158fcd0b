"""bmsdk: convert, run and benchmark models on ONNX, TensorRT, CoreML, TFLite/LiteRT and ExecuTorch.

A lazy facade: `import bmsdk` loads the errors and nothing heavy (no torch, no runtime). `load`, `convert` and
`benchmark` import their layer on first use.
"""

from .errors import (
    BackendUnavailableError,
    BmsdkError,
    ConversionError,
    DataError,
    InputError,
    IntegrityError,
    ManifestError,
    ModelFileError,
    RunError,
    SignatureError,
    SigningKeyError,
    SourceError,
    UnsupportedError,
)
from .version import __version__


def load(path, backend=None, threads=None, verify=True, public_key=None, **options):
    """Open an artifact folder and return a `Model`; see `bmsdk.runtimes.model.load`."""
    from .runtimes.model import load as _load  # the runtimes layer sits above core: imported on use

    return _load(path, backend=backend, threads=threads, verify=verify, public_key=public_key, **options)


def convert(source, target: str = "onnx", output=None, **options):
    """Convert a model source to an artifact folder; see `bmsdk convert --help` for the options.

    precision="auto" searches the target's precisions (`optimize` with this one target) and returns its
    OptimizeResult."""
    if options.get("precision") == "auto":
        return _auto_precision(source, target, output, options)
    from .converters.pipeline import convert as _convert  # the converters layer: imported on use

    return _convert(source, target=target, output=output, **options)


def optimize(source, targets, eval_data, output=None, **options):
    """The fastest (or smallest) artifact within an accuracy budget, searched over targets x precisions; see
    `bmsdk optimize --help`. Returns an OptimizeResult (the shipped path, the chosen candidate, the report)."""
    from .benchmarks.optimize import optimize as _optimize  # the benchmarks layer: imported on use

    return _optimize(source, targets, eval_data, output=output, **options)


def _auto_precision(source, target: str, output, options: dict):
    options = {k: v for k, v in options.items() if k != "precision" and v is not None}
    options.setdefault("max_accuracy_drop", 0.5)
    if isinstance(options.get("prune"), float):
        options["prune"] = [options["prune"]]
    if options.get("objective") in (None, "accuracy"):
        options["objective"] = "latency"
    return optimize(source, [target], options.pop("eval_data", None), output=output, **options)


def benchmark(source=None, out_dir="reports/bench", **options):
    """Latency against accuracy over targets x precisions; see `bmsdk bench --help`. Returns a BenchResult."""
    from .benchmarks.api import benchmark as _benchmark  # the benchmarks layer: imported on use

    return _benchmark(source, out_dir, **options)


def __getattr__(name: str):
    if name == "Model":  # the class, for isinstance checks and type hints, without importing the runtimes eagerly
        from .runtimes.model import Model

        return Model
    raise AttributeError(f"module 'bmsdk' has no attribute {name!r}")


__all__ = [
    "load",
    "convert",
    "benchmark",
    "optimize",
    "Model",
    "BmsdkError",
    "SourceError",
    "DataError",
    "UnsupportedError",
    "ManifestError",
    "IntegrityError",
    "ModelFileError",
    "RunError",
    "SignatureError",
    "SigningKeyError",
    "InputError",
    "BackendUnavailableError",
    "ConversionError",
    "__version__",
]
