"""The open-vocabulary generalization protocol (the paper's Table 4) on the YouCook2 world.

``simulate --holdout K`` picks K classes of the testing objects and makes them unseen in training:

- every training and validation segment whose object list names a held-out class, or holds a
  pronoun that looks like one (``looks_like``), is **dropped** (not edited: its region features would
  otherwise show an object its sentence names but its object list hides);
- held-out classes are removed from the distractor pools of the remaining training/validation
  segments, so their appearance never occurs in a training or validation feature;
- testing is unchanged, so its objects include the K classes, known to a model only through the
  GloVe / contextual features of their names.

Validation loses those segments too: the epoch is selected on seen classes only, as a model trained
on YouCook2-BB and tested on RoboWatch is. ``dataset.json`` records ``holdout_classes`` (class ids of
``class_file.csv``), their names and how many segments were dropped; ``check_holdout`` re-checks a
directory on load (``Workspace``, ``text-features``).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..io import DataError, expect, read_json
from ..paths import CLASS_FILE, DATASET_META, SPLIT_DICT_NAMES

PRONOUNS = (63, 64, 65, 66)        # it, them, that, they: never held out (they name no object class)
HOLDOUT_KEY = "holdout_classes"
RULE = ("training and validation segments naming a held-out class (or with a pronoun referring to one) are "
        "dropped; held-out classes are removed from every training/validation distractor pool; testing is unchanged")


def choose_holdout(plans: dict[str, list], k: int, seed: int) -> list[int]:
    """K classes of the testing objects (no pronouns), drawn by a generator seeded by ``seed``."""
    import numpy as np

    cands = sorted({c for pl in plans["testing"] for c in pl.class_ids if c not in PRONOUNS})
    expect(0 < k <= len(cands), "--holdout", f"K must be in 1..{len(cands)} (classes among the testing objects), got {k}")
    rng = np.random.default_rng([int(seed), 4_000_004])
    return sorted(int(c) for c in rng.choice(cands, size=k, replace=False))


def apply_holdout(plans: dict[str, list], k: int, seed: int, names: list[str] | None = None) -> tuple[dict, dict]:
    """(plans without the held-out classes in training/validation, the dataset.json entries)."""
    held = choose_holdout(plans, k, seed)
    hs = set(held)
    out, dropped = {}, {}
    for split, pls in plans.items():
        if split == "testing":
            out[split] = list(pls)
            continue
        keep = [pl for pl in pls if not (hs & set(pl.class_ids) or hs & set(pl.looks_like))]
        dropped[split] = len(pls) - len(keep)
        out[split] = [dataclasses.replace(pl, distractor_pool=[c for c in pl.distractor_pool if c not in hs])
                      for pl in keep]
        expect(len(out[split]) > 0, "--holdout", f"no {split} segment is left after dropping those naming {held}")
    meta = {HOLDOUT_KEY: held, "holdout_names": [names[c] for c in held] if names else [],
            "holdout_dropped": dropped, "holdout_rule": RULE,
            "holdout_test_objects": sum(c in hs for pl in out["testing"] for c in pl.class_ids)}
    return out, meta


def holdout_classes(root: str | Path) -> list[int]:
    """dataset.json's ``holdout_classes`` of a dataset directory ([] without the protocol), type-checked
    (``check_holdout`` checks them against the class file and the training object lists)."""
    meta_path = Path(root) / DATASET_META
    if not meta_path.is_file():
        return []
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or HOLDOUT_KEY not in meta:
        return []
    held = meta[HOLDOUT_KEY]
    expect(isinstance(held, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in held),
           f"{meta_path}: {HOLDOUT_KEY}", f"expected a list of class ids, got {held!r}")
    return list(held)


def check_holdout(root: str | Path) -> list[int]:
    """The held-out class ids of a dataset directory ([] without the protocol); DataError naming the
    file and key when they are not class ids of class_file.csv or a training object list names one."""
    from .yc2 import load_class_file, load_split_dict

    root = Path(root)
    meta_path = root / DATASET_META
    if not meta_path.is_file():
        return []
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or HOLDOUT_KEY not in meta:
        return []
    held = meta[HOLDOUT_KEY]
    where = f"{meta_path}: {HOLDOUT_KEY}"
    expect(isinstance(held, list) and all(isinstance(c, int) and not isinstance(c, bool) for c in held), where,
           f"expected a list of class ids, got {held!r}")
    n = len(load_class_file(root / CLASS_FILE))
    bad = [c for c in held if not 0 <= c < n]
    expect(not bad, where, f"class ids {bad} are outside the vocabulary of {root / CLASS_FILE} (0..{n - 1})")
    path = root / SPLIT_DICT_NAMES["training"]
    for key, e in load_split_dict(path, n).items():
        seen = sorted(set(e.class_ids) & set(held))
        if seen:
            raise DataError(f"{path}: segment {key}: held-out class(es) {seen} (dataset.json {HOLDOUT_KEY}) appear in "
                            "a training object list; the generalization protocol needs them unseen in training")
    return held
