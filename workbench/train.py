"""``python -m workbench train``: train a preset on a dataset directory, select the epoch on
validation, and write the run directory (config, log, checkpoints, metrics). Re-running on an
existing run directory resumes from its last checkpoint."""
from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .allocator import state as allocator_state
from .baselines import random_boxes, upper_bound_boxes
from .check import require_ready
from .config import Config, MODEL_PRESETS, dumps, parse_sets, preset
from .datasets import detect
from .datasets.base import DatasetFormat
from .engine import (autocast, evaluate_split, fit_on_validation, make_optimizer, read_ahead, resolve_device,
                     to_device, train_one_epoch)
from .evaluate import HELDOUT, METRICS, evaluate_boxes, gt_units, heldout_metrics
from .features.batches import ResidentBatches, TrainBatches
from .io import DataError, read_json, write_json
from .model import build_model, loss_weights
from .model.base import GroundingModel
from .model.diagnostics import epoch_self_positive, transfer_diagnostics
from .model.negatives import sample_negatives
from .paths import METRICS_FILE, RUN_PROGRESS
from .precision import Precision, pin as pin_precision, resolve as resolve_precision, scope as precision_scope
from .prepare import fill_missing
from .run import (BEST, CONFIG, LAST, RESUMABLE, RunDir, check_checkpoint_identity, note, read_metrics, run_identity,
                  store_digests, text_cache_identity, text_cache_name)
from .sim.oracles import teacher_looks
from .text.contextual import encoder_name
from .workspace import Workspace, open_workspace

# config keys that may differ between a run and its resumption (they do not change results on CPU)
_RESUMABLE = RESUMABLE


def text_encoder(ws: Workspace) -> str:
    """Display name of the contextual encoder of the workspace's text cache (e.g. "MiniLM-L6")."""
    return encoder_name(ws.text.attrs)


def _set_threads(cfg: Config) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)


def build(cfg: Config, ws: Workspace, device: torch.device):
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, ws.dims).to(device)
    opt = make_optimizer(model, cfg)
    return model, opt, loss_weights(cfg)


def lr_at(cfg: Config, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based): constant, or StepLR as in the public STVG code
    (``lr * lr_gamma ** (epoch // lr_step)``, the scheduler stepped once per epoch)."""
    if cfg.lr_schedule == "step":
        return cfg.lr * cfg.lr_gamma ** (epoch // max(cfg.lr_step, 1))
    return cfg.lr


def probe_batch(data: TrainBatches, cfg: Config) -> dict:
    """The diagnostics' fixed batch: the first ``batch_size`` training segments, frames drawn from (seed, -1)."""
    segs = data.indices[:cfg.batch_size]
    return data.make(segs, np.random.default_rng([cfg.seed, 2**31 - 1]))


def diagnose(model, weights, batch, cfg: Config, device) -> dict:
    """Transfer / CAOS diagnostics of the probe batch (see workbench.model.diagnostics)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 999_983)
    batch = to_device(batch, device)
    neg = sample_negatives(batch["obj_class"].cpu(), batch["obj_mask"].cpu(), gen).to(device)
    return transfer_diagnostics(model, batch, neg, weights, autocast(cfg, device))


class Heartbeat:
    """Writes the run's ``progress.json`` (epoch, step, running mean loss of the epoch) at most every
    ``every_s`` seconds and at the end of each epoch, so that a sweep can show where its runs are."""

    def __init__(self, run: RunDir, epochs: int, steps: int, every_s: float = 2.0):
        self.run, self.epochs, self.steps, self.every_s = run, epochs, steps, every_s
        self.last, self.sum, self.n, self.epoch = 0.0, 0.0, 0, -1

    def __call__(self, epoch: int, step: int, losses: dict) -> None:
        if epoch != self.epoch:
            self.epoch, self.sum, self.n = epoch, 0.0, 0
        self.sum += float(losses["total"])
        self.n += 1
        now = time.time()
        if now - self.last >= self.every_s or step + 1 == self.steps:
            self.last = now
            write_json(self.run.file(RUN_PROGRESS), {"epoch": epoch, "epochs": self.epochs, "step": step,
                                                 "steps": self.steps, "loss": self.sum / self.n,
                                                 "time": time.strftime("%Y-%m-%dT%H:%M:%S")})


def train(cfg: Config, out: str | Path, preset_name: str = "",
          on_epoch: Callable[[dict], None] | None = None, on_step: Callable[[int, int, dict], None] | None = None,
          ws: Workspace | None = None, fmt: DatasetFormat | None = None) -> dict:
    """Train ``cfg`` into run directory ``out`` (resuming if it holds a checkpoint); returns metrics.json.

    The run directory is locked for the whole run; config.json is written only once the data,
    model and checkpoint are checked, so a run that fails at start can be re-run with other values."""
    _set_threads(cfg)
    run = RunDir(out)
    with run.lock(), precision_scope():
        return _train(cfg, run, preset_name, on_epoch, on_step, ws, fmt)


def _check_resumable(run: RunDir, cfg: Config) -> None:
    """A run directory with a checkpoint or metrics may only be resumed with the same config."""
    if not run.file(CONFIG).is_file():
        return
    started = run.file(LAST).is_file() or run.file(METRICS_FILE).is_file()
    if not started:
        try:
            run.read_config()
        except DataError as e:                       # a half-written or foreign config of a run never started
            print(f"train: {run.path} holds no checkpoint; replacing its config.json ({e})")
            return
    old_preset, old = run.read_config()
    diff = _changed_keys(old, cfg)
    if diff and started:
        raise DataError(f"{run.path}: holds a run with a different config ({sorted(diff)}); "
                        "use a new --out or the same settings to resume")
    if diff:
        print(f"train: {run.path} holds no checkpoint; starting it anew with the new config "
              f"(changed: {sorted(diff)})")


def _changed_keys(old: Config, cfg: Config) -> set[str]:
    """The config keys whose values differ between a run folder's config and ``cfg``, less those a run may
    change and resume (``RESUMABLE``)."""
    was = old.to_dict()
    return {k for k, v in cfg.to_dict().items() if was[k] != v} - _RESUMABLE


def _check_same_data(run: RunDir, stores: dict[str, str]) -> None:
    """A resumed run must read the stores its checkpoint was trained on (same index digests)."""
    old = read_json(run.file(CONFIG)).get("stores")
    if not isinstance(old, dict):
        return                                       # written by an older version: nothing recorded
    changed = sorted(s for s in set(old) | set(stores) if old.get(s) != stores.get(s))
    if changed:
        raise DataError(f"{run.path}: the feature store(s) {changed} differ from those its checkpoint was trained on "
                        "(rebuilt or replaced since); use a new --out, or restore the stores to resume")


def _check_same_text(run: RunDir, text: dict) -> None:
    """A resumed run must read the text cache its checkpoint was trained on (same inputs hash: segments,
    sentences, objects, encoder, GloVe source)."""
    old = read_json(run.file(CONFIG)).get("text_cache")
    if not isinstance(old, dict):
        note(f"{run.file(CONFIG)}: records no text cache identity (written before it was recorded); not checked")
        return
    if old.get("inputs_hash") != text["inputs_hash"]:
        raise DataError(f"{run.path}: the text cache differs from the one its checkpoint was trained on "
                        f"({text_cache_name(old)} there, {text_cache_name(text)} here); use a new --out, or restore the "
                        "text cache to resume")


def identity_of(cfg: Config, ws: Workspace) -> dict:
    """The identity of a run of ``cfg`` on ``ws`` (``run.run_identity``): config, store digests, text cache."""
    return run_identity(cfg, store_digests(ws.stores), text_cache_identity(ws.text))


def _metrics_identity(ident: dict) -> dict:
    return {"run": ident["run"], "config_digest": ident["config_digest"]}


def _resumed_precision(run: RunDir, cfg: Config, device, now: Precision) -> Precision:
    """A resumed run goes on in the dtype its first start ran in. ``dtype=auto`` is a measurement; taken
    again at the resume (another process, maybe another load) it can come out the other way, and the
    resumed epochs would then not repeat the uninterrupted run's (tests/test_train.py)."""
    old = read_json(run.file(CONFIG)).get("precision")
    if cfg.dtype != "auto" or not isinstance(old, dict) or old.get("dtype") not in ("bf16", "fp32"):
        return now
    if old["dtype"] != now.dtype:
        print(f"train: resuming in {old['dtype']}, the dtype this run started in (dtype=auto would now "
              f"pick {now.dtype}: {now.reason})")
    return pin_precision(device, Precision(old["dtype"], str(old.get("reason", "")), "auto", now.cached))


def oracle_teacher(cfg: Config):
    """cfg.teacher = "oracle": the world's truth of the training segments (``sim.oracles.teacher_looks`` of the
    world v2 dataset ``cfg.data``), which the batches carry; None otherwise."""
    return functools.partial(teacher_looks, cfg.data) if cfg.teacher == "oracle" else None


def _train(cfg: Config, run: RunDir, preset_name: str, on_epoch, on_step, ws: Workspace | None,
           fmt: DatasetFormat | None = None) -> dict:
    _check_resumable(run, cfg)
    ws = ws or open_workspace(cfg, evaluated_only=True, fmt=fmt)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.dtype, device)  # which dtype ran and why, recorded with the run
    model, opt, weights = build(cfg, ws, device)
    batches = ResidentBatches if cfg.resident_features else TrainBatches
    extra = (device,) if cfg.resident_features else ()
    data = batches(ws.stores["training"], ws.text, cfg.batch_size, cfg.num_frames, cfg.seed, *extra,
                   max_segments=cfg.max_train_segments, teacher=oracle_teacher(cfg))
    if data.skipped:
        print(f"train: {data.skipped} training segments name no queried object and are left out")
    if len(data) == 0:
        raise DataError(f"{ws.stores['training'].path}: {len(data.indices)} usable training segments, fewer than "
                        f"batch_size={cfg.batch_size}; lower batch_size or raise max_train_segments")
    val_keys = ws.eval_keys("validation", cfg) if "validation" in ws.gt else []
    selected_rows: dict = {}                      # the validation boxes of the best epoch of this process

    start, best = 0, {"epoch": -1, "score": -np.inf}
    log = run.read_log()
    stores = store_digests(ws.stores)
    text = text_cache_identity(ws.text)
    ident = run_identity(cfg, stores, text)       # what this run's numbers depend on (run.run_identity)
    ck = run.load_checkpoint(LAST, map_location=device, required=("model", "optimizer", "epoch", "best"))
    if ck is not None:
        _check_same_data(run, stores)
        _check_same_text(run, text)
        check_checkpoint_identity(run.file(LAST), ck, ident)      # a checkpoint of another run is refused
        try:
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
        except (RuntimeError, ValueError, KeyError) as e:
            raise DataError(f"{run.file(LAST)}: does not fit the model of this config "
                            f"({str(e).splitlines()[0][:200]})") from None
        start, best = ck["epoch"] + 1, ck["best"]
        log = [r for r in log if r["epoch"] < start]
        print(f"train: resuming {run.path} after epoch {ck['epoch']}")
    else:
        log = []
    if ck is not None:
        precision = _resumed_precision(run, cfg, device, precision)
    finished = start >= cfg.epochs and run.file(METRICS_FILE).is_file()
    done = read_metrics(run.file(METRICS_FILE), expected=ident) if finished else None   # checked before config.json
    run.write_config(preset_name, cfg, extra={"dims": ws.dims, "stores": stores,  # the run has really started
                                              "text_encoder": text_encoder(ws), "text_cache": text,
                                              "identity": ident,
                                              "precision": precision.to_dict(), "prefetch": read_ahead(cfg, device),
                                              "allocator": allocator_state()})
    if done is not None:
        return done

    # Diagnostics of the transfer: SCL-family models only (they expose transfer_tau / losses(internals)).
    probe = probe_batch(data, cfg) if cfg.diagnostics and len(data) and hasattr(model, "transfer_tau") else None
    beat = Heartbeat(run, cfg.epochs, len(data))
    for epoch in range(start, cfg.epochs):
        t0 = time.time()

        def step_cb(s: int, v: dict, e: int = epoch) -> None:
            beat(e, s, v)
            if on_step:
                on_step(e, s, v)
        lr = lr_at(cfg, epoch)
        for group in opt.param_groups:
            group["lr"] = lr
        # Dropout draws from the global RNG: seed it per epoch so a resumed run repeats it exactly.
        torch.manual_seed(cfg.seed * 1_000_003 + epoch)
        losses = train_one_epoch(model, weights, data, opt, cfg, epoch, device, step_cb)
        train_s = time.time() - t0
        row = {"epoch": epoch, "lr": lr, "losses": losses, "train_seconds": round(train_s, 2), "dtype": precision.dtype}
        if probe is not None:
            row["diagnostics"] = diagnose(model, weights, probe, cfg, device)
            # issue 21 item 4: how often CAOS's d+ is the object itself, over the epoch's batches
            row["diagnostics"]["caos_self_positive_epoch"] = epoch_self_positive(data, epoch)
        if val_keys:
            rows: dict = {}
            with model.selection_mode():
                val = evaluate_split(model, ws.stores["validation"], ws.text, ws.gt["validation"], ws.vocab, cfg,
                                     device, val_keys, rule=ws.rule, batches=ws.eval_batches("validation", val_keys),
                                     units=ws.eval_units("validation", val_keys), keep=rows)
            row["val"] = val
            score = val[cfg.select_metric]
            if score > best["score"]:
                best = {"epoch": epoch, "score": score}
                selected_rows = {"epoch": epoch, "pred": rows["pred"]}
                run.save_checkpoint(BEST, {"model": model.state_dict(), "epoch": epoch, "identity": ident})
        else:
            best = {"epoch": epoch, "score": 0.0}
            run.save_checkpoint(BEST, {"model": model.state_dict(), "epoch": epoch, "identity": ident})
        row["seconds"] = round(time.time() - t0, 2)
        log.append(row)
        run.write_log(log)
        run.save_checkpoint(LAST, {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                                   "best": best, "identity": ident})
        if on_epoch:
            on_epoch(row)
    return finish(cfg, run, ws, model, device, best, ident, selected_rows)


def _same_as_selection(model) -> bool:
    """Whether the final validation of the selected checkpoint is the computation its epoch's validation
    was: a model whose ``selection_mode`` and ``fit_on_validation`` are the protocol's no-ops (not the
    fusion ensemble, which scores with an interim weight while selecting and then fits its own)."""
    kind = type(model)
    return (kind.selection_mode is GroundingModel.selection_mode
            and kind.fit_on_validation is GroundingModel.fit_on_validation)


def finish(cfg: Config, run: RunDir, ws: Workspace, model, device, best: dict, ident: dict,
           selected_rows: dict | None = None) -> dict:
    """Evaluate the checkpoint selected on validation (which must be this run's, ``ident``) on validation and
    testing -> metrics.json. ``selected_rows`` ({"epoch", "pred"}): the validation boxes the selected epoch
    predicted in this process; scored again instead of predicted again where that is the same computation."""
    ck = run.load_checkpoint(BEST, map_location=device)
    check_checkpoint_identity(run.file(BEST), ck, ident)
    model.load_state_dict(ck["model"])
    metrics: dict = {"selected_epoch": int(ck["epoch"]), "select_metric": cfg.select_metric,
                     "identity": _metrics_identity(ident)}
    if "validation" in ws.gt:
        keys = ws.eval_keys("validation", cfg)
        metrics.update(fit_on_validation(model, ws.stores["validation"], ws.text, ws.gt["validation"], ws.vocab, cfg,
                                         device, keys, rule=ws.rule, batches=ws.eval_batches("validation", keys),
                                         units=ws.eval_units("validation", keys)))
    reuse = (selected_rows or {}).get("epoch") == int(ck["epoch"]) and _same_as_selection(model)
    for split in ("validation", "testing"):
        if split in ws.gt:
            keys = ws.eval_keys(split, cfg)
            pred = selected_rows["pred"] if reuse and split == "validation" else None
            metrics[split] = evaluate_split(model, ws.stores[split], ws.text, ws.gt[split], ws.vocab, cfg, device,
                                            keys, rule=ws.rule, heldout=getattr(ws, "heldout", None),
                                            batches=ws.eval_batches(split, keys), units=ws.eval_units(split, keys),
                                            pred=pred)
    _move_heldout(metrics, getattr(ws, "heldout", None))
    write_json(run.file(METRICS_FILE), metrics, indent=2)
    return metrics


def _move_heldout(metrics: dict, heldout: list[int]) -> None:
    """metrics.json keeps the held-out-class-only metrics of each split under one top-level key:
    ``{"heldout": {"classes": [...], "validation": {...}, "testing": {...}}}`` (absent without held-out classes)."""
    if not heldout:
        return
    out: dict = {"classes": list(heldout)}
    for split in ("validation", "testing"):
        if isinstance(metrics.get(split), dict) and HELDOUT in metrics[split]:
            out[split] = metrics[split].pop(HELDOUT)
    metrics[HELDOUT] = out


BASELINES = ("random", "upper-bound")


def run_baseline(name: str, cfg: Config, out: str | Path, ws: Workspace | None = None,
                 fmt: DatasetFormat | None = None) -> dict:
    """The Random / Upper Bound rows: predictions from the proposals alone, evaluated like a run."""
    run = RunDir(out)
    with run.lock():
        _check_baseline_target(run, name, cfg)
        ws = ws or open_workspace(cfg, fmt=fmt)
        run.write_config(name, cfg)
        return _baseline(name, cfg, run, ws)


def _check_baseline_target(run: RunDir, name: str, cfg: Config) -> None:
    """A baseline row writes config.json and metrics.json: never over a trained run (checkpoints) nor over the
    finished run of another preset or config (a re-run of the same row recomputes it)."""
    ck = [n for n in (LAST, BEST) if run.file(n).is_file()]
    if ck:
        raise DataError(f"{run.path}: holds a trained run ({', '.join(ck)}); the {name} row would overwrite its "
                        "config.json and metrics.json: choose another --out")
    if run.file(METRICS_FILE).is_file() and run.file(CONFIG).is_file():
        old_preset, old = run.read_config()
        diff = sorted(_changed_keys(old, cfg))
        if old_preset != name or diff:
            raise DataError(f"{run.path}: holds the finished run of preset {old_preset!r}"
                            + (f" with another config ({diff})" if old_preset == name else "")
                            + f"; the {name} row would overwrite its metrics: choose another --out")


def _baseline(name: str, cfg: Config, run: RunDir, ws: Workspace) -> dict:
    metrics: dict = {"selected_epoch": None, "select_metric": None, "identity": _metrics_identity(identity_of(cfg, ws))}
    for split in ("validation", "testing"):
        if split in ws.gt:
            keys = ws.eval_keys(split, cfg)
            gt = {k: ws.gt[split][k] for k in keys}
            store = ws.stores[split]
            boxes = random_boxes(gt, store, cfg.seed) if name == "random" else upper_bound_boxes(gt, store)
            units = gt_units(gt, ws.vocab)
            metrics[split] = evaluate_boxes(units, boxes, ws.vocab, rule=ws.rule)
            if getattr(ws, "heldout", None):
                metrics[split][HELDOUT] = heldout_metrics(units, boxes, ws.vocab, ws.heldout, rule=ws.rule)
    _move_heldout(metrics, getattr(ws, "heldout", None))
    write_json(run.file(METRICS_FILE), metrics, indent=2)
    return metrics


def format_defaults(name: str, overrides: dict, fmt: DatasetFormat | None = None) -> dict:
    """The dataset format's paper hyper-parameters (``DatasetFormat.defaults``; ActivityNet-Entities: T = 6,
    batch 24, lr 8e-4) for the keys neither the preset ``name`` nor ``overrides`` set."""
    data = overrides.get("data")
    if not data or not Path(data).is_dir():
        return {}
    fixed = set(overrides) | set(MODEL_PRESETS.get(name, {}))
    return {k: v for k, v in (fmt or detect(Path(data))).defaults.items() if k not in fixed}


def config_for(name: str, fmt: DatasetFormat | None = None, **overrides) -> Config:
    """The config of a preset or of a baseline row (random / upper-bound), with the dataset format's
    defaults (``format_defaults``; ``fmt`` the data's format when the caller detected it) and ``overrides``."""
    overrides = {**format_defaults(name, overrides, fmt), **overrides}
    return Config().replace(**overrides) if name in BASELINES else preset(name, **overrides)


def run_preset(name: str, cfg: Config, out: str | Path, on_epoch: Callable[[dict], None] | None = None,
               on_step: Callable[[int, int, dict], None] | None = None, fmt: DatasetFormat | None = None) -> dict:
    """Train ``cfg`` as preset ``name`` into ``out`` (random / upper-bound: evaluate) -> metrics.json.

    The one code path of the CLI, the training notebook and sweeps (``fmt``: the data's format, when the caller
    detected it)."""
    if name in BASELINES:
        return run_baseline(name, cfg, out, fmt=fmt)
    return train(cfg, out, name, on_epoch=on_epoch, on_step=on_step, fmt=fmt)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset directory")
    p.add_argument("--preset", required=True, choices=[*MODEL_PRESETS, *BASELINES], metavar="NAME",
                   help=f"one of: {', '.join([*MODEL_PRESETS, *BASELINES])}")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    p.add_argument("--out", required=True, help="run directory (resumed if it holds a checkpoint)")


def run(args: argparse.Namespace) -> int:
    sets = parse_sets(args.set)
    if "data" in sets and Path(sets["data"]).resolve() != Path(args.data).resolve():
        raise DataError(f"--set data={sets['data']} contradicts --data {args.data}; give the dataset once (--data)")
    sets.setdefault("data", args.data)
    fmt = detect(Path(args.data))                       # the one detection of this command, passed down
    cfg = config_for(args.preset, fmt=fmt, **sets)
    if not cfg.text_features:                           # the default cache: built when missing, as are stores
        fill_missing(cfg.data, log=lambda m: print(f"train: {m}", flush=True), fmt=fmt)
    require_ready(cfg.data, cfg.text_features or None, fmt=fmt)   # what check-dataset checks, before the first step
    print(dumps(cfg))

    def on_epoch(row):
        val = row.get("val", {})
        print(json.dumps({"epoch": row["epoch"], "loss": round(row["losses"]["total"], 4),
                          **{k: None if v is None else round(v, 2) for k, v in val.items()
                             if k.endswith(("macro", "micro"))},        # null: a metric the eval_rule does not report
                          "seconds": row["seconds"]}), flush=True)

    metrics = run_preset(args.preset, cfg, args.out, on_epoch=on_epoch, fmt=fmt)
    print(summary_line(metrics, args.out))
    return 0


def summary_line(metrics: dict, out) -> str:
    """The last lines ``train`` prints: the four metrics per split (null where a split's annotations hold no
    box, e.g. the official public test file), and what to do for such a split."""
    table, boxless = {}, []
    for s in ("validation", "testing"):
        m = metrics.get(s)
        if not isinstance(m, dict):
            continue
        table[s] = {k: (None if m.get(k) is None else round(float(m[k]), 2)) for k in METRICS if k in m}
        if not m.get("boxes") and all(table[s].get(k) is None for k in METRICS):
            boxless.append(s)
    lines = [json.dumps(table)]
    for s in boxless:
        lines.append(f"train: the {s} annotations hold no boxes (a test-server split): its metrics are null; write "
                     f"the submission with `python -m workbench predict --run {out} --split {s} --out PRED.json`")
    return "\n".join(lines)
