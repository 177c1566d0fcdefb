"""The gallery's documents that are not code (the explorer page, the README), as package data."""

from __future__ import annotations

from importlib import resources


def read(name: str) -> str:
    """The text of ``templates/<name>``, as installed with the package (``importlib.resources``)."""
    return resources.files("lrsweep.gallery").joinpath("templates").joinpath(name).read_text(encoding="utf-8")
