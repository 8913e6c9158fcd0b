"""A numpy reference executor for CoreML ML programs (`.mlpackage`), so CoreML artifacts are checked on Linux.

coremltools reads the program (`milproto.load`: ops, their inputs and the weights); every op then runs in numpy
(`mil_ops.OPS`). Compressed weights (`constexpr_*`) are decompressed once, at load. Each result is stored in
the dtype the program declares for it: fp16 values are rounded to fp16 and saturate at ±65504 instead of
overflowing to ±inf, as the Neural Engine does, so the -inf of an fp16 attention mask gives finite
scores (not NaN) as on the device. Its latency is not a device latency.

Stateful programs (iOS18 `StateType` inputs, e.g. a KV cache): `make_state()` gives the states, zeroed, and
`run(feeds, state)` reads and updates them in place (`read_state`, `coreml_update_state`), like CoreML's MLState.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bmsdk.errors import BackendUnavailableError, UnsupportedError
from bmsdk.runtimes.mil_ops import OPS, StateBuffer

FP16_MAX = 65504.0
# ops whose results are (a subset of) their inputs' values, so rounding them again to fp16 changes nothing
MOVES_DATA = frozenset(
    {
        "reshape",
        "transpose",
        "expand_dims",
        "squeeze",
        "slice_by_index",
        "slice_by_size",
        "gather",
        "gather_nd",
        "gather_along_axis",
        "concat",
        "stack",
        "split",
        "tile",
        "identity",
        "relu",
        "max_pool",
        "select",
        "maximum",
        "minimum",
        "band_part",
        "slice_update",
        "read_state",
        "coreml_update_state",
    }
)


@dataclass
class Step:
    op_type: str
    name: str
    args: dict[str, Any]  # MIL parameter -> variable name, list of names, or None
    outputs: list[tuple[str, Any]]  # (name, numpy dtype)
    release: tuple[str, ...] = ()  # values no later step needs


def store(value, dtype) -> Any:
    """A result as the program's dtype says: fp16 rounded (saturating) but kept in float32 for fast numpy math."""
    if isinstance(value, str) or dtype is None:
        return value
    if dtype == np.float16:  # round, then clip in place: an overflow's inf becomes ±65504, as clipping first would give
        rounded = np.asarray(value, np.float32).astype(np.float16).astype(np.float32)
        return np.clip(rounded, -FP16_MAX, FP16_MAX, out=rounded)
    return np.asarray(value).astype(dtype, copy=False)


class MilProgram:
    """One function (default "main") of an ML program: `run(feeds)` gives the outputs by name."""

    def __init__(self, package: str | Path, function: str = "main"):
        program = _read_program(Path(package))
        if function not in program.functions:
            raise UnsupportedError(
                f"{package} has no function '{function}'", f"functions: {', '.join(program.functions)}"
            )
        func = program.functions[function]
        self.states = {name: _state_type(var) for name, var in func.inputs.items() if _is_state(var)}
        self.inputs = {name: _np_dtype(var) for name, var in func.inputs.items() if name not in self.states}
        self.output_names = [var.name for var in func.outputs]
        self.constants: dict[str, Any] = {}
        self.steps: list[Step] = []
        unknown = sorted({op.op_type for op in func.operations if op.op_type != "const" and op.op_type not in OPS})
        if unknown:
            raise UnsupportedError(
                f"the MIL reference executor does not implement the op(s) {', '.join(unknown)}",
                "run this artifact with CoreML on macOS, or add the op to bmsdk/runtimes/mil_ops.py",
            )
        for op in func.operations:
            self._add(op)
        self._plan_release()

    def _add(self, op) -> None:
        if op.op_type == "const":
            var = op.outputs[0]
            self.constants[var.name] = store(var.val, _np_dtype(var))
            return
        if getattr(op, "blocks", None):
            raise UnsupportedError(
                f"op '{op.op_type}' ({op.name}) has nested blocks, which the reference executor does not run",
                "run this artifact with CoreML on macOS",
            )
        args = {
            param: ([v.name for v in var] if isinstance(var, (list, tuple)) else var.name)
            for param, var in op.inputs.items()
        }
        step = Step(op.op_type, op.name, args, [(v.name, _np_dtype(v)) for v in op.outputs])
        if op.op_type.startswith("constexpr_"):  # compressed weights: decompress once
            self._execute(step, self.constants)
        else:
            self.steps.append(step)

    def _plan_release(self) -> None:
        """Free each intermediate after its last use, so long programs on big batches stay small in memory."""
        last_use: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            for name in _names(step.args):
                last_use[name] = i
        keep = set(self.output_names) | set(self.constants) | set(self.inputs) | set(self.states)
        for i, step in enumerate(self.steps):
            # dict.fromkeys: a value passed twice to one op (mul(x=a, y=a)) is released once
            step.release = tuple(n for n in dict.fromkeys(_names(step.args)) if last_use[n] == i and n not in keep)

    def make_state(self) -> dict[str, StateBuffer]:
        """The program's states, zeroed (CoreML's `make_state()`): pass the same one to each `run` of a sequence."""
        return {name: StateBuffer(name, np.zeros(shape, np.float32)) for name, (shape, _) in self.states.items()}

    def write_state(self, state: dict[str, StateBuffer], name: str, value: np.ndarray) -> None:
        """Overwrite one state (CoreML's MLState.write_state), in the state's dtype."""
        shape, dtype = self.states[name]
        if tuple(value.shape) != shape:
            raise UnsupportedError(f"the state '{name}' is {shape}, not {tuple(value.shape)}", f"pass a {shape} array")
        state[name].value = store(np.asarray(value, np.float32), dtype)

    def run(self, feeds: dict[str, np.ndarray], state: dict[str, StateBuffer] | None = None) -> dict[str, np.ndarray]:
        """The outputs by name; a stateful program updates `state` in place (a fresh zero state when None)."""
        missing = set(self.inputs) - set(feeds)
        if missing:
            raise UnsupportedError(f"the program needs the input(s) {sorted(missing)}", f"pass {sorted(self.inputs)}")
        env = dict(self.constants)
        env.update({name: store(feeds[name], dtype) for name, dtype in self.inputs.items()})
        if self.states:
            env.update(self._checked_state(self.make_state() if state is None else state))
        for step in self.steps:
            self._execute(step, env)
            for name in step.release:
                del env[name]
        return {name: env[name] for name in self.output_names}

    def _checked_state(self, state: dict[str, StateBuffer]) -> dict[str, StateBuffer]:
        for name, (shape, dtype) in self.states.items():
            buffer = state.get(name)
            if buffer is None or tuple(buffer.value.shape) != shape:
                raise UnsupportedError(
                    f"the state '{name}' must be {shape}, got {None if buffer is None else buffer.value.shape}",
                    "pass the program's own make_state()",
                )
            buffer.value = store(buffer.value, dtype)
        return {name: state[name] for name in self.states}

    @staticmethod
    def _execute(step: Step, env: dict) -> None:
        args = {
            param: ([env[n] for n in ref] if isinstance(ref, list) else env[ref]) for param, ref in step.args.items()
        }
        try:
            result = OPS[step.op_type](args)
        except Exception as e:
            raise RuntimeError(f"MIL op {step.op_type} ({step.name}) failed: {e}") from e
        results = result if isinstance(result, tuple) else (result,)
        exact = step.op_type in MOVES_DATA  # its outputs hold input values only: already in the declared dtype
        for (name, dtype), value in zip(step.outputs, results):
            env[name] = (
                value
                if exact and isinstance(value, np.ndarray) and value.dtype == np.float32 and dtype == np.float16
                else store(value, dtype)
            )


def _names(args: dict) -> list[str]:
    return [n for ref in args.values() for n in (ref if isinstance(ref, list) else [ref])]


def _is_state(var) -> bool:
    from coremltools.converters.mil.mil import types

    return types.is_state(var.sym_type)


def _state_type(var) -> tuple[tuple[int, ...], Any]:
    """(shape, numpy dtype) of the tensor a state holds."""
    from coremltools.converters.mil.mil import types

    wrapped = var.sym_type.wrapped_type()
    return tuple(int(d) for d in wrapped.get_shape()), np.dtype(types.nptype_from_builtin(wrapped.get_primitive()))


def _np_dtype(var):
    from coremltools.converters.mil.mil import types

    dtype = var.dtype
    if dtype is types.str:
        return None
    return np.dtype(types.nptype_from_builtin(dtype))


def _read_program(package: Path):
    """The PyMIL program of a saved `.mlpackage` (coremltools reads it; nothing here needs macOS)."""
    try:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto import load as milproto
    except ImportError:
        raise BackendUnavailableError(
            "the MIL reference executor needs coremltools to read the model", "pip install 'bmsdk[coreml]'"
        ) from None
    if not package.is_dir():
        raise UnsupportedError(
            f"{package} is not an .mlpackage folder", "re-create the artifact with `bmsdk convert --target coreml`"
        )
    model = ct.models.MLModel(str(package), skip_model_load=True)
    spec = model.get_spec()
    if spec.WhichOneof("Type") != "mlProgram":
        raise UnsupportedError(
            f"{package.name} is a neuralnetwork model, not an ML program", "convert with convert_to='mlprogram'"
        )
    return milproto.load(spec, spec.specificationVersion, file_weights_dir=model.weights_dir)
