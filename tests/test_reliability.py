"""The fault catalogue (issue 13, docs/RELIABILITY.md): every bad input or fault a hostile but
honest user can produce, each as one case that names the fault and checks that the command

* fails loudly: exit code 2 and a one-line ``error: ...`` naming the file / key (no traceback),
  or gives the correct result where the fault is legal input;
* loses nothing: no output written under the final name, earlier results untouched.

Cases work on copies of the session's smoke world (``smoke_data``) and of one tiny trained run,
corrupted as the case says; only the cases that need one train (tiny sizes, one epoch).
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from conftest import TINY
from workbench.__main__ import main

# Tiny one-epoch runs (seconds): a few batches of 8 and a few validation segments.
FAST = {**TINY, "epochs": 1, "max_train_segments": 16, "max_eval_segments": 4}


# --- helpers ---------------------------------------------------------------------------------------

def sets(**over) -> list[str]:
    out = []
    for k, v in {**FAST, **over}.items():
        out += ["--set", f"{k}={v}"]
    return out


def train_args(data, out, preset="stvg", **over) -> list[str]:
    return ["train", "--data", str(data), "--preset", preset, "--out", str(out), *sets(**over)]


def fails(capsys, argv: list[str], *names: str) -> str:
    """Run a command that must fail cleanly: exit 2, one line on stderr naming every ``names``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2, f"exit code {rc}, stderr {err!r}"
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in names:
        assert str(n) in lines[0], f"{n!r} not named in {lines[0]!r}"
    return lines[0]


def succeeds(capsys, argv: list[str]) -> str:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return cap.out


def no_run_written(out: Path) -> None:
    """A failed start leaves no config, checkpoint, log or metrics behind."""
    for name in ("config.json", "checkpoint_last.pt", "checkpoint_best.pt", "log.jsonl", "metrics.json"):
        assert not (out / name).exists(), f"{out / name} written by a failed run"


def no_result_written(out: Path) -> None:
    """A run that failed mid-epoch leaves no checkpoint and no metrics."""
    for name in ("checkpoint_last.pt", "checkpoint_best.pt", "metrics.json"):
        assert not (out / name).exists(), f"{out / name} written by a failed run"


def no_temp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob(".*.tmp*")], list(folder.rglob(".*.tmp*"))


def edit_json(path: Path, fn: Callable[[dict], None]) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


def first_boxed(ann: dict) -> tuple[str, str, dict, int]:
    """(vid, seg, object dict, frame) of the first visible box of an official annotation dict."""
    for vid, v in ann["database"].items():
        for seg, s in v["segments"].items():
            for o in s["objects"]:
                for t, b in enumerate(o["boxes"]):
                    if b and not b["outside"]:
                        return vid, seg, o, t
    raise AssertionError("no visible box")


def gt_predictions(ann_path: Path, out: Path) -> Path:
    """A submission that predicts the GT boxes themselves (missing boxes as {})."""
    ann = json.loads(ann_path.read_text())
    db = {vid: {"segments": {seg: {"objects": [{"label": o["label"], "boxes": [
        {k: b[k] for k in ("xtl", "ytl", "xbr", "ybr")} if b else {} for b in o["boxes"]]} for o in s["objects"]]}
        for seg, s in v["segments"].items()}} for vid, v in ann["database"].items()}
    out.write_text(json.dumps({"database": db}))
    return out


def chunk_offsets(store: Path, every: int = 3) -> list[int]:
    """File offsets of every ``every``-th chunk of /features."""
    with h5py.File(store, "r") as f:
        d = f["features"]
        return [d.id.get_chunk_info(i).byte_offset for i in range(0, d.id.get_num_chunks(), every)]


def poke(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def val_ann(w: Path) -> Path:
    return w / "yc2_bb_val_annotations.json"


# --- fixtures --------------------------------------------------------------------------------------

@pytest.fixture
def world(smoke_data, tmp_path) -> Path:
    """A private copy of the session's smoke world, free to corrupt."""
    w = tmp_path / "world"
    shutil.copytree(smoke_data, w)
    return w


@pytest.fixture(scope="module")
def trained(smoke_data, tmp_path_factory) -> Path:
    """One tiny trained stvg run on the smoke world (never modified: cases copy it)."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(train_args(smoke_data, out)) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    r = tmp_path / "run"
    shutil.copytree(trained, r)
    return r


# --- the catalogue ---------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    kind: str          # "silent" | "unclear" (the probe) | "extra" (found since)
    check: Callable
    param: object = None


CASES: list[Case] = []


def case(name: str, kind: str, params: dict | None = None):
    """Register a fault; ``params`` {label: value} makes one case per value (passed as ``param``)."""
    def deco(fn):
        for label, value in (params or {None: None}).items():
            CASES.append(Case(name if label is None else f"{name} [{label}]", kind, fn, value))
        return fn
    return deco


# ---- the eight silent failures ----

@case("store: finite bytes corrupted in every third /features chunk", "silent")
def _(capsys, world, tmp_path, **_):
    store = world / "store" / "training.h5"
    for off in chunk_offsets(store):
        poke(store, off + 40, b"\xff\x7b")
    out = tmp_path / "run"
    msg = fails(capsys, train_args(world, out), store, "checksum", "segment")
    no_result_written(out)
    assert "rebuild" in msg


@case("store: /frame_offset[3] points at another segment's rows", "silent")
def _(capsys, world, tmp_path, **_):
    store = world / "store" / "training.h5"
    with h5py.File(store, "r+") as f:
        f["frame_offset"][3] = f["frame_offset"][5]
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), store, "frame_offset[3]", "cumsum")
    no_run_written(out)


@case("text cache: sentences edited after text-features (stale cache)", "silent")
def _(capsys, world, tmp_path, **_):
    key = next(iter(json.loads((world / "train_dict.json").read_text())))
    edit_json(world / "seg_sentence_dict.json", lambda d: d.__setitem__(key, d[key] + " then serve it warm"))
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), world / "text_features.h5", "stale", "text-features")
    no_run_written(out)


@case("class file with its last row deleted (evaluate --rule nafae)", "silent")
def _(capsys, world, tmp_path, **_):
    rows = (world / "class_file.csv").read_text().splitlines()
    cf = tmp_path / "class_file.csv"
    cf.write_text("\n".join(rows[:-1]) + "\n")
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred, "--class-file", cf,
                   "--rule", "nafae"], cf, "66", "67")
    # the full file scores the GT as perfect
    r = json.loads(succeeds(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred,
                                     "--class-file", world / "class_file.csv", "--rule", "stvg"]))
    assert r["box_micro"] == 100.0


@case("GT visible box outside the frame / negative / zero-area", "silent",
      {"outside": (5000, 4000, 6000, 4500), "negative": (-300, 10, 40, 60), "zero-area": (100, 50, 100, 90)})
def _(capsys, world, tmp_path, param, **_):
    bad_box = param
    ann = json.loads(val_ann(world).read_text())
    vid, seg, obj, t = first_boxed(ann)
    obj["boxes"][t].update(dict(zip(("xtl", "ytl", "xbr", "ybr"), bad_box)))
    val_ann(world).write_text(json.dumps(ann))
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    j = [o is obj for o in ann["database"][vid]["segments"][seg]["objects"]].index(True)
    fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred],
          val_ann(world), f"segment {vid}_{int(seg):02d}", f"object {j}", f"frame {t}")


@case("--set num_proposals=50 on a store of 20", "silent")
def _(capsys, world, tmp_path, **_):
    out = tmp_path / "run"
    fails(capsys, train_args(world, out, num_proposals=50), world / "store" / "training.h5", "num_proposals=50", "20")
    no_run_written(out)


@case("num_proposals=10 is used: the store serves the first 10 proposals", "silent")
def _(world, **_):
    from workbench.config import preset
    from workbench.features.batches import TrainBatches
    from workbench.train import Workspace

    ws = Workspace(preset("stvg", data=str(world), num_proposals=10))
    full = ws.stores["training"].__class__(ws.stores["training"].path)
    for s in ws.stores.values():
        assert s.num_proposals == 10
        assert s.features(0).shape[1] == 10 and s.features(0, [0]).shape[1] == 10 and s.boxes(0).shape[1] == 10
    assert np.array_equal(ws.stores["training"].features(1), full.features(1)[:, :10])
    assert np.array_equal(ws.stores["training"].boxes(1, [0]), full.boxes(1, [0])[:, :10])
    batch = next(TrainBatches(ws.stores["training"], ws.text, 4, 3, 0).epoch(0))
    assert batch["regions"].shape[2] == 10


@case("negative limits", "silent", {k: k for k in ("max_eval_segments", "max_train_segments")})
def _(capsys, world, tmp_path, param, **_):
    limit_key = param
    out = tmp_path / "run"
    fails(capsys, train_args(world, out, **{limit_key: -5}), limit_key, ">= 0")
    no_run_written(out)


@case("two trainings into one new --out at once", "silent")
def _(capsys, world, tmp_path, **_):
    import signal
    import socket

    out = tmp_path / "run"
    holder = subprocess.Popen(                # the first training, holding the run directory
        [sys.executable, "-c", "import sys, time\nfrom workbench.run import RunDir\n"
         "with RunDir(sys.argv[1]).lock():\n    print('locked', flush=True)\n    time.sleep(600)", str(out)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "locked"
        (out / "marker").write_text("first run's files")
        fails(capsys, train_args(world, out, lr=1e-2), out, f"pid {holder.pid}", socket.gethostname(), "started")
        assert (out / "marker").read_text() == "first run's files"
        no_run_written(out)
    finally:
        holder.send_signal(signal.SIGKILL)    # killed: the kernel releases the lock
        holder.wait()
    succeeds(capsys, train_args(world, out, lr=1e-2))
    assert json.loads((out / "config.json").read_text())["config"]["lr"] == 1e-2


# ---- the unclear errors ----

@case("read-only output folder", "unclear")
def _(capsys, world, tmp_path, monkeypatch, **_):
    import tempfile

    import workbench.io as wio

    ro = tmp_path / "readonly"
    ro.mkdir()

    def denied(*a, dir=None, **k):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))
    monkeypatch.setattr(wio.tempfile, "mkstemp", denied)
    fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out", ro / "p.json"],
          ro, "Permission denied")
    monkeypatch.setattr(wio.tempfile, "mkstemp", tempfile.mkstemp)
    assert not list(ro.iterdir())


@case("disk full while writing", "unclear")
def _(capsys, world, tmp_path, monkeypatch, **_):
    import workbench.io as wio

    out = tmp_path / "pred.json"
    out.write_text("earlier result")

    def full(obj, f, **k):
        f.write("{")
        raise OSError(errno.ENOSPC, "No space left on device", f.name)
    monkeypatch.setattr(wio.json, "dump", full)
    msg = fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out", out],
                out, "No space left on device", "disk full")
    assert ".tmp" not in msg
    assert out.read_text() == "earlier result"
    no_temp_files(tmp_path)


@case("--out that is a folder", "unclear")
def _(capsys, world, tmp_path, **_):
    out = tmp_path / "folder"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out", out],
          out, "directory")
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


@case("--out whose parent is a file", "extra")
def _(capsys, world, tmp_path, **_):
    f = tmp_path / "file"
    f.write_text("x")
    fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out", f / "p.json"],
          f)
    assert f.read_text() == "x"


@case("simulate --feature-dim 0", "unclear")
def _(capsys, tmp_path, **_):
    fails(capsys, ["simulate", "--out", tmp_path / "sim", "--feature-dim", "0"], "--feature-dim", "0")
    assert not (tmp_path / "sim").exists()


@case("build-store --num-proposals 0 / -3", "unclear", {"0": "0", "-3": "-3"})
def _(capsys, world, tmp_path, param, **_):
    bad_n = param
    out = tmp_path / "s.h5"
    fails(capsys, ["build-store", "--root", world, "--split", "validation", "--out", out, "--num-proposals", bad_n],
          "--num-proposals", bad_n)
    assert not out.exists()
    no_temp_files(tmp_path)


@case("NaN/Inf written into the store's feature bytes", "unclear")
def _(capsys, world, tmp_path, **_):
    store = world / "store" / "training.h5"
    nan = np.full(8, np.nan, np.float16).tobytes() + np.full(8, np.inf, np.float16).tobytes()
    for off in chunk_offsets(store, every=1):
        poke(store, off, nan)
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), store, "segment", "frame")
    no_result_written(out)


@case("/frame_offset out of range", "unclear")
def _(capsys, world, tmp_path, **_):
    store = world / "store" / "training.h5"
    with h5py.File(store, "r+") as f:
        f["frame_offset"][-1] = 10 ** 6
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), store, "frame_offset")
    no_run_written(out)


@case("truncated text_features.h5", "unclear")
def _(capsys, world, tmp_path, **_):
    tf = world / "text_features.h5"
    os.truncate(tf, tf.stat().st_size // 2)
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), tf, "text-features")
    no_run_written(out)


@case("text cache: NaN written into /obj_ctx", "extra")
def _(capsys, world, tmp_path, **_):
    tf = world / "text_features.h5"
    with h5py.File(tf, "r+") as f:
        f["obj_ctx"][3, :4] = np.nan
    fails(capsys, train_args(world, tmp_path / "run"), tf, "/obj_ctx", "text-features")
    no_run_written(tmp_path / "run")


@case("unknown label in the GT file", "unclear")
def _(capsys, world, tmp_path, **_):
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    ann = json.loads(val_ann(world).read_text())
    vid, seg, obj, _t = first_boxed(ann)
    obj["label"] = "unicorn"
    val_ann(world).write_text(json.dumps(ann))
    msg = fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred],
                val_ann(world), "unicorn")
    assert str(pred) not in msg


@case("empty object list in the GT", "unclear", {c: c for c in ("evaluate", "build-store", "train")})
def _(capsys, world, tmp_path, param, **_):
    command = param
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    ann = json.loads(val_ann(world).read_text())
    vid, seg, _o, _t = first_boxed(ann)
    ann["database"][vid]["segments"][seg]["objects"] = []
    val_ann(world).write_text(json.dumps(ann))
    argv = {"evaluate": ["evaluate", "--annotations", val_ann(world), "--predictions", pred],
            "build-store": ["build-store", "--root", world, "--split", "validation", "--out", tmp_path / "v.h5"],
            "train": train_args(world, tmp_path / "run")}[command]
    msg = fails(capsys, argv, val_ann(world), f"segment {vid}_{int(seg):02d}", "empty 'objects'")
    assert str(pred) not in msg and not (tmp_path / "v.h5").exists()
    no_run_written(tmp_path / "run")


@case("predictions with a non-number coordinate", "unclear", {'"12"': "12", "true": True})
def _(capsys, world, tmp_path, param, **_):
    bad_coord = param
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    ann = json.loads(val_ann(world).read_text())
    vid, seg, obj, t = first_boxed(ann)
    j = ann["database"][vid]["segments"][seg]["objects"].index(obj)
    p = json.loads(pred.read_text())
    p["database"][vid]["segments"][seg]["objects"][j]["boxes"][t]["xtl"] = bad_coord
    pred.write_text(json.dumps(p))
    fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred],
          pred, f"segment {vid}_{int(seg):02d}", "xtl", "JSON numbers")


@case("GT frame count differs from the store (found before training)", "unclear")
def _(capsys, world, tmp_path, **_):
    ann = json.loads(val_ann(world).read_text())
    vid, seg, _o, _t = first_boxed(ann)
    for o in ann["database"][vid]["segments"][seg]["objects"]:
        o["boxes"].append({})
    val_ann(world).write_text(json.dumps(ann))
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), val_ann(world), f"segment {vid}_{int(seg):02d}",
          world / "store" / "validation.h5")
    no_run_written(out)


CONFIG_FAULTS = ["epochs=0", "epochs=-1", "batch_size=0", "lr=nan", "lr=-1", "num_frames=0", "embed_dim=0",
                 "attn_heads=3", "select_metric=bogus", "device=cuda:99", "tau=0", "eta=0", "lr=inf",
                 "weight_decay=-1", "caos_temperature=0", "ensemble_weight=2", "batch_size=1", "num_proposals=0",
                 "model=bogus", "eval_rule=bogus", "dropout=1.5"]


@case("out-of-range config value", "unclear", {f: f for f in CONFIG_FAULTS})
def _(capsys, world, tmp_path, param, **_):
    config_fault = param
    key, value = config_fault.split("=")
    out = tmp_path / "run"
    fails(capsys, train_args(world, out, **{key: value}), key)
    no_run_written(out)


@case("a run that failed at start can be re-run with the fixed value", "unclear")
def _(capsys, world, tmp_path, **_):
    out = tmp_path / "run"
    fails(capsys, train_args(world, out, device="cuda:99"), "device")
    no_run_written(out)
    # a config.json left by an older version's failed start, and a stale lock file of a killed holder
    out.mkdir(exist_ok=True)
    (out / "config.json").write_text(json.dumps({"preset": "stvg", "config": {"lr": 0.5, "data": str(world)}}))
    (out / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone", "started": "yesterday"}))
    succeeds(capsys, train_args(world, out, device="cpu"))
    assert json.loads((out / "config.json").read_text())["config"]["lr"] == 1e-4
    assert (out / "metrics.json").is_file()


class Hostile:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@case("hostile checkpoint (pickled global)", "unclear")
def _(capsys, world, run_copy, tmp_path, **_):
    import torch

    ck = run_copy / "checkpoint_best.pt"
    torch.save({"model": {}, "epoch": 0, "x": Hostile()}, ck)
    msg = fails(capsys, ["predict", "--run", run_copy, "--split", "validation", "--out", tmp_path / "p.json"], ck,
                "refused", "posix.system")
    assert "weights_only=False" not in msg and not (tmp_path / "p.json").exists()


@case("truncated checkpoint", "unclear", {"resume": "checkpoint_last.pt", "predict": "checkpoint_best.pt"})
def _(capsys, run_copy, tmp_path, param, **_):
    ck_name = param
    ck = run_copy / ck_name
    os.truncate(ck, ck.stat().st_size // 3)
    metrics = (run_copy / "metrics.json").read_text()
    if ck_name == "checkpoint_last.pt":
        data = json.loads((run_copy / "config.json").read_text())["config"]["data"]
        fails(capsys, train_args(data, run_copy), ck, "truncated")
    else:
        fails(capsys, ["predict", "--run", run_copy, "--split", "validation", "--out", tmp_path / "p.json"], ck,
              "truncated")
    assert (run_copy / "metrics.json").read_text() == metrics


@case("predict --data on a dataset with another feature dimension", "unclear")
def _(capsys, world, run_copy, tmp_path, **_):
    from workbench.features.store import seal

    for split in ("training", "validation", "testing"):
        p = world / "store" / f"{split}.h5"
        with h5py.File(p, "r+") as f:
            x = f["features"][:, :, :16]
            del f["features"]
            f.create_dataset("features", data=x, chunks=(1,) + x.shape[1:])
            seal(f)
    fails(capsys, ["predict", "--run", run_copy, "--split", "validation", "--out", tmp_path / "p.json",
                   "--data", world], "feature dimensions", "16", "32")
    assert not (tmp_path / "p.json").exists()


@case("figures with metrics.json = {\"validation\": \"oops\"}", "unclear")
def _(capsys, tmp_path, **_):
    sw = tmp_path / "sweep"
    (sw / "stvg" / "run").mkdir(parents=True)
    (sw / "sweep.json").write_text(json.dumps({"presets": ["stvg"], "grid": "x", "data": str(tmp_path)}))
    (sw / "stvg" / "params.json").write_text("{}")
    m = sw / "stvg" / "run" / "metrics.json"
    m.write_text(json.dumps({"validation": "oops"}))
    fails(capsys, ["figures", "--sweep", sw, "--out", tmp_path / "fig", "--no-static"], m, "validation")
    assert not (tmp_path / "fig").exists() or not list((tmp_path / "fig").iterdir())


@case("notebook 01 with n_segments=-5", "unclear")
def _(**_):
    from workbench.io import DataError
    from workbench.report.text_features import object_table

    for bad in (-5, 0):
        with pytest.raises(DataError, match="n_segments"):
            object_table(None, n_segments=bad)


@case("kill -9 during build-store leaves an orphaned temp file", "unclear")
def _(capsys, world, tmp_path, **_):
    out_dir = tmp_path / "stores"
    out_dir.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    orphan = out_dir / f".validation.h5.{dead_pid}.k1llnine.tmp.h5"      # this version's naming
    old = out_dir / ".validation.h5.a8f3kq2z.tmp.h5"                    # older versions' naming
    live = out_dir / f".validation.h5.{os.getpid()}.writing1.tmp.h5"    # a writer that still runs
    other = out_dir / f".testing.h5.{dead_pid}.k1llnine.tmp.h5"         # another file's temp: not ours to judge
    for p in (orphan, old, live, other):
        p.write_bytes(b"partial")
        os.utime(p, (1, 1))                                             # untouched since long ago
    succeeds(capsys, ["build-store", "--root", world, "--split", "validation", "--out", out_dir / "validation.h5"])
    assert not orphan.exists() and not old.exists() and live.exists() and other.exists()


# ---- found since (extra) ----

@case("store: box bytes corrupted", "extra")
def _(capsys, world, tmp_path, **_):
    store = world / "store" / "validation.h5"
    with h5py.File(store, "r") as f:
        off = f["boxes"].id.get_chunk_info(0).byte_offset
    poke(store, off + 4, b"\x00\x00\x80\x7f")  # +inf in a box coordinate
    out = tmp_path / "p.json"
    fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "upper-bound", "--out", out],
          store, "box", "checksum")
    assert not out.exists()


@case("store: /seg_ids edited and the digest resealed (duplicate ids)", "extra")
def _(capsys, world, tmp_path, **_):
    from workbench.features.store import seal

    store = world / "store" / "training.h5"
    with h5py.File(store, "r+") as f:
        ids = f["seg_ids"][:]
        ids[1] = ids[0]
        f["seg_ids"][:] = ids
        seal(f)
    fails(capsys, train_args(world, tmp_path / "run"), store, "duplicate")


@case("store: index edited without resealing (digest)", "extra")
def _(capsys, world, tmp_path, **_):
    store = world / "store" / "training.h5"
    with h5py.File(store, "r+") as f:
        ids = f["seg_ids"][:]
        ids[[0, 1]] = ids[[1, 0]]                     # two segments swap names: invariants still hold
        f["seg_ids"][:] = ids
    fails(capsys, train_args(world, tmp_path / "run"), store, "index_sha256")


@case("store of an older format", "extra")
def _(capsys, world, tmp_path, **_):
    from workbench.prepare import prepare

    store = world / "store" / "validation.h5"
    with h5py.File(store, "r+") as f:
        f.attrs["format_version"] = 1
    fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out",
                   tmp_path / "p.json"], store, "rebuild")
    prepare(world)                                      # prepare rebuilds it
    succeeds(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out",
                      tmp_path / "p.json"])


@case("GT segment missing from the store", "extra")
def _(capsys, world, tmp_path, **_):
    ann = json.loads(val_ann(world).read_text())
    vid, seg, _o, _t = first_boxed(ann)
    ann["database"][vid]["segments"]["99"] = ann["database"][vid]["segments"][seg]
    val_ann(world).write_text(json.dumps(ann))
    fails(capsys, train_args(world, tmp_path / "run"), f"{vid}_99", "feature store")
    no_run_written(tmp_path / "run")


@case("config.json of a run edited to an out-of-range value (predict)", "extra")
def _(capsys, run_copy, tmp_path, **_):
    edit_json(run_copy / "config.json", lambda d: d["config"].__setitem__("lr", -1))
    fails(capsys, ["predict", "--run", run_copy, "--split", "validation", "--out", tmp_path / "p.json"],
          run_copy / "config.json", "lr")


@case("resume with another config (kept: refused)", "extra")
def _(capsys, run_copy, **_):
    data = json.loads((run_copy / "config.json").read_text())["config"]["data"]
    before = (run_copy / "metrics.json").read_text()
    fails(capsys, train_args(data, run_copy, lr=0.5), run_copy, "different config", "lr")
    assert (run_copy / "metrics.json").read_text() == before


@case("finished run re-run: same metrics, nothing retrained", "extra")
def _(capsys, run_copy, **_):
    data = json.loads((run_copy / "config.json").read_text())["config"]["data"]
    before = (run_copy / "metrics.json").read_text()
    ck = (run_copy / "checkpoint_last.pt").stat().st_mtime_ns
    succeeds(capsys, train_args(data, run_copy))
    assert (run_copy / "metrics.json").read_text() == before
    assert (run_copy / "checkpoint_last.pt").stat().st_mtime_ns == ck


@case("resume after the training store was rebuilt with other content", "extra")
def _(capsys, run_copy, **_):
    edit_json(run_copy / "config.json", lambda d: d["stores"].__setitem__("training", "0" * 64))
    data = json.loads((run_copy / "config.json").read_text())["config"]["data"]
    before = (run_copy / "metrics.json").read_text()
    fails(capsys, train_args(data, run_copy), run_copy, "['training']", "differ")
    assert (run_copy / "metrics.json").read_text() == before


@case("evaluate --sentence-classes with a malformed entry", "extra")
def _(capsys, world, tmp_path, **_):
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    sc = tmp_path / "sc.json"
    sc.write_text(json.dumps({"abc_01": "oops"}))
    fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred, "--rule", "nafae",
                   "--sentence-classes", sc], sc, "abc_01")


@case("truncated metrics.json of a run (figures)", "extra")
def _(capsys, tmp_path, **_):
    sw = tmp_path / "sweep"
    (sw / "stvg" / "run").mkdir(parents=True)
    (sw / "sweep.json").write_text(json.dumps({"presets": ["stvg"], "grid": "x", "data": str(tmp_path)}))
    (sw / "stvg" / "params.json").write_text("{}")
    m = sw / "stvg" / "run" / "metrics.json"
    m.write_text('{"validation": {"box_mic')
    fails(capsys, ["figures", "--sweep", sw, "--out", tmp_path / "fig", "--no-static"], m, "JSON")


@case("metrics.json with an accuracy out of [0, 100]", "extra")
def _(capsys, tmp_path, **_):
    from workbench.io import DataError
    from workbench.run import read_metrics

    m = tmp_path / "metrics.json"
    m.write_text(json.dumps({"validation": {"box_micro": 140.0}}))
    with pytest.raises(DataError, match=r"validation\.box_micro"):
        read_metrics(m)
    m.write_text(json.dumps({"testing": {"box_micro": 40.0}, "heldout": {"testing": {"query_micro": -1}}}))
    with pytest.raises(DataError, match=r"heldout\.testing\.query_micro"):
        read_metrics(m)


@case("NAFAE entities pickle with a global (restricted unpickling)", "extra")
def _(tmp_path, **_):
    import pickle

    from workbench.datasets.yc2 import load_nafae_entities
    from workbench.io import DataError

    p = tmp_path / "val_entities.pkl"
    p.write_bytes(pickle.dumps({"v": Hostile()}))
    with pytest.raises(DataError, match="val_entities.pkl"):
        load_nafae_entities(p)


@case("unknown --set key", "extra")
def _(capsys, world, tmp_path, **_):
    fails(capsys, train_args(world, tmp_path / "run", learning_rate=1), "learning_rate")
    no_run_written(tmp_path / "run")


@case("--debug / WORKBENCH_DEBUG=1 show the traceback", "extra")
def _(capsys, tmp_path, monkeypatch, **_):
    from workbench.io import DataError

    argv = ["simulate", "--out", tmp_path / "sim", "--feature-dim", "0"]
    with pytest.raises(DataError):
        main([str(a) for a in argv] + ["--debug"])
    monkeypatch.setenv("WORKBENCH_DEBUG", "1")
    with pytest.raises(DataError):
        main([str(a) for a in argv])


def pytest_generate_tests(metafunc):
    """test_fault runs every case of CASES, registered anywhere in this module (sections of later issues
    append theirs below): parametrized at collection, after the whole module has run."""
    if metafunc.function.__name__ == "test_fault":
        metafunc.parametrize("c", CASES, ids=[c.name for c in CASES])


def test_fault(c: Case, request):
    """One fault of the catalogue (docs/RELIABILITY.md)."""
    import inspect

    wanted = [p for p in inspect.signature(c.check).parameters if p not in ("_", "param")]
    c.check(param=c.param, **{name: request.getfixturevalue(name) for name in wanted})


def test_catalogue_is_documented():
    """Every case has its row in docs/RELIABILITY.md, and the catalogue covers the issue's probe."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "RELIABILITY.md").read_text()
    missing = sorted({c.name.split(" [")[0] for c in CASES} - {n for n in {c.name.split(" [")[0] for c in CASES}
                                                                if n in doc})
    assert not missing, missing
    kinds = {k: len({c.name.split(" [")[0] for c in CASES if c.kind == k}) for k in ("silent", "unclear")}
    assert kinds["silent"] >= 8 and kinds["unclear"] >= 20, kinds


# ==== issue 24 (inputs, ranges, readers): duplicate JSON keys, CLI ranges, outputs never on inputs, =========
# ==== the one validating results reader. Registered in CASES (documented with the rest) and run below. =====



def tiny_grid_sweep(root: Path, metrics: object, log: str | None = None) -> tuple[Path, Path]:
    """A hand-made grid sweep of one finished stvg seed: (sweep dir, its run's metrics.json)."""
    sw = root / "sweep"
    run = sw / "stvg" / "seed-0" / "run"
    run.mkdir(parents=True)
    (sw / "sweep.json").write_text(json.dumps({"presets": ["stvg"], "grid": "x", "data": str(root), "seeds": [0]}))
    (sw / "stvg" / "seed-0" / "params.json").write_text("{}")
    m = run / "metrics.json"
    m.write_text(json.dumps(metrics))
    if log is not None:
        (run / "log.jsonl").write_text(log)
    return sw, m


def tiny_world_sweep(root: Path, val_box_micro: float) -> tuple[Path, Path]:
    """A hand-made world sweep (axis context, one value, one stvg seed): (sweep dir, its run's metrics.json)."""
    sw = root / "wsweep"
    run = sw / "context-0.5" / "stvg" / "seed-0" / "run"
    run.mkdir(parents=True)
    (sw / "sweep.json").write_text(json.dumps({
        "grid": "world", "axis": "context", "values": [0.5], "presets": ["stvg"], "seeds": [0],
        "data_root": str(root / "worlds"), "world_preset": "smoke", "world_seed": 0, "world_sets": {},
        "overrides": {}, "seconds": {}}))
    m = run / "metrics.json"
    m.write_text(json.dumps({"validation": {"box_micro": val_box_micro, "box_macro": 40.0, "query_micro": 50.0,
                                            "query_macro": 45.0}}))
    return sw, m


def figures_fail(capsys, sweep: Path, out: Path, *names, extra: tuple = ()) -> str:
    msg = fails(capsys, ["figures", "--sweep", sweep, "--out", out, "--no-static", *extra], *names)
    assert not out.exists() or not list(out.iterdir()), "a figure was drawn"
    return msg


def duplicate_segment(ann: dict, vid: str, seg: str, copy: dict, later: bool = False) -> str:
    """The JSON text of an official-layout file ``ann`` whose video ``vid`` names segment ``seg`` twice: ``copy``
    before the original entry, or after it with ``later`` (the standard reader keeps the later one)."""
    text = json.dumps(ann)
    at = text.index('"segments": {', text.index(json.dumps(vid))) + len('"segments": {')
    entry = f"{json.dumps(seg)}: {json.dumps(ann['database'][vid]['segments'][seg])}"
    if later:
        i = text.index(entry, at) + len(entry)
        return text[:i] + f", {json.dumps(seg)}: {json.dumps(copy)}" + text[i:]
    return text[:at] + f"{json.dumps(seg)}: {json.dumps(copy)}, " + text[at:]


@pytest.fixture(scope="module")
def anet_world(tmp_path_factory) -> Path:
    """A tiny simulated ActivityNet-Entities world (3 / 2 / 2 segments; files only, no stores)."""
    out = tmp_path_factory.mktemp("anet") / "anet"
    assert main(["simulate", "--dataset", "anet", "--out", str(out), "--max-segments", "training=3",
                 "--max-segments", "validation=2", "--max-segments", "testing=2"]) == 0
    return out


# ---- silent (exit 0 with a wrong or misleading number before) ----

@case("metrics.json = {} counted as a finished seed (figures)", "silent",
      {"{}": {}, "empty split": {"validation": {}}, "all null": {"validation": {"box_micro": None}}})
def _(capsys, tmp_path, param, **_):
    sw, m = tiny_grid_sweep(tmp_path, param)
    figures_fail(capsys, sw, tmp_path / "fig", m, "no accuracy")


@case("a world sweep's metrics.json with val box micro 140 (context curve)", "silent")
def _(capsys, tmp_path, **_):
    sw, m = tiny_world_sweep(tmp_path, 140.0)
    figures_fail(capsys, sw, tmp_path / "fig", m, "validation.box_micro", "[0, 100]")
    m.write_text(json.dumps({}))                        # and a world sweep's {} is no finished seed either
    figures_fail(capsys, sw, tmp_path / "fig", m, "no accuracy")


@case("a hand-corrupted committed results.csv drawn by figures", "silent",
      {"huge value": ("validation_box_micro", "4000.0"), "text": ("testing_box_micro", "oops"), "cut line": (None, None),
       "unknown row": ("value", "0.33")})
def _(capsys, tmp_path, param, **_):
    col, value = param
    src = Path(__file__).resolve().parents[1] / "figures" / "context_curve"
    sw = tmp_path / "curve"
    sw.mkdir()
    shutil.copy(src / "sweep.json", sw / "sweep.json")
    lines = (src / "results.csv").read_text().splitlines()
    head = lines[0].split(",")
    if col is None:
        lines[5] = lines[5][:len(lines[5]) // 2]                        # a line cut in the middle
    else:
        row = lines[5].split(",")
        row[head.index(col)] = value
        lines[5] = ",".join(row)
    (sw / "results.csv").write_text("\n".join(lines) + "\n")
    figures_fail(capsys, sw, tmp_path / "fig", sw / "results.csv", ":6", *([col] if col else ["fields"]))


@case("evaluate --split outside --rule anet", "silent", {"--split testing": ("--split", "testing"),
                                                          "--split-file": ("--split-file", "ids.json")})
def _(capsys, world, tmp_path, param, **_):
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred, *param],
          param[0], "--rule anet", val_ann(world))


@case("GT file with a duplicate segment key", "silent")
def _(capsys, world, tmp_path, **_):
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    ann = json.loads(val_ann(world).read_text())
    vid, seg, _o, _t = first_boxed(ann)
    first = json.loads(json.dumps(ann["database"][vid]["segments"][seg]))
    for o in first["objects"]:                          # the first copy: every box moved; the later one wins
        o["boxes"] = [{**b, "xtl": b["xtl"] + 1} if b else b for b in o["boxes"]]
    val_ann(world).write_text(duplicate_segment(ann, vid, seg, first))
    fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred],
          val_ann(world), f"duplicate key '{seg}'", f"database.{vid}.segments")


@case("predictions file with a duplicate segment", "silent")
def _(capsys, world, tmp_path, **_):
    pred = gt_predictions(val_ann(world), tmp_path / "pred.json")
    p = json.loads(pred.read_text())
    vid, seg, _o, _t = first_boxed(json.loads(val_ann(world).read_text()))
    empty = {"objects": [{"label": o["label"], "boxes": []} for o in p["database"][vid]["segments"][seg]["objects"]]}
    pred.write_text(duplicate_segment(p, vid, seg, empty, later=True))      # a later, empty copy
    fails(capsys, ["evaluate", "--annotations", val_ann(world), "--predictions", pred],
          pred, f"duplicate key '{seg}'", vid)


@case("the ANet world takes --set and --max-segments", "silent")
def _(capsys, tmp_path, **_):
    out = tmp_path / "anet"
    succeeds(capsys, ["simulate", "--dataset", "anet", "--out", out, "--set", "context=0.9",
                      "--max-segments", "training=3", "--max-segments", "validation=2", "--max-segments", "testing=1"])
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["knobs"]["context"] == 0.9
    assert {s: meta["splits"][s]["segments"] for s in ("training", "validation", "testing")} == \
        {"training": 3, "validation": 2, "testing": 1}
    for bad, names in ((["--set", "context_strength=0.9"], ("context_strength", "context")),
                       (["--set", "object_share=2"], ("object_share", "[0, 1]")),
                       (["--output", "store"], ("--output",)),
                       (["--max-segments", "training=0"], ("--max-segments",))):
        fails(capsys, ["simulate", "--dataset", "anet", "--out", tmp_path / "other", *bad], *names)
        assert not (tmp_path / "other").exists()


@case("figures --tsne-segments -5 / 0, --seed -1", "silent",
      {"--tsne-segments -5": ("--tsne-segments", "-5"), "--tsne-segments 0": ("--tsne-segments", "0"),
       "--seed -1": ("--seed", "-1")})
def _(capsys, tmp_path, param, **_):
    sw, _m = tiny_grid_sweep(tmp_path, {"validation": {"box_micro": 40.0}})
    figures_fail(capsys, sw, tmp_path / "fig", param[0], param[1], extra=param)


@case("simulate --force into a folder that also holds a training run", "silent")
def _(capsys, tmp_path, **_):
    out = tmp_path / "ds"
    small = ["--max-segments", "training=4", "--max-segments", "validation=2", "--max-segments", "testing=2"]
    succeeds(capsys, ["simulate", "--out", out, *small])
    run = out / "runs" / "stvg"                          # a training run kept in the dataset folder
    run.mkdir(parents=True)
    files = {run / "metrics.json": '{"validation": {"box_micro": 40.0}}', run / "checkpoint_best.pt": "weights",
             out / "NOTES.md": "my notes"}
    for p, text in files.items():
        p.write_text(text)
    (out / "store").mkdir()
    (out / "store" / "validation.h5").write_text("the old world's store")   # written for the dataset: replaced
    succeeds(capsys, ["simulate", "--out", out, "--seed", "1", "--force", *small])
    assert json.loads((out / "dataset.json").read_text())["seed"] == 1
    for p, text in files.items():
        assert p.read_text() == text, f"{p} lost"
    assert not (out / "store").exists()


@case("baseline --out pointed at the dataset's own annotations", "silent")
def _(capsys, world, tmp_path, **_):
    before = val_ann(world).read_bytes()
    for out in (val_ann(world), world / "class_file.csv", world / "store" / "validation.h5"):
        fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out", out],
              out, "--out")
    assert val_ann(world).read_bytes() == before
    link = tmp_path / "link.json"                        # a link to an input, outside the dataset
    link.symlink_to(val_ann(world))
    fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out", link],
          link, val_ann(world))
    assert val_ann(world).read_bytes() == before
    succeeds(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random",
                      "--out", world / "random_val.json"])   # a new file beside the dataset's is fine


@case("a baseline row written into a finished trained run's folder", "silent")
def _(capsys, run_copy, **_):
    data = json.loads((run_copy / "config.json").read_text())["config"]["data"]
    before = {n: (run_copy / n).read_bytes() for n in ("config.json", "metrics.json")}
    for row in ("random", "upper-bound"):
        fails(capsys, ["train", "--data", data, "--preset", row, "--out", run_copy, *sets()], run_copy,
              "trained run", "checkpoint")
    assert {n: (run_copy / n).read_bytes() for n in before} == before


@case("train --data A --set data=B", "silent")
def _(capsys, world, tmp_path, **_):
    out = tmp_path / "run"
    other = tmp_path / "other_world"                    # another dataset: trained on silently before
    shutil.copytree(world, other)
    fails(capsys, ["train", "--data", world, "--preset", "stvg", "--out", out, *sets(data=other)],
          "--set data=", str(other), str(world))
    no_run_written(out)


@case("text-features --batch-size -4 / 0", "silent", {"-4": "-4", "0": "0"})
def _(capsys, world, tmp_path, param, **_):
    out = tmp_path / "tf.h5"
    fails(capsys, ["text-features", "--data", world, "--out", out, "--batch-size", param], "--batch-size", param)
    assert not out.exists()


# ---- unclear (failed, but without saying what is wrong) ----

@case("duplicate presets in one sweep", "unclear")
def _(capsys, world, tmp_path, **_):
    out = tmp_path / "sweep"
    fails(capsys, ["sweep", "--grid", "main", "--data", world, "--out", out, "--presets", "random,stvg,random"],
          "--presets", "random", "twice")
    assert not out.exists()
    from workbench.io import DataError
    from workbench.experiments.sweep import sweep

    with pytest.raises(DataError, match="twice"):
        sweep(["random", "random"], world, out)
    assert not out.exists()


@case("a world sweep with a duplicate axis value", "unclear", {"0.5,0.5": "0.5,0.5", "0.1,0.1000001": "0.1,0.1000001"})
def _(capsys, tmp_path, param, **_):
    fails(capsys, ["sweep", "--grid", "context", "--axis", f"context={param}", "--data-root", tmp_path / "worlds",
                   "--out", tmp_path / "ws", "--presets", "random"], "--axis", "context-0.", "once")
    assert not (tmp_path / "worlds").exists() and not (tmp_path / "ws").exists()


@case("notebooks 03/04/05 with segments=0, max_frames=0, perplexity=-5, a bogus split or metric", "unclear",
      {"segments=0": ("segments", "int", 0), "max_frames=0": ("max_frames", "int", 0),
       "perplexity=-5": ("perplexity", "float", -5.0), "split=bogus": ("split", "str", "bogus"),
       "metrics=[bogus]": ("metrics", "list", ["bogus"])})
def _(param, **_):
    from workbench import notebook as nb
    from workbench.io import DataError

    name, typ, bad = param
    cell = f"{name}: {typ} = None\nseed: int = 0"
    ns = {"__annotations__": {name: eval(typ), "seed": int}, "_ih": [cell, f"{name} = {bad!r}", "P = ..."],
          name: bad, "seed": 0}
    with pytest.raises(DataError, match=name):
        nb.parameters(ns)


@case("baseline --seed -1", "unclear")
def _(capsys, world, tmp_path, **_):
    out = tmp_path / "p.json"
    fails(capsys, ["baseline", "--data", world, "--split", "validation", "--method", "random", "--out", out,
                   "--seed", "-1"], "--seed", "-1")
    assert not out.exists()


@case("a corrupt log.jsonl (figures, the sweep's results)", "unclear")
def _(capsys, tmp_path, **_):
    log = '{"epoch": 0, "val": {"box_micro": 30.0}}\n{"epoch": 1, "val": {"box_mi\n'
    sw, m = tiny_grid_sweep(tmp_path, {"validation": {"box_micro": 40.0}}, log=log)
    figures_fail(capsys, sw, tmp_path / "fig", m.parent / "log.jsonl:2", "JSON")
    from workbench.io import DataError
    from workbench.experiments.sweep import write_results

    with pytest.raises(DataError, match="log.jsonl:2"):
        write_results(sw)


@case("eval_rule without a matching select_metric", "unclear",
      {"codalab": {"eval_rule": "codalab"}, "nafae query": {"eval_rule": "nafae", "select_metric": "query_micro"}})
def _(capsys, world, tmp_path, param, **_):
    out = tmp_path / "run"
    fails(capsys, train_args(world, out, **param), "select_metric", "eval_rule")
    no_run_written(out)
    succeeds(capsys, train_args(world, out, eval_rule="codalab", select_metric="box_macro", max_eval_segments=2))
    assert json.loads((out / "metrics.json").read_text())["select_metric"] == "box_macro"


@case("ANet evaluate with the wrong --split", "unclear")
def _(capsys, anet_world, tmp_path, **_):
    ids = json.loads((anet_world / "split_ids_anet_entities.json").read_text())
    ann = anet_world / "anet_entities_cleaned_class_thresh50_trainval.json"
    vid = ids["validation"][0]
    seg = next(iter(json.loads(ann.read_text())["annotations"][vid]["segments"]))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"results": {vid: {seg: {"clss": [], "idx_in_sent": [], "bbox_for_all_frames": []}}}}))
    fails(capsys, ["evaluate", "--rule", "anet", "--annotations", ann, "--predictions", pred, "--split", "testing"],
          pred, ann, "'testing'", "split_ids_anet_entities.json", vid)


# ---- found since (extra) ----

@case("split dict with a duplicate segment key (train)", "extra")
def _(capsys, world, tmp_path, **_):
    d = json.loads((world / "train_dict.json").read_text())
    key = next(iter(d))
    text = json.dumps(d)
    (world / "train_dict.json").write_text(text[:-1] + f", {json.dumps(key)}: {json.dumps(d[key])}}}")
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), world / "train_dict.json", f"duplicate key '{key}'")
    no_run_written(out)


@case("notebook dict parameter with a duplicate key", "extra")
def _(**_):
    from workbench.io import DataError
    from workbench.notebook import check_parameters

    with pytest.raises(DataError, match="overrides.*duplicate key 'epochs'"):
        check_parameters({"overrides": '{"epochs": 1, "epochs": 50}'}, {"overrides": dict})




# ==== issue 24: runs, checkpoints and text caches (the provenance chain) ====
# A run's identity (run.run_identity: its config less paths and device settings, the stores' index digests, the
# text cache's inputs hash) is recorded in config.json, in every checkpoint and in metrics.json; train (resume,
# skip as finished), predict and read_metrics compare it. Own list, as the section above.


@pytest.fixture(scope="module")
def other_world(tmp_path_factory) -> Path:
    """A second smoke world (seed 1: other segments and features, the same dimensions)."""
    from workbench.prepare import prepare

    return prepare(tmp_path_factory.mktemp("other") / "data", preset="smoke", seed=1)


def predict_args(run: Path, out: Path) -> list:
    return ["predict", "--run", run, "--split", "validation", "--out", out]


def run_data(run: Path) -> str:
    return json.loads((run / "config.json").read_text())["config"]["data"]


@case("a checkpoint of another run dropped into a run folder", "silent")
def _(capsys, run_copy, other_world, tmp_path, **_):
    other = tmp_path / "other_run"                       # same dimensions, another world and epochs
    succeeds(capsys, train_args(other_world, other, epochs=2))
    before = (run_copy / "metrics.json").read_text()
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        shutil.copy(other / name, run_copy / name)
    fails(capsys, predict_args(run_copy, tmp_path / "p.json"), run_copy / "checkpoint_best.pt", "another run",
          "epochs: 2 there, 1 here", "store training")
    assert not (tmp_path / "p.json").exists()
    fails(capsys, train_args(run_data(run_copy), run_copy), run_copy / "checkpoint_last.pt", "another run", "epochs")
    assert (run_copy / "metrics.json").read_text() == before


@case("config.json edited by hand, then the same command", "silent")
def _(capsys, run_copy, tmp_path, **_):
    from workbench.io import DataError
    from workbench.run import read_metrics

    edit_json(run_copy / "config.json", lambda d: d["config"].__setitem__("max_eval_segments", 0))
    before = (run_copy / "metrics.json").read_text()
    fails(capsys, train_args(run_data(run_copy), run_copy, max_eval_segments=0), run_copy / "checkpoint_last.pt",
          "max_eval_segments: 4 there, 0 here")
    fails(capsys, predict_args(run_copy, tmp_path / "p.json"), run_copy / "checkpoint_best.pt", "max_eval_segments")
    with pytest.raises(DataError, match="max_eval_segments: 4 there, 0 here"):   # the reader of every table
        read_metrics(run_copy / "metrics.json")
    assert (run_copy / "metrics.json").read_text() == before
    assert json.loads((run_copy / "config.json").read_text())["config"]["max_eval_segments"] == 0   # not rewritten


@case("a symlinked dataset repointed to another world after training (predict)", "silent")
def _(capsys, run_copy, smoke_data, other_world, tmp_path, **_):
    link = tmp_path / "data"
    link.symlink_to(smoke_data)
    edit_json(run_copy / "config.json", lambda d: d["config"].__setitem__("data", str(link)))
    succeeds(capsys, predict_args(run_copy, tmp_path / "p.json"))      # the run's world by another path: fine
    link.unlink()
    link.symlink_to(other_world)
    recorded = json.loads((run_copy / "config.json").read_text())["stores"]["training"]
    with h5py.File(other_world / "store" / "training.h5", "r") as f:
        here = f.attrs["index_sha256"]
    fails(capsys, predict_args(run_copy, tmp_path / "q.json"), link, "'training'", recorded[:12], here[:12])
    assert not (tmp_path / "q.json").exists()


@case("the text cache rebuilt with another GloVe source, then predict on a finished run", "silent")
def _(capsys, world, run_copy, tmp_path, **_):
    from workbench.text.glove import YC2_VOCAB

    edit_json(run_copy / "config.json", lambda d: d["config"].__setitem__("data", str(world)))
    succeeds(capsys, predict_args(run_copy, tmp_path / "p.json"))      # a copy of the run's world: fine
    glove = tmp_path / "glove.json"                                      # another 300-d source
    glove.write_text(json.dumps({w: [2 * x for x in v] for w, v in json.loads(YC2_VOCAB.read_text()).items()}))
    succeeds(capsys, ["text-features", "--data", world, "--glove", glove])
    fails(capsys, predict_args(run_copy, tmp_path / "q.json"), world / "text_features.h5", "GloVe yc2-vocab",
          f"GloVe {glove}")
    assert not (tmp_path / "q.json").exists()


@case("the text cache rebuilt in bf16 (same sentences), then the finished run re-run", "silent")
def _(capsys, world, run_copy, tmp_path, **_):
    edit_json(run_copy / "config.json", lambda d: d["config"].__setitem__("data", str(world)))
    before = (run_copy / "metrics.json").read_text()
    # the encoder batch size changes no content (padding: float rounding, < 1e-5): the cache is reused
    assert "reusing" in succeeds(capsys, ["text-features", "--data", world, "--batch-size", "3"])
    assert "changed: bf16" in succeeds(capsys, ["text-features", "--data", world, "--bf16"])
    fails(capsys, train_args(world, run_copy), run_copy, "text cache differs", "inputs hash")
    assert (run_copy / "metrics.json").read_text() == before


@case("a run folder written before identities were recorded (resume, predict)", "extra")
def _(capsys, run_copy, tmp_path, **_):
    import torch

    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        ck = torch.load(run_copy / name, weights_only=True)
        ck.pop("identity", None)
        torch.save(ck, run_copy / name)
    edit_json(run_copy / "config.json", lambda d: [d.pop(k, None) for k in ("identity", "text_cache")])
    edit_json(run_copy / "metrics.json", lambda d: d.pop("identity", None))
    before = (run_copy / "metrics.json").read_text()
    for argv in (predict_args(run_copy, tmp_path / "p.json"), train_args(run_data(run_copy), run_copy)):
        assert main([str(a) for a in argv]) == 0
        assert "records no run identity" in capsys.readouterr().err
    assert (run_copy / "metrics.json").read_text() == before


@case("the validation store of another world with the same segment keys", "silent")
def _(capsys, world, tmp_path, **_):
    other = tmp_path / "other"                           # same seed: the same segments and frame counts
    succeeds(capsys, ["simulate", "--out", other, "--set", "context=0.9", "--max-segments", "training=4",
                      "--max-segments", "testing=2"])
    succeeds(capsys, ["build-store", "--root", other, "--split", "validation", "--out", tmp_path / "val.h5"])
    with h5py.File(tmp_path / "val.h5", "r") as a, h5py.File(world / "store" / "validation.h5", "r") as b:
        assert list(a["seg_ids"][:]) == list(b["seg_ids"][:])          # the case: only the world differs
    shutil.copy(tmp_path / "val.h5", world / "store" / "validation.h5")
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), world / "store" / "validation.h5", "another world",
          "knob context: 0.9 there, 0.5 here")
    no_run_written(out)


@case("the validation annotations of another world beside this world's stores", "silent")
def _(capsys, world, tmp_path, **_):
    other = tmp_path / "other"                           # another seed: the same segment keys and frame counts
    succeeds(capsys, ["simulate", "--out", other, "--seed", "5", "--max-segments", "training=4",
                      "--max-segments", "testing=2"])
    ann = "yc2_bb_val_annotations.json"
    assert (other / ann).read_bytes() != (world / ann).read_bytes()
    shutil.copy(other / ann, world / ann)
    out = tmp_path / "run"
    fails(capsys, train_args(world, out), world / ann, "not the annotation file the store",
          world / "store" / "validation.h5")
    no_run_written(out)




# ==== issue 24 (sweeps): every finished run a table reuses or reads is its row's: preset, config, stores; =====
# ==== one writer per sweep folder. Registered in CASES (documented with the rest) and run below. ============



@pytest.fixture
def fake_trainer(monkeypatch) -> list[tuple[str, int]]:
    """Sweeps run through all their machinery, but each run "trains" in milliseconds: it writes what the
    training notebook writes (params.json, run/config.json of ``config_for`` with the stores' digests for a
    trained preset, run/metrics.json). Returns the (preset, seed) of every run started."""
    from workbench.experiments import sweep as sw
    from workbench.run import RunDir
    from workbench.train import BASELINES, config_for

    started: list[tuple[str, int]] = []

    def run_one(preset, data, sweep_dir, overrides, gpu=None, notebook=None, seed=None, runs=None):
        started.append((preset, seed))
        d = sw.unit_dir(sweep_dir, preset, seed)
        params = sw.run_params(preset, data, sweep_dir, overrides, seed)
        d.mkdir(parents=True, exist_ok=True)
        (d / sw.PARAMS).write_text(json.dumps(params))
        cfg = config_for(preset, **params["overrides"], data=params["data"])
        stores = {}
        for split in ("training", "validation", "testing"):
            if (Path(data) / "store" / f"{split}.h5").is_file():
                with h5py.File(Path(data) / "store" / f"{split}.h5", "r") as f:
                    stores[split] = str(f.attrs["index_sha256"])
        run = RunDir(d / sw.RUN)
        run.path.mkdir(parents=True, exist_ok=True)
        run.write_config(preset, cfg, extra={} if preset in BASELINES else {"stores": stores})
        acc = 10.0 + 3 * len(started) + cfg.epochs            # each run its own numbers
        (run.path / "metrics.json").write_text(json.dumps({"selected_epoch": 0, "validation": {
            "box_micro": acc, "box_macro": acc, "query_micro": acc, "query_macro": acc}}))
        return {"preset": preset, "status": "ok", "seconds": 0.0}

    monkeypatch.setattr(sw, "run_one", run_one)
    return started


def sweep_args(world, out, presets="stvg", *extra) -> list:
    return ["sweep", "--grid", "main", "--data", world, "--out", out, "--presets", presets, "--seeds", "1", *extra]


# ---- silent (exit 0 with a wrong or misleading number before) ----

@case("a sweep re-run with other --set values after some runs finished", "silent")
def _(capsys, world, tmp_path, fake_trainer, **_):
    out = tmp_path / "sw"
    succeeds(capsys, sweep_args(world, out, "stvg", "--set", "epochs=1"))
    meta = (out / "sweep.json").read_text()
    fails(capsys, sweep_args(world, out, "dvsa", "--set", "epochs=2"), out / "stvg" / "seed-0" / "run",
          "epochs=1 there, 2 now", "--out", "--set")
    assert fake_trainer == [("stvg", 0)] and (out / "sweep.json").read_text() == meta   # no dvsa at epochs=2 beside it
    fails(capsys, sweep_args(world, out, "dvsa"), "epochs=1 there")          # nor at the default epochs
    succeeds(capsys, sweep_args(world, out, "dvsa", "--set", "epochs=1"))    # the same --set extends the sweep
    assert fake_trainer == [("stvg", 0), ("dvsa", 0)]


@case("a run folder of another preset copied into a sweep folder", "silent")
def _(capsys, world, tmp_path, fake_trainer, **_):
    from workbench.io import DataError
    from workbench.experiments.sweep import write_results

    out = tmp_path / "sw"
    succeeds(capsys, sweep_args(world, out, "stvg,dvsa"))
    shutil.rmtree(out / "stvg" / "seed-0" / "run")
    shutil.copytree(out / "dvsa" / "seed-0" / "run", out / "stvg" / "seed-0" / "run")   # dvsa's numbers in stvg's row
    with pytest.raises(DataError, match=r"stvg/seed-0/run: holds a finished run of preset 'dvsa'.*row 'stvg'"):
        write_results(out)                                                 # the results reader (figures, notebook 05)
    fails(capsys, sweep_args(world, out, "stvg,dvsa"), out / "stvg" / "seed-0" / "run", "'dvsa'", "'stvg'")
    assert fake_trainer == [("stvg", 0), ("dvsa", 0)]                     # skip-as-finished refused, nothing rerun


@case("two sweeps into one folder at once", "silent")
def _(capsys, world, tmp_path, fake_trainer, **_):
    import socket

    from workbench.run import RunDir

    out = tmp_path / "sw"
    succeeds(capsys, sweep_args(world, out, "stvg"))
    before = {p: p.read_bytes() for p in (out / "sweep.json", out / "results.csv")}
    with RunDir(out).lock():                            # the first sweep holds SWEEP/.lock for its whole run
        fails(capsys, sweep_args(world, out, "dvsa"), out, "another sweep", f"pid {os.getpid()}", socket.gethostname())
    assert {p: p.read_bytes() for p in before} == before and fake_trainer == [("stvg", 0)]
    succeeds(capsys, sweep_args(world, out, "dvsa"))   # once it ended: both in one table
    assert json.loads((out / "sweep.json").read_text())["presets"] == ["stvg", "dvsa"]


@case("the dataset re-simulated in place and the sweep re-run", "silent", {"trained run": "stvg", "baseline row": "random"})
def _(capsys, world, tmp_path, fake_trainer, param, **_):
    out = tmp_path / "sw"
    succeeds(capsys, sweep_args(world, out, param))
    other = {"training": "0" * 64, "validation": "1" * 64, "testing": "2" * 64}   # another world's store digests
    if param == "random":                               # a baseline row records none: the sweep's record stands
        edit_json(out / "sweep.json", lambda m: m.__setitem__("stores", other))
    else:
        edit_json(out / param / "seed-0" / "run" / "config.json", lambda c: c.__setitem__("stores", other))
    fails(capsys, sweep_args(world, out, param), out / param / "seed-0" / "run", "other feature stores",
          "re-simulated", str(world))
    assert fake_trainer == [(param, 0)]


@case("--grid generalization on a world without held-out classes", "silent")
def _(capsys, world, tmp_path, fake_trainer, **_):
    out = tmp_path / "sw"
    fails(capsys, ["sweep", "--grid", "generalization", "--data", world, "--out", out, "--seeds", "1"],
          "--grid generalization", world, "holdout_classes", "--holdout")
    assert not out.exists() and fake_trainer == []


@case("a world sweep given --world-set and --axis of one knob", "silent")
def _(capsys, tmp_path, monkeypatch, **_):
    from workbench.experiments import world_sweep as curve

    def no_world(*a, **k):
        raise AssertionError("a world was made")
    monkeypatch.setattr(curve, "ensure_world", no_world)
    fails(capsys, ["sweep", "--grid", "context", "--axis", "context=0,0.5", "--world-set", "context=0.3",
                   "--data-root", tmp_path / "worlds", "--out", tmp_path / "ws", "--presets", "random", "--seeds", "1",
                   "--world-preset", "smoke"], "--world-set context=0.3", "--axis context")
    assert not (tmp_path / "worlds").exists() and not (tmp_path / "ws").exists()


# ---- unclear (failed, but without saying what is wrong) ----

@case("a moved sweep folder is extended (paths are not identity)", "unclear")
def _(capsys, world, tmp_path, fake_trainer, **_):
    first = tmp_path / "a" / "sw"
    succeeds(capsys, sweep_args(world, first, "stvg"))
    moved = tmp_path / "b" / "sw"
    moved.parent.mkdir()
    shutil.move(first, moved)
    log = succeeds(capsys, sweep_args(world, moved, "stvg,dvsa"))
    assert "stvg/seed-0: skipped (finished)" in log and fake_trainer == [("stvg", 0), ("dvsa", 0)]
    import pandas as pd

    runs = [r for r in pd.read_csv(moved / "results.csv")["run"].dropna().tolist() if r]
    assert runs and all(r.startswith(str(moved)) for r in runs)


@case("sweep --set data=B beside --data A", "unclear")
def _(capsys, world, tmp_path, fake_trainer, **_):
    other = tmp_path / "other_world"
    other.mkdir()
    out = tmp_path / "sw"
    fails(capsys, sweep_args(world, out, "stvg", "--set", f"data={other}"), "--set data=", str(other), str(world))
    fails(capsys, ["sweep", "--grid", "context", "--axis", "context=0", "--data-root", tmp_path / "worlds", "--out",
                   tmp_path / "ws", "--presets", "random", "--set", f"data={other}"], "--set data=", "--data-root")
    assert not out.exists() and not (tmp_path / "ws").exists() and fake_trainer == []
    succeeds(capsys, sweep_args(world, out, "stvg", "--set", f"data={world}"))   # the same dataset twice is fine


# ---- found since (extra) ----

@case("a world sweep's run folder of another preset or seed (context curve)", "extra",
      {"preset": ("dvsa", 0), "seed": ("stvg", 1)})
def _(capsys, tmp_path, param, **_):
    from workbench.config import Config
    from workbench.run import RunDir

    preset, seed = param
    sw, m = tiny_world_sweep(tmp_path, 40.0)             # the stvg seed-0 row of value 0.5
    RunDir(m.parent).write_config(preset, Config().replace(seed=seed))
    figures_fail(capsys, sw, tmp_path / "fig", m.parent, repr(preset) if preset != "stvg" else "seed=1 there, 0 now")


