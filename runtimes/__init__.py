"""Runtime backends behind one interface, found through the `bmsdk.backends` entry points.

Each backend needs numpy and its own runtime only, and declares which artifact targets it runs (`Backend.runs`).
`Model` and `load` (model.py) join a backend to the artifact's task.
"""

from __future__ import annotations

from pathlib import Path

from bmsdk.errors import UnsupportedError
from bmsdk.manifest import Manifest
from bmsdk.plugins import load_plugin, plugin_names

from .base import Backend, check_feeds

GROUP = "bmsdk.backends"


def backend_class(name: str) -> type[Backend]:
    return load_plugin(GROUP, name, "backend")


def backend_names() -> list[str]:
    return plugin_names(GROUP)


def backends_for(target: str) -> list[str]:
    """The backends that run `target` artifacts, the default first."""
    ranked = [(cls.runs[target], name) for name in backend_names() if target in (cls := backend_class(name)).runs]
    return [name for _, name in sorted(ranked)]


def open_backend(
    folder: Path, manifest: Manifest, backend: str | None = None, threads: int | None = None, **options
) -> Backend:
    choices = backends_for(manifest.target)
    if not choices:
        raise UnsupportedError(
            f"no installed backend runs '{manifest.target}' artifacts",
            "install the package that provides it, or upgrade bmsdk",
        )
    name = backend or choices[0]
    if name not in choices:
        raise UnsupportedError(
            f"backend '{name}' cannot run a '{manifest.target}' artifact", f"use one of: {', '.join(choices)}"
        )
    return backend_class(name)(folder, manifest, threads=threads, **options)


__all__ = ["Backend", "backend_class", "backend_names", "backends_for", "check_feeds", "open_backend"]
