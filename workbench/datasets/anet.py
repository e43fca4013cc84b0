"""ActivityNet-Entities formats: the cleaned annotation JSON, GVD region features
``fc6_feat_100rois/<vid>_segment_<NN>.npy`` (10, 100, 2048) and the GVD proposal h5
(``dets_num``, ``dets_labels`` [S, 1000, 7] = x1, y1, x2, y2, frame, class, confidence).

ActivityNet-Entities in GVD's layout: region features ``fc6_feat_100rois/<vid>_segment_<NN>.npy``
(10, 100, 2048), the proposal h5 (``dets_num``, ``dets_labels``), ``dic_anet.json`` row order,
``split_ids_anet_entities.json``, and the cleaned annotation JSONs that carry the sentences
(readers: ``workbench.datasets.anet``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import DatasetFormat, Source, SourceSegment
from ..io import DataError, expect, read_json
from ..records import Box, ClassVocab, GTObject, GTSegment
from ..text.objects import TextInputs, anet_objects


# === from data.anet ================================================================================


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


# === from formats.anet =============================================================================


def gvd_source(root: Path, split: str) -> Source:
    """Store source for the GVD layout (boxes already in the 720-wide annotation frame)."""
    # h5py only where a store is opened
    import h5py

    root = Path(root)
    ids = load_split_ids(root / "split_ids_anet_entities.json")
    expect(split in ids, str(root / "split_ids_anet_entities.json"), f"no split {split!r}")
    vids = set(ids[split])
    rows = {k: i for i, k in enumerate(proposal_index(root))}
    keys = [k for k in rows if k.rpartition("_segment_")[0] in vids]
    expect(len(keys) > 0, str(root), f"no segments of split {split} in {GVD_INDEX}")
    h5 = proposal_h5(root)

    def load_dets(k: str) -> np.ndarray:
        with h5py.File(h5, "r") as f:
            expect("dets_labels" in f and "dets_num" in f, str(h5), "expected datasets dets_labels and dets_num")
            n = int(f["dets_num"][rows[k]])
            return f["dets_labels"][rows[k], :n]                   # (n, 7)

    def load(k: str):
        fp = root / GVD_FEATURES / f"{k}.npy"
        if not fp.is_file():
            raise DataError(f"segment {k}: missing feature file {fp}")
        feats = np.load(fp, allow_pickle=False)                    # (10, P, D)
        return ranked(k, feats, load_dets(k))

    def shapes(k: str):
        fp = root / GVD_FEATURES / f"{k}.npy"
        if not fp.is_file():
            raise DataError(f"segment {k}: missing feature file {fp}")
        return np.load(fp, mmap_mode="r").shape, None

    big = 1e5  # GVD boxes are in the resized 720-wide frame; heights vary per video
    segs = [SourceSegment(k, (lambda k=k: load(k)), (lambda k=k: shapes(k)), FRAMES_PER_SEGMENT, (1.0, 1.0),
                          (big, big)) for k in keys]
    return Source("anet-gvd", root, segs, box_source=f"{h5.name} dets_labels x1,y1,x2,y2 (720-wide frame), per frame "
                  "by descending confidence")


def ranked(key: str, feats: np.ndarray, dets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features (T, P, D) and GVD detections (T*P, 7) -> both reordered per frame by descending confidence
    (column 6; stable, so equal confidences keep the file order): the store keeps the first N of each frame,
    i.e. the N proposals GVD trusts most (docs/DECISIONS.md). GVD pairs detection row r with feature row r of
    the (T*P, D) reshape, frame-major; a file that is not so is refused."""
    where = f"segment {key}"
    expect(feats.ndim == 3, where, f"features must be (10, P, D), got {feats.shape}")
    T, P, _ = feats.shape
    expect(dets.ndim == 2 and dets.shape[1] >= 7, where, f"dets_labels rows must have 7 columns, got {dets.shape}")
    expect(dets.shape[0] == T * P, where, f"dets_num is {dets.shape[0]} but the features hold {T} x {P} regions "
           "(GVD pairs detection row r with feature row r)")
    frame = dets[:, 4].astype(np.int64).reshape(T, P)
    bad = np.argwhere(frame != np.arange(T)[:, None])
    expect(bad.size == 0, where, f"detection row {int(bad[0][0]) * P + int(bad[0][1]) if bad.size else 0} has frame "
           f"{frame[tuple(bad[0])] if bad.size else 0}, expected the frame-major order of the features (row // {P})")
    conf = dets[:, 6].reshape(T, P)
    order = np.argsort(-conf, axis=1, kind="stable")                                   # (T, P)
    boxes = dets[:, :4].reshape(T, P, 4)
    t = np.arange(T)[:, None]
    return feats[t, order], boxes[t, order].astype(np.float32)


def anet_text_inputs(data_dir: str | Path) -> TextInputs:
    """Every segment with a sentence in the directory's cleaned annotation JSONs; objects are the
    annotated noun phrases (process_clss / process_idx); the split comes from
    split_ids_anet_entities.json when present, else from the file name."""
    root = Path(data_dir)
    split_of: dict[str, str] = {}
    if (root / "split_ids_anet_entities.json").is_file():
        split_of = {v: s for s, vids in load_split_ids(root / "split_ids_anet_entities.json").items() for v in vids}
    out: TextInputs | None = None
    seen: set[str] = set()
    skipped = 0
    for path in anet_text_files(root):
        vocab, segs = load_anet_annotations(path)
        if out is None:
            out = TextInputs([], [], [], [], {i: [c] for i, c in enumerate(vocab)})
        expect([out.class_forms[i][0] for i in range(len(vocab))] == vocab, str(path),
               "vocab differs from the other annotation files of the directory")
        fallback = path.stem.rsplit("_", 1)[-1]
        for key, s in segs.items():
            if not s.tokens:            # hidden test: no sentence to ground
                skipped += 1
                continue
            expect(key not in seen, f"{path}: {key}", "segment appears twice")
            seen.add(key)
            sentence, objs = anet_objects(s.tokens, s.process_clss, s.process_idx, vocab, where=f"{path}: {key}")
            out.seg_ids.append(key)
            out.splits.append(split_of.get(s.vid, fallback))
            out.sentences.append(sentence)
            out.objects.append(objs)
    expect(out is not None and len(out.seg_ids) > 0, str(root), "no ActivityNet-Entities segment with a sentence")
    if skipped:
        print(f"text-features: skipped {skipped} ActivityNet-Entities segments without tokens (hidden test)")
    return out


def query_order(process_clss, process_idx) -> list[tuple[str, int]]:
    """The queries of a segment: distinct (class, word index) pairs in first-appearance order
    (the order of ``text.objects.anet_objects``)."""
    return list(dict.fromkeys((c, int(i)) for cl, ix in zip(process_clss, process_idx) for c, i in zip(cl, ix)))


def gt_segments(entries: dict, vocab: list[str]) -> dict[str, GTSegment]:
    """{key: (vid, seg, cleaned-JSON segment dict)} -> {key: GTSegment} for the workbench's metrics.

    One GT object per (annotated box, word of its phrase), as ``evaluate_anet`` counts them: a box only
    in its ``frame_ind`` frame (other frames None), crowds like any box. ``query_rows`` maps each object
    to its query (distinct (class, word)); segments whose boxes are withheld are left out. The cleaned JSON
    has no frame height: ``rheight`` is 0, so the 224-scaling ``nafae`` rule does not apply to these.
    """
    known = set(vocab)
    out = {}
    for key, (vid, seg, s) in entries.items():
        if not s.get("process_bnd_box"):
            continue
        queries = {q: i for i, q in enumerate(query_order(s["process_clss"], s["process_idx"]))}
        objects, rows = [], []
        for j, (cl, ix) in enumerate(zip(s["process_clss"], s["process_idx"])):
            x1, y1, x2, y2 = (float(v) for v in s["process_bnd_box"][j])
            for c, i in zip(cl, ix):
                expect(c in known, f"segment {key} box {j}", f"class {c!r} not in the vocab")
                boxes: list = [None] * FRAMES_PER_SEGMENT
                boxes[int(s["frame_ind"][j])] = Box(x1, y1, x2, y2)
                objects.append(GTObject(c, boxes))
                rows.append(queries[(c, int(i))])
        out[key] = GTSegment(key, vid, int(seg), "", 720, 0, objects, rows)
    return out


def split_videos(root: Path, split: str) -> set[str]:
    path = Path(root) / SPLIT_IDS
    ids = load_split_ids(path)
    expect(split in ids, str(path), f"no split {split!r}")
    return set(ids[split])


def anet_ground_truth(root: Path, split: str) -> dict[str, GTSegment] | None:
    """GT of the split's videos from the directory's cleaned annotation JSONs; None when none has boxes."""
    root = Path(root)
    vids = split_videos(root, split)
    entries, vocab = {}, None
    for path in anet_text_files(root):
        v, segs = load_anet_annotations(path)
        vocab = vocab or v
        for key, sg in segs.items():
            if sg.vid in vids and sg.process_bnd_box:
                entries[key] = (sg.vid, sg.seg, {"process_clss": sg.process_clss, "process_idx": sg.process_idx,
                                                 "frame_ind": sg.frame_ind, "process_bnd_box": sg.process_bnd_box})
    return gt_segments(entries, vocab) if entries else None


def anet_vocab(root: Path) -> ClassVocab:
    files = anet_text_files(root)
    expect(bool(files), str(root), "no ActivityNet-Entities cleaned annotation JSON (anet_entities_cleaned_class_thresh50_*.json)")
    raw = read_json(files[0])
    vocab = raw.get("vocab") if isinstance(raw, dict) else None
    expect(isinstance(vocab, list) and all(isinstance(c, str) for c in vocab), str(files[0]), "expected 'vocab': [class names]")
    return ClassVocab(list(vocab), {c: i for i, c in enumerate(vocab)}, str(files[0]))


def anet_submission(root: Path, split: str, boxes: dict) -> dict:
    """Predictions per query {key: (Q, 10, 4)} -> GVD's grounding submission (``evaluate --rule anet``):
    ``{"results": {vid: {seg: {clss, idx_in_sent, bbox_for_all_frames}}}}``."""
    root = Path(root)
    segs = {}
    for path in anet_text_files(root):
        segs.update(load_anet_annotations(path)[1])
    results: dict[str, dict] = {}
    for key, arr in boxes.items():
        expect(key in segs, f"predictions: segment {key}", f"not in the annotation files of {root}")
        s = segs[key]
        q = query_order(s.process_clss, s.process_idx)
        arr = np.asarray(arr, dtype=np.float64)
        expect(arr.shape[0] == len(q), f"predictions: segment {key}", f"{arr.shape[0]} queries, the sentence has {len(q)}")
        results.setdefault(s.vid, {})[s.seg] = {"clss": [c for c, _ in q], "idx_in_sent": [i for _, i in q],
                                                "bbox_for_all_frames": arr.tolist()}
    return {"results": results, "version": "VERSION 1.0", "external_data": {"used": False, "details": "workbench"}}


class ActivityNetEntities(DatasetFormat):
    name = "activitynet-entities"
    rule = "anet"
    # No GloVe file covering the 431-word vocabulary is vendored (79 of its words are in yc2-vocab):
    # the fixed word features default to MiniLM's static word-piece embeddings (docs/DECISIONS.md).
    glove = "minilm-static"
    # The paper's ActivityNet-Entities settings (SPEC.md): T = 6 frames, batch 24, lr 8e-4.
    defaults = dict(num_frames=6, batch_size=24, lr=8e-4)

    def detect(self, root: Path) -> bool:
        return is_gvd_root(root) or is_anet_text_root(root)

    def source(self, root: Path, split: str) -> Source:
        return gvd_source(Path(root), split)

    def text_inputs(self, root: Path) -> TextInputs:
        return anet_text_inputs(root)

    def vocab(self, root: Path) -> ClassVocab:
        return anet_vocab(Path(root))

    def ground_truth(self, root: Path, split: str, max_boxed: int = 0):
        return anet_ground_truth(Path(root), split)            # parsed whole: max_boxed is a hint

    def has_source(self, root: Path, split: str) -> bool:
        root = Path(root)
        return is_gvd_root(root) and (root / SPLIT_IDS).is_file() and bool(split_videos(root, split))

    def submission(self, root: Path, split: str, gt: dict, boxes: dict) -> dict:
        return anet_submission(Path(root), split, boxes)


FORMAT = ActivityNetEntities()
