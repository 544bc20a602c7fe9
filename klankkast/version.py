"""The installed version of klankkast, for every program's ``--version``."""

from __future__ import annotations

import importlib.metadata

__all__ = ["version"]


def version() -> str:
    """The distribution's version, or ``"unknown"`` when running from a bare checkout."""
    try:
        return importlib.metadata.version("klankkast")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
