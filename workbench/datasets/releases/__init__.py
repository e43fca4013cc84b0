"""Public releases as downloaded, and ``python -m workbench import {ci,vog,gvd} SRC --out DIR``.

Each release's facts (folders, file names, shapes, box conventions, and where each was read) live in its own
module (``ci.py``, ``vog.py``, ``gvd.py``, ``nafae.py``; docs/DATASETS.md). An importer turns ``SRC`` (the
folder the release was unpacked into, laid out as its own code expects) into a dataset directory the
workbench trains on: symlinks where the bytes are usable as they are, conversion where they are not, the
feature stores built straight from the sources (no second copy), and ``dataset.json`` recording the release
and every file it came from. It is resumable: links already in place and stores already built from the same
source are kept; ``dataset.json`` is written last.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from . import ci, gvd, nafae, vog
from .base import Release, start
from ...io import DataError, expect
from ...paths import DATASET_META, SPLITS


def _releases() -> list[Release]:
    return [ci.RELEASE, vog.RELEASE, gvd.RELEASE, nafae.RELEASE]


def recognise(root: str | Path) -> Release | None:
    """The release whose as-downloaded layout ``root`` is (None for a dataset directory)."""
    root = Path(root)
    if (root / DATASET_META).is_file():
        return None
    for r in _releases():
        if r.recognise(root):
            return r
    return None


def by_name(name: str) -> Release:
    for r in _releases():
        if r.name == name:
            return r
    raise DataError(f"unknown release {name!r}; releases: {[r.name for r in _releases()]}")


# --- CLI -----------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("release", choices=("ci", "vog", "gvd"), help="ci: ppj567/WSVOG_Causal_Intervention (YouCook2-BB); "
                   "vog: MichiganCOG/Video-Grounding-from-Text (YouCook2-BB); gvd: facebookresearch/"
                   "grounded-video-description (ActivityNet-Entities)")
    p.add_argument("src", help="the folder the release was unpacked into, laid out as its own code expects "
                   "(ci: holds datasets/yc2_cvpr and mm_data; vog: holds data/yc2; gvd: holds data/anet)")
    p.add_argument("--out", required=True, help="dataset directory to write (resumed when it exists)")
    p.add_argument("--num-proposals", type=int, default=20, help="proposals kept per frame in the stores")


def run(args: argparse.Namespace) -> int:
    rel = by_name(args.release)
    src, out = Path(args.src), Path(args.out)
    expect(src.is_dir(), str(src), "not a directory")
    expect(src.resolve() != out.resolve(), str(out), "must differ from the release folder")
    if not rel.recognise(src):
        other = recognise(src)
        hint = f"; it looks like the {other.title} release: {other.how_to_import(src)}" if other else ""
        raise DataError(f"{src}: not the {rel.title} release as downloaded{hint} (docs/DATASETS.md describes each layout)")
    start(out)
    t0 = time.time()
    summary = rel.importer(src, out, lambda m: print(m, flush=True), args.num_proposals)
    print(json.dumps({"release": rel.name, "out": str(out), "seconds": round(time.time() - t0, 1), **summary}))
    print(f"import: next, `python -m workbench check-dataset {out}`")
    return 0


__all__ = ["Release", "SPLITS", "by_name", "recognise"]
