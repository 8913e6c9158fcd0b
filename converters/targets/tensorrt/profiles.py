"""Optimization profiles: the min/opt/max shape of every input, made from its named dynamic dims. Pure Python.

A profile is `{input_name: Profile(min=[...], opt=[...], max=[...])}`. Fixed dims are the same in all three.
Users override with `--shapes DIM=min:opt:max` (a named dim such as `batch`) or
`--shapes INPUT=1x3x224x224:8x3x224x224:32x3x224x224` (a whole input).
"""

from __future__ import annotations

from collections.abc import Sequence

from bmsdk.errors import UnsupportedError
from bmsdk.manifest import TensorSpec, dim_size, split_dim
from bmsdk.sections import Profile

DEFAULT_BATCH = (1, 8, 32)


GENERATION_BATCH = (1, 1, 8)


def default_dims(max_length: int | None, generation: bool = False) -> dict[str, tuple[int, int, int]]:
    """batch 1:8:32 and sequence 1:max/2:max; a text-generation step graph is tuned for decoding (batch 1, one
    new token) and takes prompts up to the cache length."""
    dims = {"batch": GENERATION_BATCH if generation else DEFAULT_BATCH}
    if max_length:
        dims["sequence"] = (1, 1 if generation else max(1, max_length // 2), max_length)
    return dims


def parse_shapes(items: Sequence[str] | None) -> dict[str, list]:
    """`["batch=1:8:64", "input=1x1x28x28:8x1x28x28:64x1x28x28"]` -> {"batch": [1, 8, 64], "input": [[..], [..],
    [..]]}."""
    parsed: dict[str, list] = {}
    for item in items or []:
        name, _, value = item.partition("=")
        parts = value.split(":")
        try:
            if not name or len(parts) != 3:
                raise ValueError
            values = [[int(d) for d in p.split("x")] if "x" in p else int(p) for p in parts]
        except ValueError:
            raise UnsupportedError(
                f"cannot read the shape range '{item}'",
                "write NAME=MIN:OPT:MAX, e.g. batch=1:8:32 or input=1x3x224x224:8x3x224x224:32x3x224x224",
            ) from None
        parsed[name] = values
    return parsed


def make_profiles(
    inputs: Sequence[TensorSpec], max_length: int | None, shapes: dict[str, list] | None = None, generation=False
) -> dict[str, Profile]:
    """One profile covering every input, from the named dims (defaults, or `shapes`) and the fixed dims; a derived
    dim ("sequence+256") follows the dim it is derived from."""
    shapes = shapes or {}
    dims = {
        **default_dims(max_length, generation),
        **{k: tuple(v) for k, v in shapes.items() if isinstance(v[0], int)},
    }
    names = {s.name for s in inputs}
    unknown = sorted(
        k for k in shapes if k not in names and k not in {d for s in inputs for d in s.shape if isinstance(d, str)}
    )
    if unknown:
        raise UnsupportedError(
            f"--shapes names {unknown}, which is neither an input nor a dynamic dim of this model",
            f"inputs: {', '.join(s.describe() for s in inputs)}",
        )
    profiles = {}
    for spec in inputs:
        if spec.name in shapes and not isinstance(shapes[spec.name][0], int):
            low, opt, high = shapes[spec.name]
        else:
            missing = [d for d in spec.shape if isinstance(d, str) and split_dim(d)[0] not in dims]
            if missing:
                raise UnsupportedError(
                    f"input '{spec.name}' has dynamic dim(s) {missing} with no default range",
                    f"pass --shapes {missing[0]}=MIN:OPT:MAX",
                )
            low, opt, high = (
                [dim_size(d, {k: v[i] for k, v in dims.items()}, 0) for d in spec.shape] for i in range(3)
            )
        _check_order(spec, low, opt, high)
        profiles[spec.name] = Profile(min=list(low), opt=list(opt), max=list(high))
    return profiles


def _check_order(spec: TensorSpec, low, opt, high) -> None:
    if not len(low) == len(opt) == len(high) == len(spec.shape):
        raise UnsupportedError(
            f"the shape range for '{spec.name}' has the wrong number of dims", f"expected {spec.describe()}"
        )
    for axis, (want, a, b, c) in enumerate(zip(spec.shape, low, opt, high)):
        if not 1 <= a <= b <= c:
            raise UnsupportedError(
                f"the shape range for '{spec.name}' axis {axis} is not 1 <= min <= opt <= max ({a}, {b}, {c})",
                "order the three shapes min:opt:max",
            )
        if isinstance(want, int) and not a == b == c == want:
            raise UnsupportedError(f"input '{spec.name}' axis {axis} is fixed at {want}", f"keep it {want} in --shapes")
