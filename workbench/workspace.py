"""``Workspace``: everything a run reads from a dataset directory, opened once, for any format
of ``workbench.datasets`` (train, predict, bench, the notebooks)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .config import Config
from .datasets import detect
from .datasets.base import DatasetFormat
from .datasets.yc2 import DatasetDir, check_class_count, holdout_classes
from .evaluate import RULES, gt_units
from .features.batches import eval_groups
from .features.store import FeatureStore, check_box_space, check_store_annotations, check_store_worlds
from .features.text_cache import TextFeatures
from .io import DataError, expect
from .paths import SPLITS

EVAL_SPLITS = ("validation", "testing")
EVAL_BATCH_BYTES = 1 << 30   # region features of the evaluation batches a workspace keeps in memory (1 GiB)


def resolve_rule(cfg: Config, default: str) -> str:
    """``cfg.eval_rule``, or the format's ``default`` for "auto"; checked against evaluate.RULES."""
    rule = default if cfg.eval_rule == "auto" else cfg.eval_rule
    expect(rule in RULES, "config: eval_rule", f"unknown rule {rule!r}, expected 'auto' or one of {sorted(RULES)}")
    return rule


class Workspace:
    """The format, vocabulary, text cache, feature stores, ground truth and evaluation rule of ``cfg.data``.

    ``stores``: {split: FeatureStore} of the splits with a store; ``gt``: {split: {key: GTSegment}} of the
    validation/testing splits with boxes and a store; ``rule``: the evaluation rule of every metric;
    ``heldout``: dataset.json's ``holdout_classes`` (scored apart too, ``evaluate.heldout_metrics``).

    ``evaluated_only=True`` (train): ``gt`` holds a split's segments only up to the last one ``cfg`` evaluates
    (the first ``max_eval_segments`` with a box); ``eval_keys`` parses the rest when a later config asks for
    more. The evaluation inputs of a list of keys (GT units, batches) are built once and kept
    (``eval_units``, ``eval_batches``), across epochs and across the runs that share the workspace.
    """

    def __init__(self, cfg: Config, evaluated_only: bool = False, fmt: DatasetFormat | None = None):
        if not cfg.data:
            raise DataError("config: 'data' (the dataset directory) is not set")
        root = self.root = Path(cfg.data)
        self.ds = DatasetDir(root)
        self.format = fmt or detect(root)                  # a command detects once and passes it down
        self.format.validate(root)
        self.heldout = holdout_classes(root)               # class ids never seen in training ([]: none)
        self.rule = resolve_rule(cfg, self.format.rule)
        self.vocab = check_class_count(self.format.vocab(root))
        self.text = TextFeatures(cfg.text_features or self.ds.text_features)
        self.text.check_inputs(root, self.format)                      # a stale cache is refused, naming text-features
        self.stores = {s: FeatureStore(self.ds.store(s), num_proposals=cfg.num_proposals)
                       for s in SPLITS if self.ds.store(s).is_file()}
        if "training" not in self.stores:
            raise DataError(f"{self.ds.store('training')}: not found; run `build-store` for the training split")
        check_store_worlds(self.stores, root)
        self.gt: dict[str, dict] = {}
        self._gt_limit: dict[str, int] = {}               # split -> N: parsed up to its N-th segment with a box
        self._eval: dict[tuple, object] = {}              # (kind, split, keys) -> GT units / kept batches
        self._eval_bytes = 0
        for s in EVAL_SPLITS:
            if s in self.stores:
                self._open_gt(s, cfg.max_eval_segments if evaluated_only else 0)
        self.dims = {"visual": self.stores["training"].feature_dim, "glove": self.text.glove_dim,
                     "ctx": self.text.ctx_dim, "classes": len(self.vocab)}

    def _open_gt(self, s: str, limit: int) -> None:
        """Parse and check split ``s``'s ground truth (up to its ``limit``-th segment with a box; 0: all)."""
        gt = self.format.ground_truth(self.root, s, max_boxed=limit)
        if gt is None:
            return
        where = self.ds.annotations(s) if self.ds.has_annotations(s) else f"{self.format.name} {s} ground truth"
        check_labels(gt, self.vocab, where)
        check_box_space(self.stores[s], where, self.root)   # boxes read in the annotations' pixel frame
        if self.ds.has_annotations(s):                 # the annotations the store was built beside
            check_store_annotations(self.stores[s], self.ds.annotations(s))
        check_gt_against_store(gt, self.stores[s], self.text, where)
        self.gt[s] = gt
        self._gt_limit[s] = limit

    def eval_keys(self, split: str, cfg: Config) -> list[str]:
        """Segments of ``split`` with at least one box (the first cfg.max_eval_segments when set)."""
        limit = self._gt_limit.get(split, 0)
        if limit and (not cfg.max_eval_segments or cfg.max_eval_segments > limit):
            self._open_gt(split, 0)                        # this config evaluates more than was parsed
        keys = [k for k in self.gt[split] if any(b is not None for o in self.gt[split][k].objects for b in o.boxes)]
        return keys[:cfg.max_eval_segments] if cfg.max_eval_segments else keys

    def eval_units(self, split: str, keys: Sequence[str]):
        """``evaluate.gt_units`` of ``keys``' ground truth, built once per list of keys."""
        memo = ("units", split, tuple(keys))
        if memo not in self._eval:
            self._eval[memo] = gt_units({k: self.gt[split][k] for k in keys}, self.vocab)
        return self._eval[memo]

    def eval_batches(self, split: str, keys: Sequence[str]) -> Iterable[tuple[list[str], dict]]:
        """The evaluation groups of ``keys`` (``features.batches.eval_groups``): read once and kept in memory
        while all kept batches stay under ``EVAL_BATCH_BYTES``; otherwise read from the store at each iteration.
        Either can be iterated any number of times."""
        store = self.stores[split]
        memo = ("batches", split, tuple(keys))
        if memo in self._eval:
            return self._eval[memo]
        frames = sum(int(store.frame_count[store.index(k)]) for k in keys)
        size = frames * store.num_proposals * store.feature_dim * np.dtype(store.feature_dtype).itemsize
        if self._eval_bytes + size > EVAL_BATCH_BYTES:
            return Streamed(store, self.text, list(keys))
        self._eval_bytes += size
        self._eval[memo] = list(eval_groups(store, self.text, keys))
        return self._eval[memo]


class Streamed:
    """The evaluation groups of ``keys``, read from the store again at each iteration (too large to keep)."""

    def __init__(self, store: FeatureStore, text, keys: list[str]):
        self.store, self.text, self.keys = store, text, keys

    def __iter__(self):
        return eval_groups(self.store, self.text, self.keys)


def check_labels(gt: dict, vocab, where) -> None:
    """Every ground-truth label names a class of the vocabulary (the message names the annotation file)."""
    for key, seg in gt.items():
        for j, o in enumerate(seg.objects):
            vocab.id_of(o.label, where=f"{where}: segment {key} object {j}")


def check_gt_against_store(gt: dict, store: FeatureStore, text, where) -> None:
    """Every annotated segment is in the store and the text cache, with the same frame count
    and object count, so a mismatch is found before training rather than after an epoch."""
    for key, seg in gt.items():
        i = store.index(key)
        n = int(store.frame_count[i])
        if seg.num_frames != n:
            raise DataError(f"{where}: segment {key} has {seg.num_frames} annotated frames but the store "
                            f"{store.path} has {n}; rebuild the store (`build-store`) from the same annotations")
        k = len(text[key].obj_class)
        # GT objects answered per query (ActivityNet-Entities: GTSegment.query_rows) need max(row) + 1 queries
        want = len(seg.objects) if seg.query_rows is None else (max(seg.query_rows) + 1 if seg.query_rows else 0)
        if k != want:
            what = "objects" if seg.query_rows is None else "queries"
            raise DataError(f"{where}: segment {key} has {want} {what} but the text cache "
                            f"{text.path} has {k}; rebuild it with `python -m workbench text-features`")


# --- Workspaces kept open across the runs of one process (sweep workers) ------------------------

# The Config fields a Workspace is opened from: runs whose configs agree on them (and whose dataset files
# have not changed) can share one. tests/test_workers.py fails when Workspace reads another field.
OPENED_BY = ("data", "text_features", "num_proposals", "eval_rule")
_kept: dict[tuple, Workspace] | None = None          # None: every run opens its own (the default)


def keep_open(on: bool = True) -> None:
    """``on``: from now on ``open_workspace`` keeps each Workspace it opens for the later runs of this process
    on the same data (a sweep worker runs many units in turn); a run must then not change its Workspace.
    ``False``: forget (and close) the kept ones; ``open_workspace`` opens one per run again."""
    global _kept
    for ws in (_kept or {}).values():
        for st in ws.stores.values():
            st.close()
    _kept = {} if on else None


def _opened_from(cfg: Config) -> tuple:
    """``OPENED_BY``'s values and the size and mtime of every file of the dataset directory, its stores and
    the text cache: a file replaced between two runs (a rebuilt store) opens a new Workspace."""
    root, ds = Path(cfg.data), DatasetDir(cfg.data)
    files = [*root.glob("*"), *ds.store("training").parent.glob("*"), Path(cfg.text_features or ds.text_features)]
    stats = []
    for f in sorted(files):
        try:
            st = f.stat()
        except OSError:
            continue
        stats.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(getattr(cfg, k) for k in OPENED_BY) + tuple(stats)


def open_workspace(cfg: Config, evaluated_only: bool = False, fmt: DatasetFormat | None = None) -> Workspace:
    """``Workspace(cfg, evaluated_only)``; after ``keep_open()``, the Workspace already open for the same data when
    there is one (``evaluated_only`` needs no key: ``eval_keys`` parses more ground truth when a run asks for it)."""
    if _kept is None:
        return Workspace(cfg, evaluated_only, fmt)
    key = _opened_from(cfg)
    if key not in _kept:
        _kept[key] = Workspace(cfg, evaluated_only, fmt)
    return _kept[key]
