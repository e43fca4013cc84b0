"""The dataset-format protocol and the store source it yields.

A format is a ``DatasetFormat`` instance (``FORMAT`` in its module) listed in
``workbench.datasets.FORMATS``. The commands ask it, in this order of the pipeline:

``detect(root) -> bool``                  does directory ``root`` hold this format (first match wins)
``source(root, split) -> Source``         region features + proposal boxes per segment (``build-store``)
``text_inputs(root) -> TextInputs``       segments, sentences, queried objects (``text-features``)
``vocab(root) -> ClassVocab``             the class vocabulary the ground truth's labels name (``train``)
``ground_truth(root, split, max_boxed=0)`` {segment key: GTSegment} of a split, None when it has no boxes; with
                                          ``max_boxed`` it may stop after the first that many segments with a box
``rule``                                  the default evaluation rule (``Config.eval_rule = "auto"``)
``glove``                                 the default fixed-word-feature source of ``text-features`` / ``prepare``
``defaults``                              the paper's hyper-parameters for this dataset (``train.config_for``)
``has_source(root, split)``               whether ``build-store`` can read ``split`` (``prepare``)
``validate(root)``                        dataset-level checks on load (``Workspace``), e.g. the holdout protocol
``submission(root, split, gt, boxes)``    predictions per query -> the format's submission JSON (``predict``)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..io import DataError


@dataclass
class SourceSegment:
    """What a layout reader yields per segment, before validation."""

    key: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]  # -> features (T, P, D), boxes (T, P, 4) in source space
    shapes: Callable[[], tuple[tuple, tuple]]          # cheap shape probe of the two arrays
    expected_frames: int | None                        # from the annotation, when there is one
    scale: tuple[float, float]                         # source box space -> annotation pixel space (sx, sy)
    frame_size: tuple[float, float]                    # (width, height) of the source box space


# The box space a store is stamped with (store attrs ``box_space``, ``box_convention``, ``box_source``). Every
# metric compares proposals with annotation boxes, so a store read against annotations must be in BOX_SPACE_ANNOTATION.
BOX_SPACE_ANNOTATION = "annotation-pixels"   # each video's annotation frame (YouCook2-BB rwidth x rheight, 720 wide)
BOX_SPACE_224 = "resized-224x224"            # CI's rpn_box frame, kept when no frame size was known
BOX_SPACE_ABSENT = "absent"                  # no proposal boxes were read (training split; zeros in /boxes)
BOX_CONVENTION = "x1,y1,x2,y2 0-based pixels"


@dataclass
class Source:
    layout: str
    root: Path
    segments: list[SourceSegment]
    notes: str = ""
    box_space: str = BOX_SPACE_ANNOTATION
    box_source: str = ""      # where the boxes came from and how they were converted (recorded in the store)


def npy_shape(path: Path, key: str, what: str) -> tuple:
    if not path.is_file():
        raise DataError(f"segment {key}: missing {what} file {path}")
    try:
        return np.load(path, mmap_mode="r").shape
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"segment {key}: unreadable {what} file {path} ({e})") from None


def npy_load(path: Path, key: str, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"segment {key}: unreadable {what} file {path} ({e})") from None


class DatasetFormat:
    """Base of every format; a step a format cannot serve raises a DataError saying so."""

    name = ""            # the ``dataset`` value of dataset.json / paper tables
    rule = "stvg"        # default evaluation rule
    glove = "yc2-vocab"  # default GloVe source of text-features (workbench.text.glove)
    defaults: dict = {}  # Config values the paper used on this dataset, applied unless a preset / --set says otherwise

    def detect(self, root: Path) -> bool:
        raise NotImplementedError

    def source(self, root: Path, split: str) -> Source:
        raise DataError(f"{root}: the {self.name} format has no feature-store reader")

    def text_inputs(self, root: Path):
        raise DataError(f"{root}: the {self.name} format has no text-input reader")

    def vocab(self, root: Path):
        raise DataError(f"{root}: the {self.name} format has no class vocabulary reader")

    def ground_truth(self, root: Path, split: str, max_boxed: int = 0):
        raise DataError(f"{root}: training/evaluation runs on the {self.name} format need a ground-truth "
                        "reader, which this format does not have yet")

    def has_source(self, root: Path, split: str) -> bool:
        raise NotImplementedError

    def validate(self, root: Path) -> None:
        """Dataset-level checks a run makes on load; DataError naming the file and key on failure."""

    def submission(self, root: Path, split: str, gt: dict, boxes: dict) -> dict:
        """{key: boxes (K, T, 4) per query} -> the submission JSON ``evaluate`` reads for this format."""
        raise DataError(f"{root}: the {self.name} format has no submission writer")

    def __repr__(self) -> str:
        return f"<format {self.name}>"
