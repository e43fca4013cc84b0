"""RoboWatch in the layout of the public NAFAE-lineage evaluator:
``{vid: {'frm': [[frame ids] per segment], 'entity': [{'noun': [...]}] per segment,
'box': {frame_id: {'box': [[x1, y1, x2, y2]] (224x224 frame), 'label': [noun, ...]}}}}``.
Region features use the per-segment layout ``<root>/<split>/<vid>_<seg:02d>.npy`` (+ rpn_box).

RoboWatch (``robowatch_annotations.json`` in the NAFAE-lineage layout, readers in
``workbench.datasets.robowatch``): per-segment .npy features as YouCook2-BB, frame counts from the
annotation, boxes in the 224x224 frame. Sentences and split dicts as in a YouCook2-BB directory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io import expect, read_json
from ..records import seg_key
from .base import DatasetFormat, Source
from .yc2 import FORMAT as YC2, yc2_has_source, yc2_source, yc2_submission


# === from data.robowatch ===========================================================================


ANNOTATION_NAME = "robowatch_annotations.json"


@dataclass
class RoboSegment:
    vid: str
    seg: int
    frames: list[str]                          # frame ids of the segment, in order
    nouns: list[str]                           # open-vocabulary queries of the segment
    boxes: dict[str, list[tuple[list[float], str]]]  # frame id -> [(box in 224x224, label)]

    @property
    def key(self) -> str:
        return seg_key(self.vid, self.seg)


def load_robowatch(path: str | Path) -> dict[str, RoboSegment]:
    raw = read_json(path)
    expect(isinstance(raw, dict), str(path), "expected {vid: {'frm', 'entity', 'box'}}")
    out: dict[str, RoboSegment] = {}
    for vid, v in raw.items():
        where = f"{path}: video {vid}"
        expect(isinstance(v, dict) and all(k in v for k in ("frm", "entity", "box")), where,
               "expected keys 'frm', 'entity', 'box'")
        expect(len(v["frm"]) == len(v["entity"]), where,
               f"{len(v['frm'])} segments in 'frm' but {len(v['entity'])} in 'entity'")
        boxes: dict[str, list] = {}
        for fid, b in v["box"].items():
            wf = f"{where} frame {fid}"
            expect(isinstance(b, dict) and len(b.get("box", [])) == len(b.get("label", [])), wf,
                   "expected {'box': [[x1,y1,x2,y2]], 'label': [...]} of equal length")
            for bb in b["box"]:
                ok = (isinstance(bb, list) and len(bb) == 4 and all(isinstance(x, (int, float)) for x in bb)
                      and bb[2] >= bb[0] and bb[3] >= bb[1])
                expect(ok, wf, f"malformed box {bb!r}: expected [x1, y1, x2, y2] with x2 >= x1, y2 >= y1")
            boxes[str(fid)] = [(list(map(float, bb)), str(lab)) for bb, lab in zip(b["box"], b["label"])]
        for s, (frames, ent) in enumerate(zip(v["frm"], v["entity"])):
            expect(isinstance(ent, dict) and isinstance(ent.get("noun"), list), f"{where} segment {s}",
                   "entity must be {'noun': [...]}")
            fr = [str(f) for f in frames]
            out[seg_key(vid, s)] = RoboSegment(vid, s, fr, [str(n) for n in ent["noun"]],
                                               {f: boxes[f] for f in fr if f in boxes})
    return out


def is_robowatch_root(root: Path) -> bool:
    return (Path(root) / ANNOTATION_NAME).is_file()


# === from formats.robowatch ========================================================================


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

    def has_source(self, root: Path, split: str) -> bool:
        return yc2_has_source(Path(root), split)

    def submission(self, root: Path, split: str, gt: dict, boxes: dict) -> dict:
        return yc2_submission(Path(root), split, gt, boxes)     # RoboWatch answers in YouCook2-BB's format


FORMAT = RoboWatch()
