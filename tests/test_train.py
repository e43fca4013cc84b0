"""End-to-end training, selection, resume, prediction and evaluation on the smoke simulator."""
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import TINY
from workbench.__main__ import main
from workbench.config import MODEL_PRESETS

METRICS = ("query_macro", "query_micro", "box_macro", "box_micro")


def sets(**over):
    out = []
    for k, v in {**TINY, **over}.items():
        out += ["--set", f"{k}={v}"]
    return out


def train_cli(data, preset, out, **over):
    return main(["train", "--data", str(data), "--preset", preset, "--out", str(out), *sets(**over)])


def test_train_writes_the_run_directory(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli(smoke_data, "scl", out, epochs=2) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == "scl" and cfg["config"]["lambda_clust"] == 0.4 and cfg["config"]["embed_dim"] == 32
    assert set(cfg["provenance"]["git"]) == {"sha", "dirty"}
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1]
    assert {"mil_f", "mil_c", "clust", "stran", "ttran", "total"} <= set(log[0]["losses"])
    assert all(0 <= log[0]["val"][m] <= 100 for m in METRICS) and log[0]["seconds"] > 0
    # the transfer diagnostics of the probe batch, every epoch, present and finite
    for row in log:
        d = row["diagnostics"]
        for k in ("mf_top", "mf_entropy", "mc_top", "mc_entropy", "qf_top", "qf_entropy", "qc_top", "qc_entropy",
                  "a_pos_s", "a_neg_s", "a_pos_t", "a_neg_t", "d_pos", "d_neg", "tau"):
            assert math.isfinite(d[k]), k
        assert d["uniform_top"] == pytest.approx(1 / 20) and 0 < d["mf_top"] <= 1
        assert 0 <= d["mf_entropy"] <= d["uniform_entropy"] + 1e-6
        for g in ("E_f", "E_v"):
            norms, shares = d["grad_norm"][g], d["grad_share"][g]
            assert set(norms) == {"mil_f", "mil_c", "clust", "stran", "ttran"}
            assert all(math.isfinite(v) and v >= 0 for v in norms.values())
            assert sum(shares.values()) == pytest.approx(1.0)
            assert all(math.isfinite(v) for v in d["grad_cos"][g].values())
        assert d["grad_norm"]["E_f"]["mil_f"] > 0 and d["grad_norm"]["E_f"]["stran"] > 0
    assert cfg["text_encoder"] == "MiniLM-L6"
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("validation", "testing"):
        assert all(0 <= metrics[split][m] <= 100 for m in METRICS)
        assert metrics[split]["boxes"] > 0 and metrics[split]["missing"] == 0
    # the selected epoch is the best validation epoch of the log
    best = max(log, key=lambda r: r["val"]["box_micro"])
    assert metrics["selected_epoch"] == best["epoch"]
    assert metrics["validation"]["box_micro"] == pytest.approx(best["val"]["box_micro"])
    assert (out / "checkpoint_last.pt").is_file() and (out / "checkpoint_best.pt").is_file()


def test_unknown_set_key_is_an_error(smoke_data, tmp_path, capsys):
    assert main(["train", "--data", str(smoke_data), "--preset", "stvg", "--out", str(tmp_path / "r"),
                 "--set", "learning_rate=1"]) == 2
    assert "learning_rate" in capsys.readouterr().err
    assert not (tmp_path / "r" / "metrics.json").exists()


# Runs the train CLI, but stops inside epoch STOP's training, after telling the test so: the test then
# kills it with SIGKILL at a known point, however loaded the machine (polling log.jsonl instead let a
# starved test process miss the window).
STOP_IN_EPOCH = """
import sys, time
from pathlib import Path
import workbench.train as t
flag, stop = Path(sys.argv[1]), int(sys.argv[2])
real = t.train_one_epoch
def train_one_epoch(model, weights, data, opt, cfg, epoch, *a, **k):
    if epoch == stop:
        flag.write_text("in epoch %d" % epoch)
        time.sleep(600)
    return real(model, weights, data, opt, cfg, epoch, *a, **k)
t.train_one_epoch = train_one_epoch
from workbench.__main__ import main
sys.exit(main(sys.argv[3:]))
"""


def test_resume_after_sigkill_matches_an_uninterrupted_run(smoke_data, tmp_path):
    """A run killed with SIGKILL mid-training and resumed ends with the metrics of an uninterrupted run,
    even when ``dtype=auto`` would decide otherwise at the resume. That was the cause of a failure under
    load (selected epoch 0 vs 2): the resumed process re-measured ``auto`` (its cache record had been
    dropped by a concurrent writer) and trained the rest in the other dtype. Here the per-machine cache
    is flipped to the other dtype before the resume; the resumed run must keep the dtype it started in."""
    epochs, stop = 4, 2
    ref, killed, cache = tmp_path / "ref", tmp_path / "killed", tmp_path / "cache"
    env = dict(os.environ, SCL_WORKBENCH_CACHE=str(cache))
    args = ["train", "--data", str(smoke_data), "--preset", "scl", "--out", str(killed),
            *sets(epochs=epochs, dtype="auto")]
    flag = tmp_path / "in_epoch"
    proc = subprocess.Popen([sys.executable, "-c", STOP_IN_EPOCH, str(flag), str(stop), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300  # a guard against a hang only
    while not flag.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert flag.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no epoch 2"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    log = killed / "log.jsonl"
    assert len(log.read_text().splitlines()) == stop
    started = json.loads((killed / "config.json").read_text())["precision"]["dtype"]
    other = {"bf16": "fp32", "fp32": "bf16"}[started]
    table = json.loads((cache / "dtype.json").read_text())
    for rec in table.values():
        rec["dtype"] = other                      # auto now answers the other dtype
    (cache / "dtype.json").write_text(json.dumps(table))
    r = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming in {started}" in r.stdout
    assert json.loads((killed / "config.json").read_text())["precision"]["dtype"] == started
    # the uninterrupted run, in the dtype the killed run started in
    assert train_cli(smoke_data, "scl", ref, epochs=epochs, dtype=started) == 0
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a["selected_epoch"] == b["selected_epoch"]
    for split in ("validation", "testing"):
        for m in METRICS:
            assert a[split][m] == b[split][m], (split, m)
    ra = [json.loads(x)["losses"] for x in (ref / "log.jsonl").read_text().splitlines()]
    rb = [json.loads(x)["losses"] for x in log.read_text().splitlines()]
    assert ra == rb


def test_resume_refuses_a_different_config(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli(smoke_data, "stvg", out, epochs=1) == 0
    assert train_cli(smoke_data, "stvg", out, epochs=1, lr=0.5) == 2
    assert "different config" in capsys.readouterr().err


def test_predict_then_evaluate_reproduces_metrics_json(smoke_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert train_cli(smoke_data, "stvg", out, epochs=1) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for split, gt_name in (("validation", "yc2_bb_val_annotations.json"), ("testing", "yc2_bb_test_annotations.json")):
        pred = tmp_path / f"{split}.json"
        assert main(["predict", "--run", str(out), "--split", split, "--out", str(pred)]) == 0
        capsys.readouterr()
        assert main(["evaluate", "--annotations", str(smoke_data / gt_name), "--predictions", str(pred),
                     "--class-file", str(smoke_data / "class_file.csv")]) == 0
        got = json.loads(capsys.readouterr().out)
        for m in METRICS:
            assert got[m] == pytest.approx(metrics[split][m]), (split, m)
        assert got["missing"] == 0


@pytest.mark.parametrize("name", ["random", "upper-bound"])
def test_baseline_rows_through_train(smoke_data, tmp_path, name):
    out = tmp_path / name
    assert main(["train", "--data", str(smoke_data), "--preset", name, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert 0 < m["validation"]["box_micro"] < 100


def test_upper_bound_beats_random_and_training_beats_random(smoke_data, tmp_path):
    # embed_dim 128, not TINY's 32: with the STVG temporal form, the 32-d model of seed 0 stays at its
    # initial grounding for 8 epochs on the smoke world (docs/DECISIONS.md, temporal form on smoke).
    res = {}
    for name in ("random", "upper-bound", "stvg"):
        out = tmp_path / name
        assert train_cli(smoke_data, name, out, epochs=3, lr=1e-3, embed_dim=128) == 0
        res[name] = json.loads((out / "metrics.json").read_text())["validation"]["box_micro"]
    assert res["random"] < res["stvg"] < res["upper-bound"], res


def test_every_preset_trains_one_epoch_end_to_end(smoke_data, tmp_path):
    for name in MODEL_PRESETS:
        assert train_cli(smoke_data, name, tmp_path / name, epochs=1, max_eval_segments=5) == 0, name
        m = json.loads((tmp_path / name / "metrics.json").read_text())
        assert m["validation"]["boxes"] > 0, name


def test_bench_prints_one_json_line(smoke_data, capsys):
    """`bench` on synthetic batches and end to end from a store (tiny shapes; timings are not asserted)."""
    assert main(["bench", "--preset", "scl", "--batch", "4", "--frames", "2", "--feature-dim", "32",
                 "--steps", "2", "--warmup", "1", "--dtype", "fp32"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert {"sec_per_step", "segments_per_s", "peak_rss_mib", "dtype", "device"} <= set(row)
    assert row["dtype"] == "fp32" and row["feature_dim"] == 32
    assert main(["bench", "--preset", "stvg", "--batch", "4", "--frames", "2", "--steps", "2", "--warmup", "1",
                 "--data", str(smoke_data), "--e2e-steps", "12"]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["e2e_sec_per_step"] > 0 and row["feature_dim"] == 32
    # 12 streamed steps, each replayed from memory (blocks of 10 + 2): the ratio is of the two sums
    assert row["e2e_steps"] == 12 and row["e2e_model_sec_per_step"] > 0
    assert row["e2e_over_model"] == pytest.approx(row["e2e_sec_per_step"] / row["e2e_model_sec_per_step"], rel=0.02)
    # one training batch cannot be timed end to end (the first is untimed): a clear error, not a crash
    assert main(["bench", "--preset", "stvg", "--batch", "40", "--frames", "2", "--steps", "1", "--warmup", "0",
                 "--data", str(smoke_data)]) == 2
    assert "needs at least 2" in capsys.readouterr().err


def test_simulate_then_train_needs_no_other_step(tmp_path, capsys):
    """A newcomer's two commands: the missing feature stores and text cache are built (and said so)."""
    data, out = tmp_path / "data", tmp_path / "run"
    assert main(["simulate", "--out", str(data), "--preset", "smoke"]) == 0
    assert not (data / "text_features.h5").exists() and not (data / "store").exists()
    assert train_cli(data, "scl", out, epochs=1, max_eval_segments=4) == 0
    said = capsys.readouterr().out
    assert "text_features.h5 not found: building the text cache with the default encoder (minilm" in said
    assert "training.h5 not found: building the training feature store" in said
    assert (out / "metrics.json").is_file() and (data / "text_features.h5").is_file()
    progress = json.loads((out / "progress.json").read_text())
    assert progress["epoch"] == 0 and progress["step"] + 1 == progress["steps"] and progress["loss"] > 0
    mtime = (data / "text_features.h5").stat().st_mtime_ns
    assert train_cli(data, "stvg", tmp_path / "run2", epochs=1, max_eval_segments=4) == 0
    assert "not found" not in capsys.readouterr().out                  # built once, then reused
    assert (data / "text_features.h5").stat().st_mtime_ns == mtime


# --- the fixed costs of a run (issue 25): what is skipped or kept must not change a number ----------------

TIMING = ("seconds", "train_seconds")


def _untimed(text: str) -> str:
    """metrics.json / log.jsonl with their timing values masked (the only bytes two equal runs may differ in)."""
    import re

    return re.sub(r'("(?:train_)?seconds": )[0-9.eE+-]+', r"\1X", text)


def test_kept_eval_inputs_and_reused_rows_change_no_byte(smoke_data, tmp_path, monkeypatch):
    """A run that parses only the evaluated ground truth, keeps its evaluation batches and GT units across
    epochs and scores the selected epoch's validation boxes again writes the metrics.json and log.jsonl of
    a run that parses all of it, streams every evaluation from the store and predicts validation again."""
    from workbench import train as T, workspace as W
    from workbench.config import preset

    # lr 1e-2: validation moves between epochs and selects epoch 0 of 3 (rows of a later epoch would show)
    cfg = preset("stvg", data=str(smoke_data), **{**TINY, "epochs": 3, "max_eval_segments": 8, "lr": 1e-2})
    fast = T.train(cfg, tmp_path / "fast", "stvg")
    monkeypatch.setattr(T, "_same_as_selection", lambda model: False)
    monkeypatch.setattr(W, "EVAL_BATCH_BYTES", 0)
    full = W.Workspace(cfg)                                   # every segment's ground truth parsed
    slow = T.train(cfg, tmp_path / "slow", "stvg", ws=full)
    assert fast["validation"]["boxes"] > 0 and slow["selected_epoch"] == fast["selected_epoch"]
    for name in ("metrics.json", "log.jsonl"):
        a, b = ((tmp_path / r / name).read_text() for r in ("fast", "slow"))
        assert _untimed(a) == _untimed(b), name


def test_workspace_parses_the_evaluated_ground_truth_and_more_when_asked(smoke_data):
    from workbench.config import preset
    from workbench.workspace import Streamed, Workspace

    few, every = (preset("stvg", data=str(smoke_data), max_eval_segments=n) for n in (3, 0))
    full, part = Workspace(every), Workspace(few, evaluated_only=True)
    assert len(part.gt["validation"]) < len(full.gt["validation"])
    assert part.eval_keys("validation", few) == full.eval_keys("validation", few)
    assert part.eval_keys("testing", every) == full.eval_keys("testing", every)     # parsed in full when asked
    assert len(part.gt["testing"]) == len(full.gt["testing"])
    keys = part.eval_keys("validation", few)
    kept = part.eval_batches("validation", keys)
    assert part.eval_batches("validation", keys) is kept and part.eval_units("validation", keys) is part.eval_units(
        "validation", keys)
    streamed = Streamed(part.stores["validation"], part.text, keys)
    for (ga, ba), (gb, bb) in zip(kept, streamed):             # the same groups, and iterable again
        assert ga == gb and all(bool((ba[k] == bb[k]).all()) for k in ba)
    assert sum(len(g) for g, _ in streamed) == len(keys)


def test_a_passed_text_input_check_is_remembered_by_what_it_read(smoke_data, tmp_path, monkeypatch):
    """The second check of the same files skips re-deriving the inputs; an edited input is checked again."""
    import shutil

    from workbench.features import text_cache
    from workbench.features.text_cache import TextFeatures
    from workbench.io import DataError

    monkeypatch.setenv("SCL_WORKBENCH_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    for f in smoke_data.iterdir():
        if f.is_file() and f.suffix != ".h5":
            shutil.copy(f, data / f.name)
    text = TextFeatures(smoke_data / "text_features.h5")
    calls = []
    real = text_cache.collect_inputs
    monkeypatch.setattr(text_cache, "collect_inputs", lambda d, fmt=None: calls.append(d) or real(d, fmt))
    text.check_inputs(data)
    text.check_inputs(data)
    assert len(calls) == 1                                     # remembered
    sent = json.loads((data / "seg_sentence_dict.json").read_text())
    key = next(iter(sent))
    sent[key] = sent[key] + " again"
    (data / "seg_sentence_dict.json").write_text(json.dumps(sent))
    with pytest.raises(DataError, match="stale text cache"):
        text.check_inputs(data)
    assert len(calls) == 2


def test_provenance_reads_versions_without_importing_transformers():
    code = ("import importlib.metadata as m, sys; from workbench.run import provenance; p = provenance(); "
            "assert 'transformers' not in sys.modules, 'imported'; "
            "assert p['transformers'] == m.version('transformers') and p['h5py'] == m.version('h5py'), p")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
