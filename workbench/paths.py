"""Every repository path and every fixed file name, in one place.

Repository: ``REPO`` (the checkout root), ``YC2_DATA`` (vendored YouCook2-BB metadata),
``NOTEBOOKS``, ``WORK`` (git-ignored scratch: simulated worlds, sweeps).
Dataset directory (YouCook2-BB layout, see docs/ARCHITECTURE.md): the ``*_FILE`` / ``*_NAMES`` names.
Run directory: ``RUN_CONFIG``, ``RUN_LOG``, ``RUN_PROGRESS``, ``METRICS_FILE``, ``CHECKPOINT_LAST``, ``CHECKPOINT_BEST``, ``RUN_LOCK``.
Metric *keys* (query_macro, ...) are not file names: they live in ``evaluate.METRICS``.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """The per-machine cache folder: ``$SCL_WORKBENCH_CACHE``, else ``~/.cache/scl-workbench`` (the dtype=auto
    decisions of workbench/precision.py, the remembered text-cache input checks of features/text_cache.py)."""
    return Path(os.environ.get("SCL_WORKBENCH_CACHE") or Path.home() / ".cache" / "scl-workbench")

YC2_DATA = REPO / "data" / "youcook2_bb"
NOTEBOOKS = REPO / "notebooks"
WORK = REPO / "work"

# --- dataset directory ------------------------------------------------------------------------
SPLITS = ("training", "validation", "testing")
DATASET_META = "dataset.json"
WORLD_TRUTH_FILE = "world_truth.json"      # world v2: per named object of every split: mention type, states
CLASS_FILE = "class_file.csv"
SENTENCES_FILE = "seg_sentence_dict.json"
YOUCOOKII_FILE = "youcookii_annotations.json"
TRAINING_VID_FILE = "yc2_training_vid.json"      # official pack: rwidth/rheight of training videos
SPLIT_DICT_NAMES = {"training": "train_dict.json", "validation": "val_dict.json", "testing": "test_dict.json"}
# Official-format box annotations per split; the first name is the one `simulate` writes.
ANNOTATION_NAMES = {
    "validation": ("yc2_bb_val_annotations.json",),
    "testing": ("yc2_bb_test_annotations.json", "yc2_bb_public_test_annotations.json"),
}
FEATURE_DIR = "region_features"                  # per-segment .npy layout (optional sub-folder)
BOX_DIR = "rpn_box"                              # proposal boxes beside the features
STORE_DIR = "store"                              # store/<split>.h5
TEXT_FEATURES_FILE = "text_features.h5"

# --- run directory ----------------------------------------------------------------------------
RUN_CONFIG = "config.json"
RUN_LOG = "log.jsonl"
METRICS_FILE = "metrics.json"
CHECKPOINT_LAST = "checkpoint_last.pt"
CHECKPOINT_BEST = "checkpoint_best.pt"
RUN_LOCK = ".lock"                               # flock of the training that holds the run directory
RUN_PROGRESS = "progress.json"                   # where a training run is (epoch, step, loss); rewritten every few s
