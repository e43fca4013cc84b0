"""ActivityNet-Entities formats: the cleaned annotation JSON, GVD region features
``fc6_feat_100rois/<vid>_segment_<NN>.npy`` (10, 100, 2048) and the GVD proposal h5
(``dets_num``, ``dets_labels`` [S, 1000, 7] = x1, y1, x2, y2, frame, class, confidence)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..io import expect, read_json

FRAMES_PER_SEGMENT = 10  # GVD samples the middle frame of 10 equal clips of a segment
GVD_FEATURES = "fc6_feat_100rois"
GVD_INDEX = "dic_anet.json"
PROPOSAL_H5 = "anet_detection_vg_fc6_feat_100rois.h5"   # the name `simulate --dataset anet` writes (*det*.h5)
SPLIT_IDS = "split_ids_anet_entities.json"


def anet_key(vid: str, seg: int | str) -> str:
    """Key of a segment, as in GVD's feature file names: ``<vid>_segment_<NN>``."""
    return f"{vid}_segment_{int(seg):02d}"


@dataclass
class AnetSegment:
    vid: str
    seg: str
    tokens: list[str]
    process_clss: list[list[str]]   # class words of each annotated box (noun phrase)
    process_idx: list[list[int]]    # their word indices into tokens
    frame_ind: list[int]            # annotated frame (0-9) of each box
    process_bnd_box: list[list[float]]  # x1, y1, x2, y2 of each box (720-wide frame)
    timestamps: list[float]
    crowds: list[int]

    @property
    def key(self) -> str:
        return anet_key(self.vid, self.seg)


def load_anet_annotations(path: str | Path) -> tuple[list[str], dict[str, AnetSegment]]:
    """Read a cleaned ActivityNet-Entities JSON -> (vocab, segments by key)."""
    raw = read_json(path)
    expect(isinstance(raw, dict) and isinstance(raw.get("annotations"), dict) and isinstance(raw.get("vocab"), list),
           str(path), "expected {'vocab': [...], 'annotations': {vid: ...}}")
    vocab = set(raw["vocab"])
    out: dict[str, AnetSegment] = {}
    for vid, video in raw["annotations"].items():
        expect(isinstance(video, dict) and isinstance(video.get("segments"), dict), f"{path}: video {vid}",
               "expected a 'segments' object")
        for seg, s in video["segments"].items():
            where = f"{path}: video {vid} segment {seg}"
            need = ("tokens", "process_clss", "process_idx", "frame_ind", "process_bnd_box", "timestamps")
            expect(isinstance(s, dict) and all(k in s for k in need), where, f"expected keys {need}")
            expect(len(s["process_clss"]) == len(s["process_idx"]), where, "process_clss and process_idx differ in length")
            nb = len(s["process_bnd_box"])
            expect(len(s["frame_ind"]) == nb, where, "frame_ind and process_bnd_box differ in length")
            expect(nb == 0 or nb == len(s["process_clss"]), where,
                   f"{nb} boxes but {len(s['process_clss'])} annotated phrases")
            for j, idx in enumerate(s["process_idx"]):
                expect(all(0 <= i < len(s["tokens"]) for i in idx) or not s["tokens"], where,
                       f"phrase {j}: word index {idx} outside the {len(s['tokens'])} tokens")
            for j, f in enumerate(s["frame_ind"]):
                expect(isinstance(f, int) and 0 <= f < FRAMES_PER_SEGMENT, where, f"box {j}: frame_ind {f!r} not in 0..9")
            for j, b in enumerate(s["process_bnd_box"]):
                ok = (isinstance(b, list) and len(b) == 4 and all(isinstance(x, (int, float)) for x in b)
                      and b[2] >= b[0] and b[3] >= b[1])
                expect(ok, where, f"box {j}: malformed process_bnd_box {b!r}, expected [x1, y1, x2, y2] ordered")
            for j, cl in enumerate(s["process_clss"]):
                unknown = [c for c in cl if c not in vocab]
                expect(not unknown, where, f"phrase {j}: classes {unknown} not in the file's vocab")
            seg_obj = AnetSegment(vid, str(seg), list(s["tokens"]), s["process_clss"], s["process_idx"],
                                  list(s["frame_ind"]), s["process_bnd_box"], s["timestamps"],
                                  list(s.get("crowds", [])))
            out[seg_obj.key] = seg_obj
    return list(raw["vocab"]), out


def load_split_ids(path: str | Path) -> dict[str, list[str]]:
    """``split_ids_anet_entities.json``: {training, validation, testing, hidden_test: [vid]}."""
    raw = read_json(path)
    expect(isinstance(raw, dict) and all(isinstance(v, list) for v in raw.values()), str(path),
           "expected {split: [video ids]}")
    return raw


CLEANED_PREFIX = "anet_entities_cleaned_class_thresh50_"


def anet_text_files(root: str | Path) -> list[Path]:
    """The cleaned annotation JSONs of an ActivityNet-Entities directory (trainval, test, ...)."""
    return sorted(Path(root).glob(f"{CLEANED_PREFIX}*.json"))


def is_anet_text_root(root: str | Path) -> bool:
    return bool(anet_text_files(root))


def is_gvd_root(root: Path) -> bool:
    return (Path(root) / GVD_FEATURES).is_dir()


def proposal_h5(root: Path) -> Path:
    cands = sorted(p for p in Path(root).glob("*.h5") if "det" in p.name)
    expect(len(cands) == 1, str(root), f"expected exactly one GVD proposal h5 (*det*.h5), found {[p.name for p in cands]}")
    return cands[0]


def proposal_index(root: Path) -> list[str]:
    """Row order of the GVD proposal h5: the segments of ``dic_anet.json['videos']``, in order.

    Each entry names its segment as GVD writes it (``id`` = ``<vid>_segment_<NN>``, which GVD's loader splits;
    ``vid_id``/``seg_id`` beside it), or by ``vid``/``video_id`` and ``seg``/``seg_id``.
    """
    path = Path(root) / GVD_INDEX
    info = read_json(path)
    videos = info.get("videos") if isinstance(info, dict) else None
    expect(isinstance(videos, list), str(path), "expected {'videos': [{id, vid_id, seg_id, ...}, ...]} in proposal-row order")
    keys = []
    for i, v in enumerate(videos):
        where = f"{path}: videos[{i}]"
        expect(isinstance(v, dict), where, "expected an object")
        sid = v.get("id")
        if isinstance(sid, str) and "_segment_" in sid:
            vid, _, seg = sid.rpartition("_segment_")
            expect(seg.isdigit(), where, f"id {sid!r}: expected '<vid>_segment_<NN>'")
        else:
            vid = v.get("vid", v.get("video_id", v.get("vid_id")))
            seg = v.get("seg", v.get("seg_id"))
            expect(vid is not None and seg is not None, where,
                   "needs 'id' ('<vid>_segment_<NN>', as GVD writes it) or 'vid' and 'seg'")
        keys.append(anet_key(vid, seg))
    return keys


def load_vg_vocab(path: str | Path) -> list[list[str]]:
    """Read GVD's ``vg_object_vocab.txt`` -> synonyms by detector class id.

    Line i (0-based) is class i + 1, with comma-separated synonyms; class 0 is ``__background__``.
    These ids are column 5 of ``dets_labels`` in the GVD proposal h5.
    """
    path = Path(path)
    expect(path.is_file(), str(path), "file not found")
    out = [["__background__"]]
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        names = [n.strip() for n in line.split(",")]
        expect(all(names), f"{path}:{lineno}", f"empty class name in {line!r}")
        out.append(names)
    expect(len(out) > 1, str(path), "no classes")
    return out
