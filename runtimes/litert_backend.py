"""LiteRT backend: runs a `model.tflite` artifact with ai-edge-litert (XNNPACK on CPU, thread count settable).

It takes and gives what every backend does (the manifest's dtypes, any batch, any sequence length up to the
largest bucket) by applying the boundary record of `target_config` (see `litert_io`). When only the obsolete
`tflite-runtime` or TensorFlow's interpreter is installed it uses that, but first checks it against
`samples.npz` and refuses when it disagrees with the source (tflite-runtime 2.14 was seen to give a silently wrong
result for a dynamic-range model).
"""

from __future__ import annotations

import threading

import numpy as np

from bmsdk.artifact import load_samples
from bmsdk.compare import compare_outputs, recorded_tolerance
from bmsdk.errors import BackendUnavailableError, ManifestError, ModelFileError, RunError
from bmsdk.runtimes.base import Backend, short_error
from bmsdk.runtimes.litert_io import (
    SignatureFeeder,
    fit_sequence,
    from_signature,
    pad_feeds,
    pick_bucket,
    sequence_length,
    signature_for,
)
from bmsdk.sections import LiteRTConfig, SampleCheck
from bmsdk.tasks import get_task

PRIMARY = "ai-edge-litert"
FIX = "pip install 'bmsdk[litert]' (ai-edge-litert==2.3.0)"


def find_interpreter(prefer: str | None = None):
    """(Interpreter class, runtime name): ai-edge-litert, else tflite-runtime, else TensorFlow Lite."""
    candidates = [
        (PRIMARY, "ai_edge_litert.interpreter"),
        ("tflite-runtime", "tflite_runtime.interpreter"),
        ("tensorflow", "tensorflow.lite"),
    ]
    if prefer:
        candidates = [c for c in candidates if c[0] == prefer]
    for name, module in candidates:
        try:
            mod = __import__(module, fromlist=["Interpreter"])
            return mod.Interpreter, name
        except ImportError:
            continue
    raise BackendUnavailableError(
        "no LiteRT interpreter is installed" + (f" ({prefer} asked for)" if prefer else ""), FIX
    )


class KeptRunner:
    """A signature runner that resizes and re-allocates its tensors only when an input shape changes; ai-edge-litert's
    own runner does both on every call. Falls back to that runner where its interpreter's internals differ."""

    def __init__(self, stock):
        self.stock = stock
        self.wrapper = getattr(stock, "_interpreter_wrapper", None)
        needed = ("SetTensor", "Invoke", "GetTensor")
        self.fast = all(hasattr(self.wrapper, a) for a in needed) and hasattr(stock, "_subgraph_index")
        self.shapes = None

    def __call__(self, **feeds: np.ndarray) -> dict[str, np.ndarray]:
        shapes = tuple(v.shape for v in feeds.values())
        if not self.fast or shapes != self.shapes:
            result = self.stock(**feeds)  # resizes and allocates for these shapes
            self.shapes = shapes
            return result
        wrapper, subgraph, inputs = self.wrapper, self.stock._subgraph_index, self.stock._inputs
        for name, value in feeds.items():
            wrapper.SetTensor(inputs[name], value, subgraph)
        wrapper.Invoke(subgraph)
        return {name: wrapper.GetTensor(index, subgraph) for name, index in self.stock._outputs}


def _fits(value_range, signature, name: str) -> bool:
    """Whether every value of the range fits the integer dtype the signature takes for input `name`."""
    dtype = np.dtype(signature.inputs[name].dtype)
    if dtype.kind not in "iu" or signature.inputs[name].quantization:
        return False
    info = np.iinfo(dtype)
    return info.min <= value_range[0] and value_range[1] <= info.max


class LiteRTBackend(Backend):
    name = "litert"
    runs = {"tflite": 0}
    requirements = ("ai-edge-litert",)
    thread_safe = True  # one interpreter per backend; calls are serialised by a lock

    def __init__(self, *args, runtime: str | None = None, verify_on_load: bool | None = None, **kwargs):
        """`runtime` picks the interpreter package; `verify_on_load` (default: only for fallback interpreters)
        checks the artifact's samples on load."""
        self.runtime_request = runtime
        self.verify_on_load = verify_on_load
        super().__init__(*args, **kwargs)

    def _load(self) -> None:
        config = self.manifest.target_config
        if not isinstance(config, LiteRTConfig) or not config.signatures:
            raise ManifestError(
                "this tflite artifact's bmsdk.json records no signatures",
                "re-create it with `bmsdk convert --target tflite`",
            )
        interpreter_class, self.runtime = find_interpreter(self.runtime_request)
        self.signatures = config.signatures
        self.buckets = list(config.sequence_buckets)
        self.pad_values = config.pad_values
        try:
            self.interpreter = interpreter_class(
                model_path=str(self.folder / self.manifest.model_file), num_threads=self.threads
            )
        except Exception as e:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError and others for bad files
            raise ModelFileError(
                f"{self.runtime} cannot load {self.manifest.model_file}: {short_error(e)}",
                "re-create the artifact with `bmsdk convert --target tflite`",
            ) from None
        missing = set(self.signatures) - set(self.interpreter.get_signature_list())
        if missing:
            raise ManifestError(
                f"{self.manifest.model_file} lacks the signature(s) {sorted(missing)} that bmsdk.json records",
                "re-create the artifact with `bmsdk convert --target tflite`",
            )
        self.runners = {name: KeptRunner(self.interpreter.get_signature_runner(name)) for name in self.signatures}
        for name, runner in self.runners.items():
            self._check_signature(name, set(runner.stock.get_input_details()))
        # inputs whose manifest range (checked on every run) already fits the signature's integer dtype
        self._ranged = {
            s.name
            for s in self.inputs
            if s.value_range is not None and _fits(s.value_range, self.signatures[next(iter(self.signatures))], s.name)
        }
        # per signature, compiled once: (model input, tensor name, its feeder)
        self._feeders = {
            name: [(k, t.tensor, SignatureFeeder(t, k in self._ranged)) for k, t in sig.inputs.items()]
            for name, sig in self.signatures.items()
        }
        self._lock = threading.Lock()
        if self.verify_on_load if self.verify_on_load is not None else self.runtime != PRIMARY:
            self.check_samples()

    def _check_signature(self, name: str, tensors: set[str]) -> None:
        """bmsdk.json's boundary record must name the model's inputs and tensors the signature really has."""
        inputs = self.signatures[name].inputs
        if set(inputs) != {s.name for s in self.inputs} or not all(t.tensor in tensors for t in inputs.values()):
            raise ManifestError(
                f"bmsdk.json's record of signature '{name}' does not match {self.manifest.model_file}",
                "re-create the artifact with `bmsdk convert --target tflite`",
            )

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        length = bucket = None
        if self.buckets:
            length = sequence_length(feeds)
            bucket = pick_bucket(length, self.buckets)
            feeds = pad_feeds(feeds, bucket, self.pad_values, self.inputs)
        name = signature_for(bucket)
        signature, runner, feeders = self.signatures[name], self.runners[name], self._feeders[name]
        batch = len(next(iter(feeds.values())))
        with self._lock:  # the exported model takes one example: run the batch row by row
            rows = [
                runner(**{tensor: feed(feeds[k] if batch == 1 else feeds[k][i : i + 1]) for k, tensor, feed in feeders})
                for i in range(batch)
            ]
        outputs = {}
        for spec in self.outputs:
            tensor = signature.outputs[spec.name]
            parts = [from_signature(row[tensor.tensor], tensor, spec.dtype) for row in rows]
            value = parts[0] if batch == 1 else np.concatenate(parts)
            outputs[spec.name] = value if length is None else fit_sequence(value, spec.shape, length)  # as asked
        return outputs

    def check_samples(self) -> SampleCheck:
        """Run samples.npz and compare with the source's outputs; refuse an interpreter that disagrees."""
        inputs, reference, _ = load_samples(self.folder)
        try:
            masks = get_task(self.manifest.task).sample_masks(self.manifest.postprocessing, inputs, reference)
            stats = compare_outputs(reference, self.run(inputs), recorded_tolerance(self.manifest), masks)
        except RunError as e:
            raise BackendUnavailableError(f"{self.runtime} fails to run this model: {e.problem}", FIX) from None
        if not stats.passed:
            raise BackendUnavailableError(
                f"{self.runtime} disagrees with the source on samples.npz ({stats.reason})", FIX
            )
        return stats

    def close(self) -> None:
        self.runners = {}
        self.interpreter = None
