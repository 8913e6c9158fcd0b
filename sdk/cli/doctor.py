"""`bmsdk doctor`: which converters and runtimes are installed, their versions, and whether a GPU is present.

Everything it checks comes from the registries: each target's `requirements`, each backend's `requirements`.
"""

from __future__ import annotations

import platform
import shutil
import subprocess

from bmsdk.converters import all_targets
from bmsdk.runtimes import backend_class, backend_names
from bmsdk.version import __version__
from bmsdk.versions import package_version

GPU_BACKENDS = ("tensorrt",)  # backends that need an NVIDIA GPU besides their packages


def gpu() -> str | None:
    """The NVIDIA GPUs that nvidia-smi lists, without importing any CUDA library."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip().replace("\n", "; ") or None if out.returncode == 0 else None


def _readiness(needs: tuple[str, ...], versions: dict) -> tuple[bool, str]:
    missing = [p for p in needs if not versions.get(p)]
    return not missing, ", ".join(missing)


def diagnose() -> dict:
    targets = all_targets()
    backends = {name: backend_class(name) for name in backend_names()}
    converters = list(dict.fromkeys(p for t in targets for p in t.requirements))
    runtimes = list(dict.fromkeys(p for cls in backends.values() for p in cls.requirements))
    versions = {p: package_version(p) for p in converters + runtimes}
    device = gpu()
    runs = {}
    for name in GPU_BACKENDS:
        if name in backends:
            ok, why = _readiness(backends[name].requirements, versions)
            missing = [why] if why else []
            runs[name] = (ok and device is not None, ", ".join(missing + ([] if device else ["an NVIDIA GPU"])))
    return {
        "bmsdk": __version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "gpu": device,
        "runtimes": {p: versions[p] for p in runtimes},
        "converters": {p: versions[p] for p in converters},
        "targets": {t.name: _readiness(t.requirements, versions) for t in targets},
        "backends": {name: _readiness(cls.requirements, versions) for name, cls in backends.items()},
        "run_targets": runs,
    }
