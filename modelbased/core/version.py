"""The package version, read from the installed distribution's metadata (so ``core`` never
imports the package root)."""

from __future__ import annotations

from importlib import metadata


def package_version() -> str:
    """``modelbased``'s installed version; ``0+unknown`` when run from a bare source tree."""
    try:
        return metadata.version("modelbased")
    except metadata.PackageNotFoundError:
        return "0+unknown"
