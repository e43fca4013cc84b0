"""``python -m workbench predict``: top-1 proposal per (object, frame) of a trained run, in the
official submission layout; plus the per-segment views the notebooks draw (similarity maps,
temporal weights, learned concepts)."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Config
from .engine import autocast, predict_split, resolve_device, to_device
from .features.batches import collate_text
from .io import DataError, read_json, write_json
from .model import build_model
from .paths import METRICS_FILE
from .run import (BEST, CONFIG, RunDir, check_checkpoint_identity, note, read_metrics, run_identity, store_digests,
                  text_cache_identity, text_cache_name)
from .workspace import Workspace


@dataclass
class LoadedRun:
    path: Path
    preset: str
    cfg: Config
    model: torch.nn.Module
    ws: Workspace
    device: torch.device


def load_run(run_dir: str | Path, data: str | None = None, device: str | None = None) -> LoadedRun:
    """Rebuild a run's model from its config and best checkpoint (``data`` overrides the dataset dir)."""
    run = RunDir(run_dir)
    preset_name, cfg = run.read_config()
    if data:
        cfg = cfg.replace(data=data)
    if device:
        cfg = cfg.replace(device=device)
    ws = Workspace(cfg)
    dev = resolve_device(cfg.device)
    trained = (read_json(run.file(CONFIG)) or {}).get("dims")
    diff = ({k: (trained[k], ws.dims[k]) for k in trained if k in ws.dims and trained[k] != ws.dims[k]}
            if isinstance(trained, dict) else {})   # keys recorded by the run's version only
    if diff:
        raise DataError(f"{cfg.data}: feature dimensions {ws.dims} differ from those run {run.path} was trained on "
                        f"({trained}; trained vs. here: {diff}); predict on data with the run's feature dimensions")
    ident = check_provenance(run, cfg, ws)
    model = build_model(cfg, ws.dims).to(dev)
    ck = run.load_checkpoint(BEST, map_location=dev)
    if ck is None:
        raise DataError(f"{run.file(BEST)}: no checkpoint (train the run first)")
    check_checkpoint_identity(run.file(BEST), ck, ident, what=f"run {run.path}")
    want = model.state_dict()
    bad = [k for k, v in ck["model"].items() if k in want and tuple(v.shape) != tuple(want[k].shape)]
    if bad:
        raise DataError(f"{run.file(BEST)}: parameter {bad[0]} has shape {tuple(ck['model'][bad[0]].shape)}, but the "
                        f"data {cfg.data} (dims {ws.dims}) needs {tuple(want[bad[0]].shape)}; predict on data with the "
                        "run's feature dimensions")
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise DataError(f"{run.file(BEST)}: does not fit the model of {run.file(CONFIG)} "
                        f"({str(e).splitlines()[0][:200]})") from None
    model.eval()
    model.restore_fitted(read_metrics(run.file(METRICS_FILE), expected=ident) if run.file(METRICS_FILE).is_file() else {})
    return LoadedRun(run.path, preset_name, cfg, model, ws, dev)


def check_provenance(run: RunDir, cfg: Config, ws: Workspace) -> dict:
    """The data a trained run is applied to must be the data it was trained on: the feature stores' index
    digests and the text cache's inputs hash recorded in its config.json (a dataset link repointed to another
    world, a text cache rebuilt from another GloVe source are refused, naming both). Paths are not compared
    (a moved dataset is fine). Returns the run's identity (``run.run_identity``) for its checkpoint and metrics."""
    raw = read_json(run.file(CONFIG)) or {}
    here = store_digests(ws.stores)
    stores = raw.get("stores")
    if isinstance(stores, dict):
        changed = sorted((s for s in set(stores) & set(here) if stores[s] != here[s]), key=lambda s: (s != "training", s))
        if changed:
            s = changed[0]
            raise DataError(f"{cfg.data}: the feature store(s) {changed} are not those run {run.path} was trained on "
                            f"({s}: index digest {str(stores[s])[:12]} recorded in {run.file(CONFIG)}, "
                            f"{here[s][:12]} in {ws.stores[s].path}); predict on the run's dataset, or retrain")
        stores = dict(stores)                        # a store built after training is not part of the run
    else:
        note(f"{run.file(CONFIG)}: records no store digests (written before they were recorded); stores not checked")
        stores = here
    text = text_cache_identity(ws.text)
    old = raw.get("text_cache")
    if isinstance(old, dict):
        if old.get("inputs_hash") != text["inputs_hash"]:
            raise DataError(f"{ws.text.path}: not the text cache run {run.path} was trained on ({text_cache_name(old)} "
                            f"recorded in {run.file(CONFIG)}; {text_cache_name(text)} here); rebuild the run's cache "
                            "(`text-features` with its encoder and GloVe source) or retrain")
    else:
        note(f"{run.file(CONFIG)}: records no text cache identity (written before it was recorded); not checked")
    return run_identity(cfg, stores, text)


def predict_boxes(r: LoadedRun, split: str) -> dict[str, np.ndarray]:
    """{segment key: boxes (K, T, 4)} over all frames of every segment of ``split``: the annotated ones, or, for a
    split whose annotations hold no boxes (a test-server split), every segment of the store with a sentence."""
    if split in r.ws.gt:
        keys = list(r.ws.gt[split])
    elif split in r.ws.stores:
        store = r.ws.stores[split]
        keys = [k for k in store.seg_ids if _has_text(r.ws.text, k)]
        if not keys:
            raise DataError(f"{store.path}: none of its segments has a sentence in the text cache {r.ws.text.path}")
    else:
        raise DataError(f"{r.cfg.data}: no feature store for split {split} (`python -m workbench build-store`)")
    return predict_split(r.model, r.ws.stores[split], r.ws.text, keys, r.cfg, r.device)


def _has_text(text, key: str) -> bool:
    try:
        text.index(key)
        return True
    except (DataError, KeyError):
        return False


@torch.no_grad()
def ground_segment(r: LoadedRun, split: str, key: str) -> dict[str, np.ndarray]:
    """Similarity map of one segment: per-proposal scores (K, T, N) under the run's inference mode,
    the E_f-only scores, temporal weights (K, T), proposal boxes (T, N, 4), chosen index (K, T)."""
    store = r.ws.stores[split]
    i = store.index(key)
    text = r.ws.text[key]
    batch = collate_text([text])
    batch["regions"] = torch.from_numpy(np.asarray(store.features(i)))[None]           # (1, T, N, Dv)
    batch["frame_mask"] = torch.ones(batch["regions"].shape[:2], dtype=torch.bool)
    batch = to_device(batch, r.device)
    with autocast(r.cfg, r.device):
        scores = r.model.ground(batch).float()[0]                                      # (K, T, N)
        temporal = r.model.temporal_weights(batch).float()[0]                          # (K, T)
    scores = scores.cpu().numpy()
    return {"scores": scores, "temporal": temporal.cpu().numpy(), "boxes": store.boxes(i),
            "chosen": scores.argmax(-1), "obj_class": np.asarray(text.obj_class), "sentence": text.sentence}


@torch.no_grad()
def concepts(r: LoadedRun, split: str = "training", max_segments: int = 500) -> dict[str, np.ndarray]:
    """Learned stable concepts E_f(o) and extracted concepts D(E_c(o), E_c(S)) of the objects of
    the first ``max_segments`` segments of ``split`` (text side only)."""
    store = r.ws.stores.get(split)
    keys = [k for k in (store.seg_ids if store is not None else r.ws.text.seg_ids)][:max_segments]
    ef, d, cls, sent, seg = [], [], [], [], []
    for s in range(0, len(keys), 64):
        chunk = keys[s:s + 64]
        texts = [r.ws.text[k] for k in chunk]
        batch = to_device(collate_text(texts), r.device)
        out = r.model.concepts(batch)                                                   # ef, d: (B, K, d)
        mask = batch["obj_mask"].cpu().numpy()
        for b, k in enumerate(chunk):
            n = int(mask[b].sum())
            ef.append(out["ef"][b, :n].float().cpu().numpy())
            d.append(out["d"][b, :n].float().cpu().numpy())
            cls.extend(texts[b].obj_class[:n])
            sent.extend([texts[b].sentence] * n)
            seg.extend([k] * n)
    return {"ef": np.concatenate(ef), "d": np.concatenate(d), "obj_class": np.asarray(cls),
            "sentence": np.asarray(sent), "seg_id": np.asarray(seg)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory written by `train`")
    p.add_argument("--split", required=True, choices=("validation", "testing"))
    p.add_argument("--out", required=True, help="predictions JSON (the format's submission layout: official "
                   "YouCook2-BB; GVD's for ActivityNet-Entities)")
    p.add_argument("--data", default=None, help="dataset directory (default: the run's)")


def run(args: argparse.Namespace) -> int:
    r = load_run(args.run, data=args.data)
    boxes = predict_boxes(r, args.split)
    gt = r.ws.gt.get(args.split)
    if gt is None:
        gt = r.ws.format.ground_truth(Path(r.cfg.data), args.split) or {}
    write_json(args.out, r.ws.format.submission(Path(r.cfg.data), args.split, gt, boxes))
    scored = args.split in r.ws.gt and any(b is not None for g in r.ws.gt[args.split].values()
                                           for o in g.objects for b in o.boxes)
    print(json.dumps({"segments": len(boxes), "out": str(args.out)}))
    if not scored:
        print(f"predict: the {args.split} annotations hold no boxes: {args.out} is the submission file for the "
              "test server (official YouCook2-BB: CodaLab competition 20302; ActivityNet-Entities: its grounding "
              "evaluation server)")
    return 0
