"""Dataset formats behind one list (protocol: formats/base.py).

``FORMATS`` is tried in order and the first whose ``detect(root)`` holds serves the directory;
YouCook2-BB, the default layout, comes last. Adding a format = its own module + one line here
(docs/ARCHITECTURE.md, "Add a format").
"""
from __future__ import annotations

from pathlib import Path

from ..io import DataError
from . import anet, robowatch, yc2
from .base import DatasetFormat, Source, SourceSegment

FORMATS: list[DatasetFormat] = [
    anet.FORMAT,        # ActivityNet-Entities: GVD features / cleaned annotation JSONs
    robowatch.FORMAT,   # RoboWatch: robowatch_annotations.json
    yc2.FORMAT,         # YouCook2-BB (STVG/CI, NAFAE per-segment npy): the default
]


def detect(root: str | Path) -> DatasetFormat:
    """The format of dataset directory ``root`` (the first of FORMATS that recognises it)."""
    for fmt in FORMATS:
        if fmt.detect(Path(root)):
            return fmt
    raise DataError(f"{root}: no dataset format recognises this directory; formats: {[f.name for f in FORMATS]}")


def by_name(name: str) -> DatasetFormat:
    for fmt in FORMATS:
        if fmt.name == name:
            return fmt
    raise DataError(f"unknown dataset format {name!r}; formats: {[f.name for f in FORMATS]}")


__all__ = ["FORMATS", "DatasetFormat", "Source", "SourceSegment", "by_name", "detect"]
