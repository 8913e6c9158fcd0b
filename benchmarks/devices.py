"""What a worker holds: a fingerprint (CPU model, ISA flags, OS, runtime versions) and the Ray custom resources
it advertises (`cpu:<model>`, `gpu:<name>`, `tensorrt:<version>`, `coreml`, `android:<serial>`).

    ray start --address HEAD:6379 --resources="$(python -m bmsdk.benchmarks.devices)"
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from bmsdk.host import cpuinfo

RUNTIMES = ("onnxruntime", "ai-edge-litert", "coremltools", "executorch", "tensorrt", "torch", "numpy", "bmsdk")


def slug(text: str) -> str:
    """A resource-name-safe form of a device name: 'Intel(R) Xeon(R) CPU @ 2.2GHz' -> 'intel-xeon-cpu-2.2ghz'."""
    text = re.sub(r"\((r|tm)\)", "", text.lower())
    return re.sub(r"[^a-z0-9.]+", "-", text).strip("-") or "unknown"


def governor() -> str | None:
    """The CPU frequency governor (performance, powersave, ...), where the kernel exposes one (not in most VMs)."""
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip() or None
    except OSError:
        return None


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def android_serials(run=subprocess.run) -> list[str]:
    """Serials of phones `adb devices` lists as ready (none when adb is not installed)."""
    if not shutil.which("adb"):
        return []
    try:
        out = run(["adb", "devices"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in out.splitlines()[1:] if line.strip().endswith("device")]


def versions() -> dict[str, str]:
    found = {}
    for lib in RUNTIMES:
        try:
            found[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            pass
    return found


def fingerprint() -> dict:
    """This worker, as each report cell names it."""
    cpu, flags = cpuinfo()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "isa": list(flags),
        "os": platform.platform(),
        "python": platform.python_version(),
        "gpus": _gpus(),
        "runtimes": versions(),
    }


def resources() -> dict[str, float]:
    """The custom resources this machine advertises: one unit per device (a CPU model: one per core)."""
    cpu, _ = cpuinfo()
    held = {f"cpu:{slug(cpu)}": float(os.cpu_count() or 1)}
    for name in _gpus():
        held[f"gpu:{slug(name)}"] = held.get(f"gpu:{slug(name)}", 0.0) + 1.0
    trt = versions().get("tensorrt")
    if trt and _gpus():
        held[f"tensorrt:{trt}"] = 1.0
    if platform.system() == "Darwin" and "coremltools" in versions():
        held["coreml"] = 1.0
    for serial in android_serials():
        held[f"android:{serial}"] = 1.0
    return held


if __name__ == "__main__":
    print(json.dumps(resources()))
