"""ActivityNet-Entities in GVD's layout: region features ``fc6_feat_100rois/<vid>_segment_<NN>.npy``
(10, 100, 2048), the proposal h5 (``dets_num``, ``dets_labels``), ``dic_anet.json`` row order,
``split_ids_anet_entities.json``, and the cleaned annotation JSONs that carry the sentences
(readers: ``workbench.data.anet``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.anet import (FRAMES_PER_SEGMENT, GVD_FEATURES, GVD_INDEX, anet_text_files, is_anet_text_root,
                         is_gvd_root, load_anet_annotations, load_split_ids, proposal_h5,
                         proposal_index)
from ..io import DataError, expect
from ..text.objects import TextInputs, anet_objects
from .base import DatasetFormat, Source, SourceSegment


def gvd_source(root: Path, split: str) -> Source:
    """Store source for the GVD layout (boxes already in the 720-wide annotation frame)."""
    import h5py

    root = Path(root)
    ids = load_split_ids(root / "split_ids_anet_entities.json")
    expect(split in ids, str(root / "split_ids_anet_entities.json"), f"no split {split!r}")
    vids = set(ids[split])
    rows = {k: i for i, k in enumerate(proposal_index(root))}
    keys = [k for k in rows if k.rpartition("_segment_")[0] in vids]
    expect(len(keys) > 0, str(root), f"no segments of split {split} in {GVD_INDEX}")
    h5 = proposal_h5(root)

    def load_boxes(k: str) -> np.ndarray:
        with h5py.File(h5, "r") as f:
            expect("dets_labels" in f and "dets_num" in f, str(h5), "expected datasets dets_labels and dets_num")
            n = int(f["dets_num"][rows[k]])
            d = f["dets_labels"][rows[k], :n]                      # (n, 7)
        frames = d[:, 4].astype(int)
        per = [d[frames == t, :4] for t in range(FRAMES_PER_SEGMENT)]
        P = min(len(p) for p in per)
        return np.stack([p[:P] for p in per]).astype(np.float32)  # (10, P, 4)

    def load(k: str):
        fp = root / GVD_FEATURES / f"{k}.npy"
        if not fp.is_file():
            raise DataError(f"segment {k}: missing feature file {fp}")
        return np.load(fp, allow_pickle=False), load_boxes(k)

    def shapes(k: str):
        fp = root / GVD_FEATURES / f"{k}.npy"
        if not fp.is_file():
            raise DataError(f"segment {k}: missing feature file {fp}")
        return np.load(fp, mmap_mode="r").shape, None

    big = 1e5  # GVD boxes are in the resized 720-wide frame; heights vary per video
    segs = [SourceSegment(k, (lambda k=k: load(k)), (lambda k=k: shapes(k)), FRAMES_PER_SEGMENT, (1.0, 1.0),
                          (big, big)) for k in keys]
    return Source("anet-gvd", root, segs)


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


class ActivityNetEntities(DatasetFormat):
    name = "activitynet-entities"
    rule = "anet"

    def detect(self, root: Path) -> bool:
        return is_gvd_root(root) or is_anet_text_root(root)

    def source(self, root: Path, split: str) -> Source:
        return gvd_source(Path(root), split)

    def text_inputs(self, root: Path) -> TextInputs:
        return anet_text_inputs(root)


FORMAT = ActivityNetEntities()
