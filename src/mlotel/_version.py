"""The package version: one source, the installed distribution's metadata (pyproject)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["VERSION"]

try:
    VERSION = version("mlotel")
except PackageNotFoundError:  # imported from a source tree that was never installed
    VERSION = "0+unknown"
