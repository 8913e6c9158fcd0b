"""bmsdk: convert, run and benchmark models on ONNX, TensorRT, CoreML and TFLite/LiteRT.

`import bmsdk` stays light (numpy only): converters import torch inside the functions that need it.
"""

from .errors import (BackendUnavailableError, BmsdkError, ConversionError, DataError, InputError, IntegrityError,
                     ManifestError, ModelFileError, RunError, SignatureError, SigningKeyError, SourceError,
                     UnsupportedError)
from .model import Model, load

__version__ = "0.1.0"


def convert(source, target: str = "onnx", output=None, **options):
    """Convert a model source to an artifact folder; see `bmsdk convert --help` for the options."""
    from .pipeline import convert as _convert

    return _convert(source, target=target, output=output, **options)


def benchmark(source=None, out_dir="reports/bench", **options):
    """Latency against accuracy over targets x precisions; see `bmsdk bench --help`. Returns a BenchResult."""
    from bmsdk.benchmarks.api import benchmark as _benchmark

    return _benchmark(source, out_dir, **options)


__all__ = ["load", "convert", "benchmark", "Model", "BmsdkError", "SourceError", "DataError", "UnsupportedError",
           "ManifestError", "IntegrityError", "ModelFileError", "RunError", "SignatureError", "SigningKeyError", "InputError",
           "BackendUnavailableError", "ConversionError", "__version__"]
