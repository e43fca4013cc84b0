"""Write the small world of docs/GENERALIZATION.md's generalization runs: world v2, D = 64, only segments
of at most 40 frames, the first N segments of each split, K held-out classes, any world knobs.

    python tools/generalization_world.py OUT --train 1000 --val 300 --test 600 --holdout 8 \
        --set appearance_from_words=0.5 [--word-oracle]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.sim import simulate as sim  # noqa: E402
from workbench.sim.knobs import parse_world_sets  # noqa: E402

PRESET = "generalization"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--train", type=int, default=3000)
    p.add_argument("--val", type=int, default=500)
    p.add_argument("--test", type=int, default=600)
    p.add_argument("--holdout", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE")
    p.add_argument("--word-oracle", action="store_true",
                   help="also print the word oracle (world.oracles.word_oracle): no training, the world's own P g_c")
    a = p.parse_args(argv)
    sim.PRESETS[PRESET] = dict(feature_dim=64, max_segments={"training": a.train, "validation": a.val,
                                                            "testing": a.test}, max_frames=40)
    t0 = time.time()
    out = sim.simulate(a.out, preset=PRESET, seed=a.seed, knobs=parse_world_sets(a.set), holdout=a.holdout)
    meta = json.loads((Path(out) / "dataset.json").read_text())
    print(json.dumps({"out": str(out), "seconds": round(time.time() - t0, 1), "splits": meta["splits"],
                      "holdout_names": meta.get("holdout_names"), "holdout_dropped": meta.get("holdout_dropped"),
                      "holdout_test_objects": meta.get("holdout_test_objects"),
                      "appearance_words": meta.get("appearance_words")}))
    if a.word_oracle:
        from workbench.sim.oracles import word_oracle

        res = word_oracle(out)
        keep = ("query_micro", "query_macro", "box_micro", "box_macro", "queries", "boxes")
        print(json.dumps({s: {part: ({k: m[k] for k in keep} if m else None) for part, m in r.items()}
                          for s, r in res.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
