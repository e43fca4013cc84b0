"""``Workspace``: everything a run reads from a dataset directory, opened once, for any format
of ``workbench.formats`` (train, predict, bench, the notebooks)."""
from __future__ import annotations

from pathlib import Path

from .config import Config
from .data.layout import DatasetDir
from .data.store import FeatureStore
from .formats import detect
from .io import DataError, expect
from .paths import SPLITS
from .text.cache import TextFeatures

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
    validation/testing splits with boxes and a store; ``rule``: the evaluation rule of every metric.
    """

    def __init__(self, cfg: Config):
        if not cfg.data:
            raise DataError("config: 'data' (the dataset directory) is not set")
        root = Path(cfg.data)
        self.ds = DatasetDir(root)
        self.format = detect(root)
        self.rule = resolve_rule(cfg, self.format.rule)
        self.vocab = self.format.vocab(root)
        self.text = TextFeatures(cfg.text_features or self.ds.text_features)
        self.stores = {s: FeatureStore(self.ds.store(s)) for s in SPLITS if self.ds.store(s).is_file()}
        if "training" not in self.stores:
            raise DataError(f"{self.ds.store('training')}: not found; run `build-store` for the training split")
        self.gt = {}
        for s in EVAL_SPLITS:
            if s in self.stores:
                gt = self.format.ground_truth(root, s)
                if gt is not None:
                    self.gt[s] = gt
        self.dims = {"visual": self.stores["training"].feature_dim, "glove": self.text.glove_dim,
                     "ctx": self.text.ctx_dim, "classes": len(self.vocab)}

    def eval_keys(self, split: str, cfg: Config) -> list[str]:
        """Segments of ``split`` with at least one box (the first cfg.max_eval_segments when set)."""
        keys = [k for k in self.gt[split] if any(b is not None for o in self.gt[split][k].objects for b in o.boxes)]
        return keys[:cfg.max_eval_segments] if cfg.max_eval_segments else keys
