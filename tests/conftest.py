"""Shared fixtures: paths of the vendored real data and the YouCook2-BB class vocabulary."""
import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def yc2_dir() -> Path:
    """The vendored YouCook2-BB files (data/youcook2_bb)."""
    return DATA / "youcook2_bb"


@pytest.fixture(scope="session")
def anet_dir() -> Path:
    """The vendored ActivityNet-Entities files (data/activitynet_entities)."""
    return DATA / "activitynet_entities"


@pytest.fixture(scope="session")
def vocab(yc2_dir):
    """The 67-class vocabulary of the real class_file.csv."""
    from workbench.datasets.yc2 import load_class_file

    return load_class_file(yc2_dir / "class_file.csv")


@pytest.fixture(scope="session")
def smoke_data(tmp_path_factory) -> Path:
    """A simulated smoke dataset with its feature stores and text features (built once per session)."""
    from workbench.prepare import prepare

    return prepare(tmp_path_factory.mktemp("smoke") / "data", preset="smoke", seed=0)


# Tiny model settings for end-to-end runs on the smoke data (seconds per run). SCL_TEST_DTYPE forces the
# matmul dtype of those runs: tests/test_isa_caps.py reruns the training tests in bf16 under oneDNN ISA caps,
# where dtype=auto would pick fp32 and leave the bf16 kernels of a machine without AMX untested.
TINY = {"embed_dim": 32, "attn_heads": 4, "batch_size": 8, "lstm_hidden": 16, "threads": 1,
        "dtype": os.environ.get("SCL_TEST_DTYPE", "auto")}
