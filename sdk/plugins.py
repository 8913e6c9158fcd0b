"""Plugins found through entry points: targets (`bmsdk.targets`), backends (`bmsdk.backends`), tasks (`bmsdk.tasks`).

bmsdk's own are declared in its pyproject.toml like any third party's, so a package adds one by declaring
`[project.entry-points."bmsdk.targets"] mytarget = "mypkg.target:MyTarget"`. A name claimed twice is an error.
"""

from __future__ import annotations

import functools
from importlib import metadata

from .errors import UnsupportedError

REINSTALL = "reinstall bmsdk (`pip install -e .` in a checkout) so that its entry points are registered"


@functools.cache
def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=group):
        if ep.name in found and found[ep.name].value != ep.value:
            raise UnsupportedError(
                f"two packages register '{ep.name}' in {group}: {found[ep.name].value} and {ep.value}",
                "uninstall one of them",
            )
        found[ep.name] = ep
    if not found:
        raise UnsupportedError(f"no {group} entry points are installed", REINSTALL)
    return found


def load_plugin(group: str, name: str, kind: str):
    """The class registered as `name` in `group`; an unknown name is an UnsupportedError listing the known ones."""
    eps = entry_points(group)
    if name not in eps:
        raise UnsupportedError(f"unknown {kind} '{name}'", f"use one of: {', '.join(sorted(eps))}")
    return eps[name].load()


def plugin_names(group: str) -> list[str]:
    return sorted(entry_points(group))
