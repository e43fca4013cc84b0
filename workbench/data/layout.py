"""Where each file of a YouCook2-BB-layout dataset directory lives (see docs/ARCHITECTURE.md)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io import DataError
from ..paths import (ANNOTATION_NAMES, CLASS_FILE, FEATURE_DIR, SENTENCES_FILE, SPLIT_DICT_NAMES, SPLITS, STORE_DIR,
                     TEXT_FEATURES_FILE, YOUCOOKII_FILE)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"split {split!r}: expected one of {SPLITS}")
    return split


@dataclass(frozen=True)
class DatasetDir:
    """A dataset directory in the YouCook2-BB layout."""

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    def _file(self, name: str) -> Path:
        p = self.root / name
        if not p.is_file():
            raise DataError(f"{p}: file not found (expected in dataset directory {self.root})")
        return p

    @property
    def class_file(self) -> Path:
        return self._file(CLASS_FILE)

    @property
    def sentences(self) -> Path:
        return self._file(SENTENCES_FILE)

    @property
    def youcookii(self) -> Path:
        return self._file(YOUCOOKII_FILE)

    def split_dict(self, split: str) -> Path:
        return self._file(SPLIT_DICT_NAMES[check_split(split)])

    def annotations(self, split: str) -> Path:
        """Official-format box annotations of validation/testing."""
        names = ANNOTATION_NAMES.get(check_split(split))
        if names is None:
            raise DataError(f"split {split}: YouCook2-BB has no box annotations for training")
        for n in names:
            if (self.root / n).is_file():
                return self.root / n
        raise DataError(f"{self.root}: none of {names} found (box annotations of {split})")

    def has_annotations(self, split: str) -> bool:
        return any((self.root / n).is_file() for n in ANNOTATION_NAMES.get(split, ()))

    @property
    def feature_root(self) -> Path:
        """Root of the per-segment .npy layout: DIR/region_features if present, else DIR itself."""
        sub = self.root / FEATURE_DIR
        return sub if sub.is_dir() else self.root

    def store(self, split: str) -> Path:
        return self.root / STORE_DIR / f"{check_split(split)}.h5"

    @property
    def text_features(self) -> Path:
        return self.root / TEXT_FEATURES_FILE
