"""simulate --output store: the HDF5 stores written directly equal build-store's conversion of the
per-segment .npy files, and an interrupted run resumes to the same bytes."""
import json

import h5py
import numpy as np
import pytest

from workbench.sim import simulate as simulator
from workbench.sim.simulate import simulate
from workbench.features.store import FeatureStore, build_store
from workbench.io import DataError

SPLITS = ("training", "validation", "testing")


def _arrays(path):
    with h5py.File(path, "r") as f:
        return {k: f[k][:] for k in ("features", "boxes", "seg_ids", "frame_offset", "frame_count")}


def test_direct_store_equals_build_store_of_npy(tmp_path):
    npy = simulate(tmp_path / "npy", preset="smoke", seed=3, output="npy")
    both = simulate(tmp_path / "both", preset="smoke", seed=3, output="both")
    for split in SPLITS:
        ref = build_store(npy, split, tmp_path / f"{split}.h5", progress=False)
        a, b = _arrays(tmp_path / f"{split}.h5"), _arrays(both / "store" / f"{split}.h5")
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{split} {k}")
        assert ref["segments"] == len(b["seg_ids"])
        # the npy files of "both" are those of "npy"
        key = b["seg_ids"][0].decode()
        assert (npy / "region_features" / split / f"{key}.npy").read_bytes() == \
            (both / "region_features" / split / f"{key}.npy").read_bytes()
    for name in ("yc2_bb_val_annotations.json", "yc2_bb_test_annotations.json"):
        assert (npy / name).read_text() == (both / name).read_text()
    assert FeatureStore(both / "store" / "validation.h5").feature_dim == 32
    store_only = simulate(tmp_path / "store", preset="smoke", seed=3, output="store")
    for split in ("validation", "testing"):  # `simulate --stats` reads the store when there are no .npy files
        a, b = simulator.world_stats(npy, split), simulator.world_stats(store_only, split)
        assert a["boxes"] == b["boxes"] and a["random"] == pytest.approx(b["random"], abs=1e-6)
        assert a["upper_bound"] == pytest.approx(b["upper_bound"], abs=1e-6)
    assert json.loads((both / "dataset.json").read_text())["output"] == "both"


def test_store_output_resumes_after_interruption(tmp_path, monkeypatch):
    ref = simulate(tmp_path / "ref", preset="smoke", seed=1, output="store", world="v1")
    assert not (ref / "region_features").exists()
    real, calls = simulator.segment_arrays, {"n": 0}

    def dies_after_70(world, plan):
        calls["n"] += 1
        if calls["n"] > 70:  # inside the validation split (60 training segments)
            raise KeyboardInterrupt
        return real(world, plan)

    monkeypatch.setattr(simulator, "segment_arrays", dies_after_70)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        simulate(out, preset="smoke", seed=1, output="store", checkpoint_seconds=0.0, world="v1")
    partial = tmp_path / ".resumed.partial"
    assert (partial / "store" / "training.h5").is_file() and (partial / "store" / "validation.h5.partial").is_file()
    with h5py.File(partial / "store" / "validation.h5.partial", "r") as f:
        done = int(f.attrs["segments_done"])
    assert 0 < done < 20
    calls["n"] = 0
    monkeypatch.setattr(simulator, "segment_arrays", lambda w, p: (calls.__setitem__("n", calls["n"] + 1), real(w, p))[1])
    simulate(out, preset="smoke", seed=1, output="store", world="v1")
    assert calls["n"] == 40 - done  # only the rest of validation, and testing
    assert not partial.exists()
    for split in SPLITS:
        a, b = _arrays(ref / "store" / f"{split}.h5"), _arrays(out / "store" / f"{split}.h5")
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{split} {k}")
    assert (ref / "yc2_bb_val_annotations.json").read_text() == (out / "yc2_bb_val_annotations.json").read_text()


def test_world_v2_store_output_resumes_to_the_same_files(tmp_path, monkeypatch):
    """World v2 (the default): an interrupted store run resumes to the same stores, annotations and
    oracle / truth files (the done segments' truth is regenerated, not written twice)."""
    ref = simulate(tmp_path / "ref", preset="smoke", seed=1, output="store")
    real, calls = simulator.segment_arrays, {"n": 0}

    def dies_after_70(world, plan):
        calls["n"] += 1
        if calls["n"] > 70:  # inside the validation split (60 training segments)
            raise KeyboardInterrupt
        return real(world, plan)

    monkeypatch.setattr(simulator, "segment_arrays", dies_after_70)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        simulate(out, preset="smoke", seed=1, output="store", checkpoint_seconds=0.0)
    monkeypatch.setattr(simulator, "segment_arrays", real)
    simulate(out, preset="smoke", seed=1, output="store")
    for split in SPLITS:
        a, b = _arrays(ref / "store" / f"{split}.h5"), _arrays(out / "store" / f"{split}.h5")
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{split} {k}")
    for name in ("yc2_bb_val_annotations.json", "world_stats.json", "world_truth.json"):
        assert (ref / name).read_text() == (out / name).read_text(), name


def test_partial_store_of_other_settings_is_refused(tmp_path, monkeypatch):
    real = simulator.segment_arrays
    monkeypatch.setattr(simulator, "segment_arrays",
                        lambda w, p: (_ for _ in ()).throw(KeyboardInterrupt) if p.split == "validation" else real(w, p))
    with pytest.raises(KeyboardInterrupt):
        simulate(tmp_path / "d", preset="smoke", seed=1, output="store", checkpoint_seconds=0.0, world="v1")
    monkeypatch.setattr(simulator, "segment_arrays", real)
    with pytest.raises(DataError, match="partial store of other segments or settings"):
        simulate(tmp_path / "d", preset="smoke", seed=2, output="store", world="v1")
