"""``python -m workbench check-dataset DIR``: is a dataset directory ready to train on?

Per split: what was found (per-segment features, store, box annotations, text cache) and what is missing;
a public release's own layout (CI, VOG, GVD, NAFAE) is recognised and named with the command that imports
it; each store's box space and source are checked against the directory's annotations; Upper Bound on
validation is computed from the store's proposals, and a value near 0 is an error (boxes misread: scale,
order or frame index). Exit 0 only when nothing is an error. ``train`` and ``sweep`` run the same checks
(``require_ready``) before their first step.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .baselines import upper_bound_boxes
from .datasets import detect
from .datasets.base import DatasetFormat
from .datasets.releases import recognise
from .datasets.yc2 import DatasetDir
from .evaluate import evaluate_boxes, gt_units
from .features.store import FeatureStore, box_space_of, check_box_space, store_is_current
from .io import DataError, read_json
from .paths import DATASET_META, SPLITS

UB_MIN = 5.0          # Upper Bound box micro (percent) below which the proposals cannot be read right
UB_SEGMENTS = 300     # segments of validation the checks before training score (check-dataset: all)


@dataclass
class Report:
    root: Path
    format: str = ""
    release: str = ""
    lines: list[str] = field(default_factory=list)      # what was found, in order
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    upper_bound: dict | None = None

    @property
    def ready(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        return {"root": str(self.root), "format": self.format, "release": self.release, "ready": self.ready,
                "upper_bound_validation": self.upper_bound, "errors": self.errors, "warnings": self.warnings}


def check_dataset(root: str | Path, text_features: str | Path | None = None,
                  ub_segments: int | None = None, fmt: DatasetFormat | None = None) -> Report:
    """Check dataset directory ``root``; never raises for a problem of the data (it is in ``errors``)."""
    root = Path(root)
    rep = Report(root)
    if not root.is_dir():
        rep.errors.append(f"{root}: not a directory")
        return rep
    foreign = recognise(root)
    if foreign is not None:
        rep.release = foreign.name
        rep.errors.append(f"{root}: this is the {foreign.title} release as downloaded, not a dataset directory; "
                          f"{foreign.how_to_import(root)}")
        return rep
    try:
        fmt = fmt or detect(root)
        fmt.validate(root)
        vocab = fmt.vocab(root)
    except DataError as e:
        rep.errors.append(str(e))
        return rep
    rep.format = fmt.name
    rep.release = _release(root)
    rep.lines.append(f"format {fmt.name}" + (f" (imported from the {rep.release} release)" if rep.release else "")
                     + f", {len(vocab)} classes, evaluation rule {fmt.rule}")
    ds = DatasetDir(root)
    stores = {}
    for split in SPLITS:
        parts = []
        path = ds.store(split)
        has_src = _safe(lambda: fmt.has_source(root, split), False)
        gt = None
        if split != "training":
            try:
                gt = fmt.ground_truth(root, split)
            except DataError as e:
                rep.errors.append(f"{split}: annotations unreadable: {e}")
        n_boxes = sum(b is not None for g in (gt or {}).values() for o in g.objects for b in o.boxes)
        if path.is_file():
            try:
                st = FeatureStore(path)
                stores[split] = st
                space = box_space_of(st.attrs)
                parts.append(f"store {path.name}: {len(st)} segments, {int(st.frame_count.sum())} frames, "
                             f"{st.num_proposals} proposals x {st.feature_dim}-d, boxes {space}")
                if not store_is_current(path):
                    rep.errors.append(f"{path}: an older store format; rebuild it with `build-store`")
                src = st.attrs.get("source_root", "")
                src = src.decode() if isinstance(src, bytes) else str(src)
                if src and not Path(src).exists():
                    rep.warnings.append(f"{path}: its source {src} no longer exists (the store itself is complete)")
                imp = st.attrs.get("import_source")
                if rep.release and imp is not None and str(imp) != _release_source(root):
                    rep.errors.append(f"{path}: built from {imp}, but {root}/dataset.json says the {rep.release} "
                                      f"release is {_release_source(root)}; re-run `python -m workbench import`")
                if n_boxes:
                    try:
                        check_box_space(st, f"the {split} annotations of {root}", root)
                    except DataError as e:
                        rep.errors.append(str(e))
                    have = {k: i for i, k in enumerate(st.seg_ids)}
                    missing = [k for k in gt if k not in have]
                    if missing:
                        rep.errors.append(f"{path}: {len(missing)} annotated {split} segments are not in the feature store "
                                          f"(first: {missing[0]}); rebuild it with `build-store`")
                    where = ds.annotations(split) if ds.has_annotations(split) else f"{fmt.name} {split} ground truth"
                    bad = [(k, g.num_frames, int(st.frame_count[have[k]])) for k, g in gt.items()
                           if k in have and g.num_frames != int(st.frame_count[have[k]])]
                    if bad:
                        k, a, n = bad[0]
                        rep.errors.append(f"{where}: segment {k} has {a} annotated frames but the store {path} has {n} "
                                          f"({len(bad)} such segments); rebuild the store (`build-store`) from the "
                                          "same annotations")
            except DataError as e:
                rep.errors.append(str(e))
        elif has_src:
            parts.append("no store yet (per-segment features found; `train` builds it, or run `build-store`)")
            rep.warnings.append(f"{split}: store {path} not built yet")
        elif split == "training":
            rep.errors.append(f"training: neither a store ({path}) nor per-segment features; nothing to train on")
        else:
            parts.append("no store and no features")
        if split != "training":
            if gt is None:
                parts.append("no box annotations")
            elif not n_boxes:
                parts.append(f"annotations of {len(gt)} segments without boxes (a test-server split: "
                             "`predict` writes its submission; metrics are null)")
            else:
                parts.append(f"annotations: {len(gt)} segments, {n_boxes} boxes")
        rep.lines.append(f"{split}: " + "; ".join(parts))
    tf = Path(text_features) if text_features else ds.text_features
    rep.lines.append(f"text cache: {tf.name} present" if tf.is_file() else
                     f"text cache: {tf.name} not built yet (`train` builds it with the format's defaults, or run "
                     "`text-features`)")
    _upper_bound(rep, fmt, root, vocab, stores, ub_segments)
    for st in stores.values():
        st.close()
    return rep


def _upper_bound(rep: Report, fmt, root: Path, vocab, stores: dict, ub_segments: int | None) -> None:
    if any("validation" in e for e in rep.errors):
        return
    boxes_of = stores.get("validation")
    if boxes_of is None:
        try:                                        # no store yet: the proposals as build-store would convert them
            src = fmt.source(root, "validation") if fmt.has_source(root, "validation") else None
        except DataError as e:
            rep.errors.append(f"validation: the features cannot be read: {e}")
            return
        if src is None:
            return

        try:
            check_box_space(_SourceBoxes(src), f"the validation annotations of {root}", root)
        except DataError as e:
            rep.errors.append(str(e))
            return
        boxes_of = _SourceBoxes(src)
    try:
        gt = fmt.ground_truth(root, "validation")
    except DataError:
        return
    keys = [k for k, g in (gt or {}).items() if any(b is not None for o in g.objects for b in o.boxes)]
    if not keys:
        return
    keys = keys[:ub_segments] if ub_segments else keys
    try:
        sub = {k: gt[k] for k in keys}
        m = evaluate_boxes(gt_units(sub, vocab), upper_bound_boxes(sub, boxes_of), vocab, rule=fmt.rule)
    except DataError as e:
        rep.errors.append(f"validation: Upper Bound could not be computed: {e}")
        return
    ub = m.get("box_micro")
    rep.upper_bound = {"box_micro": ub, "segments": len(keys), "boxes": m.get("boxes")}
    rep.lines.append(f"Upper Bound (validation, {len(keys)} segments, rule {fmt.rule}): box micro {ub:.2f}"
                     if ub is not None else "Upper Bound (validation): no scored box")
    if ub is not None and ub < UB_MIN:
        rep.errors.append(f"validation: Upper Bound box micro is {ub:.2f} (< {UB_MIN:g}): no proposal overlaps the "
                          "annotated boxes, so the proposal boxes were misread (frame size, coordinate order or "
                          "frame index); no score on this directory would mean anything. Rebuild the stores from "
                          "the release with `python -m workbench import`")


class _SourceBoxes:
    """The proposal boxes of a split read from its per-segment source (no store yet), as a store serves them."""

    def __init__(self, src, num_proposals: int = 20):
        self._np, self.src, self.N = np, src, num_proposals
        self._index = {s.key: i for i, s in enumerate(src.segments)}
        self.path = src.root
        self.attrs = {"box_space": src.box_space, "box_source": src.box_source, "split": "validation"}

    def index(self, key: str) -> int:
        if key not in self._index:
            raise DataError(f"{self.src.root}: segment {key} has no features")
        return self._index[key]

    def boxes(self, i: int):
        seg = self.src.segments[i]
        _, b = seg.load()
        sx, sy = seg.scale
        return b[:, :self.N].astype(self._np.float32) * self._np.array([sx, sy, sx, sy], self._np.float32)


def _safe(fn, default):
    try:
        return fn()
    except DataError:
        return default


def _release(root: Path) -> str:
    try:
        raw = read_json(root / DATASET_META) if (root / DATASET_META).is_file() else {}
    except DataError:
        return ""
    rel = raw.get("release") if isinstance(raw, dict) else None
    return str(rel.get("name", "")) if isinstance(rel, dict) else ""


def _release_source(root: Path) -> str:
    try:
        rel = read_json(root / DATASET_META).get("release", {})
    except (DataError, AttributeError):
        return ""
    return str(rel.get("source", "")) if isinstance(rel, dict) else ""


def require_ready(root: str | Path, text_features=None, log=print, who: str = "train",
                  fmt: DatasetFormat | None = None) -> Report:
    """The checks of ``check-dataset`` before a training: DataError listing the errors when not ready."""
    rep = check_dataset(root, text_features, ub_segments=UB_SEGMENTS, fmt=fmt)
    if not rep.ready:
        raise DataError(f"{root}: not ready to train on ({len(rep.errors)} problem(s); `python -m workbench "
                        f"check-dataset {root}` shows all): " + " | ".join(rep.errors))
    if rep.upper_bound and rep.upper_bound.get("box_micro") is not None:
        log(f"{who}: dataset checked: Upper Bound on validation {rep.upper_bound['box_micro']:.2f} box micro "
            f"({rep.upper_bound['segments']} segments)")
    return rep


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="dataset directory (or a downloaded release: it is named with its import command)")
    p.add_argument("--json", action="store_true", help="also print the report as one JSON line")


def run(args: argparse.Namespace) -> int:
    rep = check_dataset(args.data)
    for line in rep.lines:
        print(line)
    for w in rep.warnings:
        print(f"warning: {w}")
    for e in rep.errors:
        print(f"error: {e}")
    print(f"check-dataset: {'ready to train on' if rep.ready else 'NOT ready'} ({len(rep.errors)} errors, "
          f"{len(rep.warnings)} warnings)")
    if args.json:
        print(json.dumps(rep.to_dict()))
    return 0 if rep.ready else 2
