"""Make a dataset directory ready to train on: simulate it if it is missing (simulator
presets only), build its feature stores and its text-feature cache. Every step is skipped
when its output is already there, so notebooks, tests and the main job can all call it."""
from __future__ import annotations

from pathlib import Path

from .datasets import detect
from .datasets.base import DatasetFormat
from .datasets.yc2 import DatasetDir
from .features.store import build_store, store_is_current
from .features.text_cache import build_text_features, ensure_text_features
from .paths import CLASS_FILE, DATASET_META, WORK
from .sim.simulate import ensure_dataset


def default_dir(preset: str = "smoke") -> Path:
    """Where the README's commands and the notebooks keep a simulated dataset: <repo>/work/<preset>."""
    return WORK / preset


def prepare(data: str | Path | None = None, preset: str = "smoke", seed: int = 0, encoder: str = "minilm",
            glove: str | None = None, quiet: bool = True) -> Path:
    """Return a dataset directory with stores and text features, creating what is missing.

    A missing ``data`` directory is simulated with ``preset`` (smoke | demo | full); ``glove`` None = the
    dataset format's default source.
    """

    data = Path(data) if data else default_dir(preset)
    ds = DatasetDir(data)
    if not (data / CLASS_FILE).is_file() and not (data / DATASET_META).is_file():
        ensure_dataset(data, preset=preset, seed=seed)
    fmt = detect(data)
    for split in ("training", "validation", "testing"):
        current = ds.store(split).is_file() and store_is_current(ds.store(split))
        if not current and fmt.has_source(data, split):
            build_store(data, split, ds.store(split), progress=not quiet, fmt=fmt)
    ensure_text_features(data, encoder=encoder, glove=glove, fmt=fmt)
    return data


def fill_missing(data: str | Path, encoder: str = "minilm", glove: str | None = None, log=print,
                 fmt: DatasetFormat | None = None) -> list[str]:
    """Build what a dataset directory lacks to be trained on, saying so: the feature store of each split
    whose per-segment features are there, and the text cache (default encoder; ``glove`` None = the
    dataset format's own default, e.g. ``minilm-static`` on ActivityNet-Entities) when there is none. An
    existing file is never rebuilt here (a stale text cache is refused where it is read).
    Returns what was built."""

    fmt = fmt or detect(data)                           # a clear DataError for a directory that is no dataset
    glove = glove or fmt.glove
    ds = DatasetDir(data)
    built = []
    for split in ("training", "validation", "testing"):
        if not ds.store(split).is_file() and fmt.has_source(Path(data), split):
            log(f"{ds.store(split)} not found: building the {split} feature store "
                f"(`python -m workbench build-store`)")
            build_store(data, split, ds.store(split), progress=True, fmt=fmt)
            built.append(str(ds.store(split)))
    if not ds.text_features.is_file():
        log(f"{ds.text_features} not found: building the text cache with the default encoder ({encoder}, GloVe "
            f"{glove}); for another encoder run `python -m workbench text-features --data {ds.root} --encoder NAME`")
        build_text_features(data, encoder=encoder, glove=glove, progress=True, fmt=fmt)
        built.append(str(ds.text_features))
    return built
