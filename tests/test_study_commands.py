"""The commands that were scripts in tools/: study, generalization-world, bench-public. Each runs as
``python -m workbench COMMAND`` with its sizes as arguments, leaving sys.path, sys.modules, torch and the
simulator's sizes as they were."""
import json
import sys

import pandas as pd
import pytest
import torch

from conftest import TINY
from workbench.__main__ import main

TINY_SETS = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]


@pytest.mark.slow
def test_study_trains_variants_pairs_them_and_records_a_failure(smoke_data, tmp_path, capsys):
    out = tmp_path / "study"
    argv = ["study", "--data", str(smoke_data), "--out", str(out), "--seeds", "0", "1", *TINY_SETS,
            "--set", "epochs=1", "--set", "max_eval_segments=6",
            "--variant", "base=stvg", "--variant", "add=stvg:temporal=additive", "--variant", "bad=stvg:lr=1e9",
            "--baseline", "base"]
    assert main(argv) == 0
    lines = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert [(r["variant"], r["seed"], "failed" in r) for r in lines] == [
        (v, s, v == "bad") for s in (0, 1) for v in ("base", "add", "bad")]       # seed by seed, variants in order

    csv = pd.read_csv(out / "results.csv")
    assert list(zip(csv["preset"], csv["seed"])) == [(v, s) for v in ("base", "add", "bad") for s in (0, 1)]
    assert set(csv[csv["preset"] == "bad"]["status"]) == {"failed"}
    assert csv[csv["preset"] == "bad"]["error"].str.startswith("FloatingPointError").all()
    for v, s in (("base", 1), ("add", 0)):
        metrics = json.loads((out / v / f"seed-{s}" / "metrics.json").read_text())
        row = csv[(csv["preset"] == v) & (csv["seed"] == s)].iloc[0]
        assert row["status"] == "ok" and row["validation_box_micro"] == pytest.approx(
            metrics["validation"]["box_micro"], abs=1e-4)
        cfg = json.loads((out / v / f"seed-{s}" / "config.json").read_text())
        assert cfg["config"]["seed"] == s and cfg["config"]["temporal"] == ("additive" if v == "add" else "stvg")
    md = (out / "results.md").read_text()
    assert "Difference to `base`" in md and "| add |" in md and "- bad (seed 0): FloatingPointError" in md

    before = (out / "base" / "seed-0" / "metrics.json").read_bytes()
    assert main([*argv, "--report-only"]) == 0                     # tabulates, trains nothing
    assert not [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    again = pd.read_csv(out / "results.csv")
    ok = again["status"] == "ok"
    cols = ["preset", "seed", "label", "selected_epoch"] + [c for c in csv if c.startswith(("validation_", "testing_"))]
    assert again[ok][cols].equals(csv[ok][cols]) and set(again[~ok]["status"]) == {"missing"}
    assert (out / "base" / "seed-0" / "metrics.json").read_bytes() == before

    assert main(["study", "--data", str(smoke_data), "--out", str(out), "--variant", "stvg"]) == 2
    assert "expected NAME=PRESET" in capsys.readouterr().err


def test_generalization_world_passes_its_size_without_changing_the_simulator(tmp_path, capsys):
    from workbench.experiments.generalization import world_size
    from workbench.sim import simulate as sim

    sizes = json.dumps(sim.WORLD_SIZES, sort_keys=True)
    out = tmp_path / "g"
    assert main(["generalization-world", str(out), "--train", "6", "--val", "3", "--test", "3", "--holdout", "2",
                 "--set", "appearance_from_words=0.5", "--word-oracle"]) == 0
    first, _, oracle = capsys.readouterr().out.partition("\n")
    summary = json.loads(first)
    assert {s: summary["splits"][s]["segments"] for s in ("training", "testing")} == {"training": 6, "testing": 3}
    assert len(summary["holdout_names"]) == 2
    assert set(json.loads(oracle)) == {"validation", "testing"}
    meta = json.loads((out / "dataset.json").read_text())
    assert (meta["preset"], meta["feature_dim"], meta["world"]) == ("generalization", 64, "v2")
    assert meta["knobs"]["appearance_from_words"] == 0.5 and "max_segments" not in meta
    plans = sim.plan_segments("generalization", 0, size=world_size(6, 3, 3))
    assert max(p.num_frames for ps in plans.values() for p in ps) <= 40 < max(
        p.num_frames for ps in sim.plan_segments("demo", 0, max_segments={"training": 6}).values() for p in ps)
    assert json.dumps(sim.WORLD_SIZES, sort_keys=True) == sizes            # nothing added at run time


FAKE_PUBLIC = {   # the public checkout's shape, CUDA-only as it is: .cuda(), CUDA tensor types, torch.load
    "Attention_mm.py": "import torch\nclass MultiHeadAttention(torch.nn.Linear):\n    pass\n",
    "memory.py": "import torch\nclass MemoryBank(torch.nn.Module):\n    pass\n",
    "model_mm.py": """import torch
from Attention_mm import MultiHeadAttention
from memory import MemoryBank


class WSTOG(torch.nn.Module):
    def __init__(self, batch_size=20, args=None, paras=None):
        super().__init__()
        assert paras.train_mode == "STVG"
        self.glove = torch.load(args.glove_dir).cuda()
        self.proj = MultiHeadAttention(4, 1).cuda()

    def forward(self, pl, pf, nl, nf, is_training, is_finetune):
        pos, neg = self.proj(pf.cuda()).mean(), self.proj(nf.cuda()).mean()
        return (neg - pos + 0 * self.glove.sum()).type(torch.cuda.FloatTensor)
""",
}


def test_bench_public_runs_the_public_model_on_the_cpu_and_restores_torch(tmp_path, capsys):
    from workbench.experiments import public_stvg as pub

    for name, text in FAKE_PUBLIC.items():
        (tmp_path / name).write_text(text)
    (tmp_path / pub.ANNOTATIONS).mkdir(parents=True)
    torch.save(torch.ones(3), tmp_path / pub.ANNOTATIONS / "YC2_glove_dict.pth")
    path, load, float_tensor = list(sys.path), torch.load, torch.cuda.FloatTensor

    model, opt, params = pub.public_model(tmp_path, batch=2)
    g = torch.Generator().manual_seed(0)
    batches = [(pub.public_batch(g, 2, 1, 3, 4), pub.public_batch(g, 2, 1, 3, 4)) for _ in range(2)]
    w0 = model.proj.weight.detach().clone()
    pub.public_step(model, opt, params, batches)(0)
    assert not torch.equal(model.proj.weight, w0) and model.proj.weight.device.type == "cpu"
    assert sys.path == path and not set(pub.PUBLIC_MODULES) & set(sys.modules)
    assert "cuda" not in vars(torch.Tensor) and torch.load is load and torch.cuda.FloatTensor is float_tensor

    calls = []
    times = pub.interleave({k: (lambda i, k=k: calls.append(k)) for k in "abc"}, rounds=2, log=lambda m: None)
    assert "".join(calls) == "abc" + "cba" + "abc" and all(len(v) == 2 for v in times.values())

    assert main(["bench-public", "--public", str(tmp_path / "nowhere")]) == 2
    assert "model_mm.py" in capsys.readouterr().err
