"""Installed package versions, read from package metadata without importing the packages."""

from __future__ import annotations

from importlib import metadata


def package_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
