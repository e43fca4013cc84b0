"""A small multi-seed study in one process: each named variant (a preset plus config overrides) trained
with several seeds on one dataset, sharing the opened workspace; per-seed rows, mean ± std and the
paired difference to a baseline variant (95 % t-interval over seeds) via workbench.report.results.

    python tools/study.py --data work/demo --out work/study_temporal --seeds 0 1 2 \
        --set max_train_segments=480 --set epochs=10 \
        --variant stvg=stvg --variant stvg-additive=stvg:temporal=additive --baseline stvg

A variant is NAME=PRESET[:key=value,key=value]. Finished runs (metrics.json present) are skipped.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.config import parse_sets, preset  # noqa: E402
from workbench.io import atomic_path, write_text  # noqa: E402
from workbench.report.results import display_name, learning_curves, markdown  # noqa: E402
from workbench.train import Workspace, text_encoder, train  # noqa: E402

METRICS = ("query_macro", "query_micro", "box_macro", "box_micro")


def parse_variant(text: str) -> tuple[str, str, dict[str, str]]:
    name, _, rest = text.partition("=")
    pre, _, sets = rest.partition(":")
    return name, pre, parse_sets([s for s in sets.split(",") if s]) if sets else {}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every variant")
    ap.add_argument("--variant", action="append", required=True, metavar="NAME=PRESET[:k=v,...]")
    ap.add_argument("--baseline", default="")
    ap.add_argument("--report-only", action="store_true", help="tabulate finished runs only; train nothing")
    args = ap.parse_args(argv)
    common = parse_sets(args.set)
    variants = [parse_variant(v) for v in args.variant]
    cfgs = {n: preset(p, **{**common, **over, "data": args.data}) for n, p, over in variants}  # fail early
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ws = Workspace(next(iter(cfgs.values())))
    enc = text_encoder(ws)
    # Workspace opens the text cache once for all runs; --report-only reads nothing else
    rows = []
    for seed in args.seeds:
        for name, pre, _ in variants:
            cfg = cfgs[name].replace(seed=seed)
            run = out / name / f"seed-{seed}"
            t0 = time.time()
            row = {"preset": name, "seed": seed, "label": display_name(name, cfg.to_dict(), enc), "status": "ok",
                   "error": "", "selected_epoch": None, "run": str(run)}
            if args.report_only:
                if not (run / "metrics.json").is_file():
                    rows.append({**row, "status": "missing"})
                    continue
                metrics = json.loads((run / "metrics.json").read_text())
                row["selected_epoch"] = metrics["selected_epoch"]
                for s in ("validation", "testing"):
                    for m in METRICS:
                        row[f"{s}_{m}"] = metrics.get(s, {}).get(m)
                rows.append(row)
                continue
            try:
                metrics = train(cfg, run, pre, ws=ws)
            except (FloatingPointError, RuntimeError) as e:      # e.g. a non-finite loss: recorded, not raised
                row.update(status="failed", error=f"{type(e).__name__}: {e}"[:300])
                print(json.dumps({"variant": name, "seed": seed, "failed": row["error"]}), flush=True)
                rows.append(row)
                continue
            print(json.dumps({"variant": name, "seed": seed, "seconds": round(time.time() - t0, 1),
                              "val_box_micro": round(metrics["validation"]["box_micro"], 2)}), flush=True)
            row["selected_epoch"] = metrics["selected_epoch"]
            for s in ("validation", "testing"):
                for m in METRICS:
                    row[f"{s}_{m}"] = metrics.get(s, {}).get(m)
            rows.append(row)
    df = pd.DataFrame(rows)
    order = {n: i for i, (n, _, _) in enumerate(variants)}
    df = df.sort_values(["preset", "seed"], key=lambda c: c.map(order) if c.name == "preset" else c)
    with atomic_path(out / "results.csv") as tmp:
        df.to_csv(tmp, index=False, float_format="%.4f")
    curves = learning_curves(df)
    with atomic_path(out / "learning_curves.csv") as tmp:
        curves.to_csv(tmp, index=False, float_format="%.4f")
    title = f"study {out.name} on {args.data} ({' '.join(args.set)})"
    write_text(out / "results.md", markdown(df, title, baseline=args.baseline or variants[0][0], curves=curves))
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
