"""Plain record types every dataset, the evaluation and the simulators share: the class vocabulary, split
entries, segment timing, boxes and ground-truth segments. Imports nothing of the package but its error type."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import DataError


def seg_key(vid: str, seg: int) -> str:
    """The segment key used by every YouCook2-BB file: ``<vid>_<seg:02d>``."""
    return f"{vid}_{int(seg):02d}"


def parse_seg_key(key: str) -> tuple[str, int]:
    """Inverse of ``seg_key`` (video ids may contain underscores)."""
    vid, _, seg = key.rpartition("_")
    if not vid or not seg.isdigit():
        raise DataError(f"segment key {key!r}: expected '<vid>_<seg:02d>'")
    return vid, int(seg)


@dataclass(frozen=True)
class ClassVocab:
    """The 67 object classes of YouCook2-BB with every surface form that names them."""

    names: list[str]                       # singular form; index = class id
    forms: dict[str, int]                  # lowercase singular / alternative / plural form -> id
    path: str = ""

    def id_of(self, label: str, where: str = "label") -> int:
        cid = self.forms.get(label.strip().lower())
        if cid is None:
            raise DataError(f"{where}: unknown object label {label!r} (not a form in {self.path or 'class file'})")
        return cid

    def alternatives(self, cid: int) -> list[str]:
        return [f for f, i in self.forms.items() if i == cid]

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True)
class SplitEntry:
    split: str
    recipe: str
    vid: str
    seg: int
    class_ids: list[int]

    @property
    def key(self) -> str:
        return seg_key(self.vid, self.seg)


@dataclass(frozen=True)
class SegmentInfo:
    key: str
    vid: str
    seg: int
    start: float
    end: float
    sentence: str
    subset: str
    recipe: str

    @property
    def num_frames(self) -> int:
        """1-fps frames of the segment; frame k is at start + k + 0.5 s."""
        return int(round(self.end - self.start))

    def frame_time(self, k: int) -> float:
        return self.start + k + 0.5


BOX_COORDS = ("xtl", "ytl", "xbr", "ybr")   # a box's corner keys in every YouCook2-BB annotation and submission file


@dataclass(frozen=True)
class Box:
    xtl: float
    ytl: float
    xbr: float
    ybr: float
    occluded: int = 0
    outside: int = 0

    @property
    def counted(self) -> bool:
        """Scored by the reference evaluator: visible and inside the frame."""
        return self.occluded == 0 and self.outside == 0

    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.xtl, self.ytl, self.xbr, self.ybr)

    def to_json(self) -> dict[str, Any]:
        return {"xtl": self.xtl, "ytl": self.ytl, "xbr": self.xbr, "ybr": self.ybr,
                "occluded": int(self.occluded), "outside": int(self.outside)}


@dataclass
class GTObject:
    label: str
    boxes: list[Box | None]                # one per 1-fps frame; None for an empty {} box


@dataclass
class GTSegment:
    key: str
    vid: str
    seg: int
    recipe: str
    rwidth: int
    rheight: int
    objects: list[GTObject] = field(default_factory=list)
    # Which query (text object) answers each GT object, when they differ: ActivityNet-Entities has one GT
    # object per (annotated box, word of its phrase) and one query per distinct (class, word). None: the same.
    query_rows: list[int] | None = None

    @property
    def num_frames(self) -> int:
        return len(self.objects[0].boxes) if self.objects else 0
