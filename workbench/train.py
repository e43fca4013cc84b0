"""``python -m workbench train``: train a preset on a dataset directory, select the epoch on
validation, and write the run directory (config, log, checkpoints, metrics). Re-running on an
existing run directory resumes from its last checkpoint."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .config import Config, dumps, parse_sets, preset
from .data.batches import ResidentBatches, TrainBatches
from .engine import evaluate_split, fit_on_validation, make_optimizer, resolve_device, train_one_epoch
from .io import DataError, write_json
from .paths import METRICS_FILE
from .precision import resolve as resolve_precision
from .run import BEST, LAST, RunDir
from .workspace import Workspace

# config keys that may differ between a run and its resumption (they do not change results on CPU)
_RESUMABLE = {"device", "threads", "resident_features"}


def _set_threads(cfg: Config) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def build(cfg: Config, ws: Workspace, device: torch.device):
    from .model import build_model, loss_weights

    torch.manual_seed(cfg.seed)
    model = build_model(cfg, ws.dims).to(device)
    opt = make_optimizer(model, cfg)
    return model, opt, loss_weights(cfg)


def train(cfg: Config, out: str | Path, preset_name: str = "",
          on_epoch: Callable[[dict], None] | None = None, on_step: Callable[[int, int, dict], None] | None = None,
          ws: Workspace | None = None) -> dict:
    """Train ``cfg`` into run directory ``out`` (resuming if it holds a checkpoint); returns metrics.json."""
    _set_threads(cfg)
    run = RunDir(out)
    run.path.mkdir(parents=True, exist_ok=True)
    if run.file("config.json").is_file():
        old_preset, old = run.read_config()
        diff = {k for k, v in cfg.to_dict().items() if old.to_dict()[k] != v} - _RESUMABLE
        if diff:
            raise DataError(f"{run.path}: holds a run with a different config ({sorted(diff)}); "
                            "use a new --out or the same settings to resume")
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.dtype, device)  # which dtype ran and why, recorded with the run
    run.write_config(preset_name, cfg, extra={"precision": precision.to_dict()})
    ws = ws or Workspace(cfg)
    model, opt, weights = build(cfg, ws, device)
    if cfg.resident_features:
        data = ResidentBatches(ws.stores["training"], ws.text, cfg.batch_size, cfg.num_frames, cfg.seed, device,
                               cfg.max_train_segments)
    else:
        data = TrainBatches(ws.stores["training"], ws.text, cfg.batch_size, cfg.num_frames, cfg.seed,
                            cfg.max_train_segments)
    val_keys = ws.eval_keys("validation", cfg) if "validation" in ws.gt else []

    start, best = 0, {"epoch": -1, "score": -np.inf}
    log = run.read_log()
    ck = run.load_checkpoint(LAST, map_location=device)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        start, best = ck["epoch"] + 1, ck["best"]
        log = [r for r in log if r["epoch"] < start]
        print(f"train: resuming {run.path} after epoch {ck['epoch']}")
    else:
        log = []
    if start >= cfg.epochs and run.file(METRICS_FILE).is_file():
        return json.loads(run.file(METRICS_FILE).read_text())

    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        step_cb = (lambda s, v, e=epoch: on_step(e, s, v)) if on_step else None
        losses = train_one_epoch(model, weights, data, opt, cfg, epoch, device, step_cb)
        train_s = time.time() - t0
        row = {"epoch": epoch, "losses": losses, "train_seconds": round(train_s, 2), "dtype": precision.dtype}
        if val_keys:
            with model.selection_mode():
                val = evaluate_split(model, ws.stores["validation"], ws.text, ws.gt["validation"], ws.vocab, cfg,
                                     device, val_keys, rule=ws.rule)
            row["val"] = val
            score = val[cfg.select_metric]
            if score > best["score"]:
                best = {"epoch": epoch, "score": score}
                run.save_checkpoint(BEST, {"model": model.state_dict(), "epoch": epoch})
        else:
            best = {"epoch": epoch, "score": 0.0}
            run.save_checkpoint(BEST, {"model": model.state_dict(), "epoch": epoch})
        row["seconds"] = round(time.time() - t0, 2)
        log.append(row)
        run.write_log(log)
        run.save_checkpoint(LAST, {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                                   "best": best})
        if on_epoch:
            on_epoch(row)
    return finish(cfg, run, ws, model, device, best)


def finish(cfg: Config, run: RunDir, ws: Workspace, model, device, best: dict) -> dict:
    """Evaluate the checkpoint selected on validation on validation and testing -> metrics.json."""
    ck = run.load_checkpoint(BEST, map_location=device)
    model.load_state_dict(ck["model"])
    metrics: dict = {"selected_epoch": int(ck["epoch"]), "select_metric": cfg.select_metric}
    if "validation" in ws.gt:
        metrics.update(fit_on_validation(model, ws.stores["validation"], ws.text, ws.gt["validation"], ws.vocab, cfg,
                                         device, ws.eval_keys("validation", cfg), rule=ws.rule))
    for split in ("validation", "testing"):
        if split in ws.gt:
            metrics[split] = evaluate_split(model, ws.stores[split], ws.text, ws.gt[split], ws.vocab, cfg, device,
                                            ws.eval_keys(split, cfg), rule=ws.rule)
    write_json(run.file(METRICS_FILE), metrics, indent=2)
    return metrics


BASELINES = ("random", "upper-bound")


def run_baseline(name: str, cfg: Config, out: str | Path, ws: Workspace | None = None) -> dict:
    """The Random / Upper Bound rows: predictions from the proposals alone, evaluated like a run."""
    from .baselines import random_boxes, upper_bound_boxes
    from .evaluate import evaluate_boxes

    run = RunDir(out)
    run.path.mkdir(parents=True, exist_ok=True)
    run.write_config(name, cfg)
    ws = ws or Workspace(cfg)
    metrics: dict = {"selected_epoch": None, "select_metric": None}
    for split in ("validation", "testing"):
        if split in ws.gt:
            keys = ws.eval_keys(split, cfg)
            gt = {k: ws.gt[split][k] for k in keys}
            store = ws.stores[split]
            boxes = random_boxes(gt, store, cfg.seed) if name == "random" else upper_bound_boxes(gt, store)
            metrics[split] = evaluate_boxes(gt, boxes, ws.vocab, rule=ws.rule)
    write_json(run.file(METRICS_FILE), metrics, indent=2)
    return metrics


def config_for(name: str, **overrides) -> Config:
    """The config of a preset or of a baseline row (random / upper-bound), with ``overrides``."""
    return Config().replace(**overrides) if name in BASELINES else preset(name, **overrides)


def run_preset(name: str, cfg: Config, out: str | Path, on_epoch: Callable[[dict], None] | None = None,
               on_step: Callable[[int, int, dict], None] | None = None) -> dict:
    """Train ``cfg`` as preset ``name`` into ``out`` (random / upper-bound: evaluate) -> metrics.json.

    The one code path of the CLI, the training notebook and sweeps."""
    if name in BASELINES:
        return run_baseline(name, cfg, out)
    return train(cfg, out, name, on_epoch=on_epoch, on_step=on_step)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .config import PRESETS

    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--preset", required=True, choices=[*PRESETS, *BASELINES], metavar="NAME",
                   help=f"one of: {', '.join([*PRESETS, *BASELINES])}")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    p.add_argument("--out", required=True, help="run directory (resumed if it holds a checkpoint)")


def run(args: argparse.Namespace) -> int:
    sets = parse_sets(args.set)
    sets.setdefault("data", args.data)
    cfg = config_for(args.preset, **sets)
    print(dumps(cfg))

    def on_epoch(row):
        val = row.get("val", {})
        print(json.dumps({"epoch": row["epoch"], "loss": round(row["losses"]["total"], 4),
                          **{k: round(v, 2) for k, v in val.items() if k.endswith(("macro", "micro"))},
                          "seconds": row["seconds"]}), flush=True)

    metrics = run_preset(args.preset, cfg, args.out, on_epoch=on_epoch)
    print(json.dumps({s: {k: round(v, 2) for k, v in metrics[s].items() if k.endswith(("macro", "micro"))}
                      for s in ("validation", "testing") if s in metrics}))
    return 0
