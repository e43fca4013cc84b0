"""NAFAE (jshi31/NAFAE; facts from lib/datasets/youcook2.py and youcook_eval.py, docs/DATASETS.md): no region
features are published (its Faster R-CNN runs online on the frames). It ships ``data/YouCookII/annotations/``
(youcookii_annotations.json, youcook_cls.txt: 67 lemmas, the CI/NAFAE box GT yc2_bb_{val,test}_annotations.json),
``sampled_entities/*.pkl`` and ``split/*_list.txt``. The box GT and youcook_cls.txt are read as they are
(``evaluate --annotations ... --class-file youcook_cls.txt``); training needs features, so there is no importer.
"""
from __future__ import annotations

from pathlib import Path

from .base import Release

ANN = Path("data/YouCookII/annotations")


def recognise(root: Path) -> bool:
    return (root / ANN / "youcook_cls.txt").is_file() or (root / "data/YouCookII/sampled_entities").is_dir()


ADVICE = ("NAFAE publishes no region features (its detector runs on the frames while training), so there is "
          "nothing to import: extract per-segment features and 224x224 proposals into the CI layout "
          "(datasets/yc2_cvpr/<split>/<vid>_<seg:02d>.npy and rpn_box/<split>/...), put NAFAE's annotation files in "
          "mm_data/vg/video_grounding/data/youcook2/annotations/ beside the vendored split dicts, and run "
          "`python -m workbench import ci` (docs/DATASETS.md, NAFAE). Its box GT and youcook_cls.txt work with "
          "`python -m workbench evaluate` as they are")

RELEASE = Release("nafae", "NAFAE (jshi31/NAFAE, data/YouCookII)", recognise, None, ADVICE)
