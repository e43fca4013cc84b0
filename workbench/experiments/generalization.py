"""``python -m workbench generalization-world``: the small world of docs/GENERALIZATION.md's generalization
runs: world v2, D = 64, only segments of at most 40 frames, the first N segments of each split, K
held-out classes, any world knobs.

    python -m workbench generalization-world OUT --train 1000 --val 300 --test 600 --holdout 8 \\
        --set appearance_from_words=0.5 [--word-oracle]

Its size is passed to ``simulate`` as an argument (recorded in dataset.json as preset "generalization");
the simulator's own sizes are left as they are.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..io import read_json
from ..paths import DATASET_META
from ..sim.knobs import parse_world_sets
from ..sim.oracles import word_oracle
from ..sim.simulate import simulate

SIZE_NAME = "generalization"            # the size's name in dataset.json ("preset")
FEATURE_DIM, MAX_FRAMES = 64, 40
ORACLE_KEYS = ("query_micro", "query_macro", "box_micro", "box_macro", "queries", "boxes")


def world_size(train: int, val: int, test: int) -> dict:
    """The generalization world's size: the first ``train`` / ``val`` / ``test`` segments of at most
    MAX_FRAMES frames, at D = FEATURE_DIM (the simulator's size layout)."""
    return dict(feature_dim=FEATURE_DIM, max_segments={"training": train, "validation": val, "testing": test},
                max_frames=MAX_FRAMES)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="dataset directory to write (must not exist)")
    p.add_argument("--train", type=int, default=3000, help="first N training segments (default 3000)")
    p.add_argument("--val", type=int, default=500, help="first N validation segments (default 500)")
    p.add_argument("--test", type=int, default=600, help="first N testing segments (default 600)")
    p.add_argument("--holdout", type=int, default=8, help="K testing classes never seen in training (default 8)")
    p.add_argument("--seed", type=int, default=0, help="simulator seed")
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE", help="world v2 knob (repeatable)")
    p.add_argument("--word-oracle", action="store_true",
                   help="also print the word oracle (sim.oracles.word_oracle): no training, the world's own P g_c")


def run(args: argparse.Namespace) -> int:
    t0 = time.time()
    out = simulate(args.out, preset=SIZE_NAME, size=world_size(args.train, args.val, args.test), seed=args.seed,
                   knobs=parse_world_sets(args.set), holdout=args.holdout)
    meta = read_json(Path(out) / DATASET_META)
    print(json.dumps({"out": str(out), "seconds": round(time.time() - t0, 1), "splits": meta["splits"],
                      "holdout_names": meta.get("holdout_names"), "holdout_dropped": meta.get("holdout_dropped"),
                      "holdout_test_objects": meta.get("holdout_test_objects"),
                      "appearance_words": meta.get("appearance_words")}))
    if args.word_oracle:
        res = word_oracle(out)
        print(json.dumps({s: {part: ({k: m[k] for k in ORACLE_KEYS} if m else None) for part, m in r.items()}
                          for s, r in res.items()}, indent=1))
    return 0
