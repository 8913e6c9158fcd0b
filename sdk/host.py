"""The machine this process runs on: its CPU model and the ISA flags that decide which int8 kernels run. Stdlib only."""

from __future__ import annotations

import functools
import platform

ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
)
ISA_FLAGS_ARM = ("neon", "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16")
X86 = ("x86_64", "amd64", "i386", "i686")


@functools.cache
def cpuinfo() -> tuple[str, tuple[str, ...]]:
    """The CPU model and those of its ISA flags that matter to inference (VNNI, AMX, NEON dot products, ...)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Hardware") and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    wanted = ISA_FLAGS + ISA_FLAGS_ARM
    return model, tuple(sorted(f for f in set(flags) if f in wanted))


def int8_products_saturate() -> bool:
    """Whether uint8 x int8 products here go through int16 sums that saturate: x86 without VNNI (vpmaddubsw), as
    onnxruntime's kernels do there; its `reduce_range` (7-bit weights) keeps them in range. Unknown flags on x86
    count as no VNNI."""
    if platform.machine().lower() not in X86:
        return False
    return not {"avx512_vnni", "avx_vnni"} & set(cpuinfo()[1])
