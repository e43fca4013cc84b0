"""``Workspace``: everything a run reads from a dataset directory, opened once, for any format
of ``workbench.datasets`` (train, predict, bench, the notebooks)."""
from __future__ import annotations

from pathlib import Path

from .config import Config
from .datasets.yc2 import DatasetDir
from .features.store import FeatureStore, check_box_space
from .datasets.yc2 import check_class_count
from .datasets import detect
from .io import DataError, expect
from .paths import SPLITS
from .features.text_cache import TextFeatures

EVAL_SPLITS = ("validation", "testing")


def resolve_rule(cfg: Config, default: str) -> str:
    """``cfg.eval_rule``, or the format's ``default`` for "auto"; checked against evaluate.RULES."""
    from .evaluate import RULES

    rule = default if cfg.eval_rule == "auto" else cfg.eval_rule
    expect(rule in RULES, "config: eval_rule", f"unknown rule {rule!r}, expected 'auto' or one of {sorted(RULES)}")
    return rule


class Workspace:
    """The format, vocabulary, text cache, feature stores, ground truth and evaluation rule of ``cfg.data``.

    ``stores``: {split: FeatureStore} of the splits with a store; ``gt``: {split: {key: GTSegment}} of the
    validation/testing splits with boxes and a store; ``rule``: the evaluation rule of every metric;
    ``heldout``: dataset.json's ``holdout_classes`` (scored apart too, ``evaluate.heldout_metrics``).
    """

    def __init__(self, cfg: Config):
        if not cfg.data:
            raise DataError("config: 'data' (the dataset directory) is not set")
        root = Path(cfg.data)
        self.ds = DatasetDir(root)
        self.format = detect(root)
        self.format.validate(root)
        from .datasets.yc2 import holdout_classes
        self.heldout = holdout_classes(root)               # class ids never seen in training ([]: none)
        self.rule = resolve_rule(cfg, self.format.rule)
        self.vocab = check_class_count(self.format.vocab(root))
        self.text = TextFeatures(cfg.text_features or self.ds.text_features)
        self.text.check_inputs(root)                      # a stale cache is refused, naming text-features
        self.stores = {s: FeatureStore(self.ds.store(s), num_proposals=cfg.num_proposals)
                       for s in SPLITS if self.ds.store(s).is_file()}
        if "training" not in self.stores:
            raise DataError(f"{self.ds.store('training')}: not found; run `build-store` for the training split")
        check_store_worlds(self.stores, root)
        self.gt = {}
        for s in EVAL_SPLITS:
            if s in self.stores:
                gt = self.format.ground_truth(root, s)
                if gt is not None:
                    where = self.ds.annotations(s) if self.ds.has_annotations(s) else f"{self.format.name} {s} ground truth"
                    check_labels(gt, self.vocab, where)
                    check_box_space(self.stores[s], where, root)   # boxes read in the annotations' pixel frame
                    check_gt_against_store(gt, self.stores[s], self.text, where)
                    self.gt[s] = gt
        self.dims = {"visual": self.stores["training"].feature_dim, "glove": self.text.glove_dim,
                     "ctx": self.text.ctx_dim, "classes": len(self.vocab)}

    def eval_keys(self, split: str, cfg: Config) -> list[str]:
        """Segments of ``split`` with at least one box (the first cfg.max_eval_segments when set)."""
        keys = [k for k in self.gt[split] if any(b is not None for o in self.gt[split][k].objects for b in o.boxes)]
        return keys[:cfg.max_eval_segments] if cfg.max_eval_segments else keys


def check_store_worlds(stores: dict, root: Path) -> None:
    """Every store was built for the world dataset.json describes (the identity stamped when it was built,
    ``store.dataset_identity``): a store copied in from another world with the same segment keys is refused.
    Stores built before the stamp existed are accepted with a note; datasets without a generator are not checked."""
    import json
    import sys

    from .features.store import dataset_identity

    here = dataset_identity(root)
    if here is None:
        return
    unstamped = []
    for split, st in stores.items():
        stamp = st.attrs.get("dataset_identity")
        if stamp is None:
            unstamped.append(split)
            continue
        stamp = stamp.decode() if isinstance(stamp, bytes) else str(stamp)
        if stamp != here:
            a, b = json.loads(stamp), json.loads(here)
            diff = [f"{k}: {a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(set(a) | set(b))
                    if a.get(k) != b.get(k) and k != "knobs"]
            ka, kb = a.get("knobs") or {}, b.get("knobs") or {}
            if isinstance(ka, dict) and isinstance(kb, dict):
                diff += [f"knob {k}: {ka.get(k)!r} there, {kb.get(k)!r} here" for k in sorted(set(ka) | set(kb))
                         if ka.get(k) != kb.get(k)]
            raise DataError(f"{st.path}: built for another world than {root / 'dataset.json'} describes "
                            f"({'; '.join(diff[:4]) or 'identity differs'}); rebuild it with `build-store` "
                            "from this dataset")
    if unstamped:
        print(f"note: {root}: stores {unstamped} record no world identity (built before it was stamped); "
              "not checked", file=sys.stderr)


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
