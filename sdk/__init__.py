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
    """Convert a model source to an artifact folder; see `bmsdk convert --help` for the options."""
    from .converters.pipeline import convert as _convert  # the converters layer: imported on use

    return _convert(source, target=target, output=output, **options)


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
