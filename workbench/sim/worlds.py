"""The YouCook2 worlds ``simulate`` writes, by name (``--world``): each one's generator version, knobs, builder and
``--set`` parser, and how a dataset.json's recorded knobs read back. Below the driver and the oracles, so that
every reader of a world (``simulate``, ``oracles.teacher_looks``, world sweeps) builds it the same way."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import v1, v3
from ..datasets.yc2 import load_class_file
from .knobs import ADDED_LATER, WorldKnobs, parse_world_sets
from ..paths import CLASS_FILE
from .stats import parsed_corpus, real_statistics
from .v2 import GENERATOR_VERSION_V2, WorldV2


@dataclass(frozen=True)
class WorldVersion:
    """A YouCook2 world ``simulate`` writes. Its world object has ``segment(plan)`` -> (SegmentSim, truth or
    None) and ``meta()`` -> what dataset.json records of it beyond its knobs."""

    generator_version: str
    knobs: type                       # its knobs' frozen dataclass (``knobs()``: the defaults; ``to_dict()``)
    build: Callable                   # (seed, feature_dim, knobs, data_dir) -> the world
    parse_sets: Callable              # `--set KNOB=VALUE` strings -> knobs
    truth: bool                       # records world_truth.json and the oracles' world_stats.json


def _build_v1(seed: int, dim: int, knobs: v1.Knobs, data_dir: Path) -> v1.World:
    return v1.World(seed, dim, knobs, load_class_file(data_dir / CLASS_FILE).forms)


def _build_v2(seed: int, dim: int, knobs: WorldKnobs, data_dir: Path) -> WorldV2:
    return WorldV2(seed, dim, knobs, load_class_file(data_dir / CLASS_FILE), real_statistics(data_dir),
                   parsed_corpus(data_dir))


WORLDS = {
    "v1": WorldVersion(v1.GENERATOR_VERSION, v1.Knobs, _build_v1, v1.parse_sets, truth=False),
    "v2": WorldVersion(GENERATOR_VERSION_V2, WorldKnobs, _build_v2, parse_world_sets, truth=True),
    "v3": WorldVersion(v3.GENERATOR_VERSION_V3, v3.WorldKnobsV3, v3.build, v3.parse_sets, truth=True),
}
DEFAULT_WORLD = "v2"


def make_world(world: str, seed: int, dim: int, knobs, data_dir: Path):
    """The appearance world of ``world`` (a name of WORLDS) with ``knobs`` (None: that world's defaults)."""
    version = WORLDS[world]
    return version.build(seed, dim, knobs or version.knobs(), Path(data_dir))


def recorded_knobs(meta: dict) -> dict:
    """The knobs a dataset.json records (``meta``), as a dict; a world v2 written before a knob existed has that
    knob's neutral value (``knobs.ADDED_LATER``)."""
    recorded = dict(meta.get("knobs") or {})
    if meta.get("world") == "v2":
        recorded = {**ADDED_LATER, **recorded}
    return recorded
