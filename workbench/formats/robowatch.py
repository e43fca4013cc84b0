"""RoboWatch (``robowatch_annotations.json`` in the NAFAE-lineage layout, readers in
``workbench.data.robowatch``): per-segment .npy features as YouCook2-BB, frame counts from the
annotation, boxes in the 224x224 frame. Sentences and split dicts as in a YouCook2-BB directory."""
from __future__ import annotations

from pathlib import Path

from ..data.robowatch import ANNOTATION_NAME, is_robowatch_root, load_robowatch
from ..io import expect
from .base import DatasetFormat, Source
from .yc2 import FORMAT as YC2, yc2_source


def robowatch_source(root: Path, split: str) -> Source:
    """Store source: per-segment npy features, frame counts from the annotation, 224x224 boxes."""
    src = yc2_source(root, split)  # same file layout; frame counts below come from the annotation
    ann = load_robowatch(Path(root) / ANNOTATION_NAME)
    for s in src.segments:
        expect(s.key in ann, str(Path(root) / ANNOTATION_NAME), f"segment {s.key} has no annotation")
        s.expected_frames = len(ann[s.key].frames)
        s.scale = (1.0, 1.0)
    src.layout = "robowatch-per-segment-npy"
    src.notes = "RoboWatch boxes live in the 224x224 frame of the annotation: stored unscaled"
    return src


class RoboWatch(DatasetFormat):
    name = "robowatch"
    rule = "stvg"

    def detect(self, root: Path) -> bool:
        return is_robowatch_root(root)

    def source(self, root: Path, split: str) -> Source:
        return robowatch_source(Path(root), split)

    def text_inputs(self, root: Path):
        return YC2.text_inputs(root)      # sentences and split dicts in the YouCook2-BB files

    def vocab(self, root: Path):
        return YC2.vocab(root)


FORMAT = RoboWatch()
