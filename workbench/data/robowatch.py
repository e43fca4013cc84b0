"""RoboWatch in the layout of the public NAFAE-lineage evaluator:
``{vid: {'frm': [[frame ids] per segment], 'entity': [{'noun': [...]}] per segment,
'box': {frame_id: {'box': [[x1, y1, x2, y2]] (224x224 frame), 'label': [noun, ...]}}}}``.
Region features use the per-segment layout ``<root>/<split>/<vid>_<seg:02d>.npy`` (+ rpn_box)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io import expect, read_json
from .yc2 import seg_key

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
