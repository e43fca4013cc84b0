"""SCL workbench: weakly-supervised video object grounding with Stable Context Learning.

The package holds all model and data code; notebooks and the CLI (``python -m workbench``)
only call it. See README.md for the two commands that run everything.

Public API (what notebooks import; ``from workbench import run_preset, load_run, ...``): the
names of ``__all__``, each loaded from its module on first use so that ``import workbench``
stays cheap and imports nothing else.
"""

import importlib
import os as _os

# OpenMP threads that spin while waiting made CPU training steps up to 9x slower whenever
# another process shared the cores (measured: stvg step 1.82 s -> 0.21 s on 2 cores, see
# docs/DECISIONS.md). Passive waiting costs nothing measurable on an idle machine. Must be set
# before torch loads its OpenMP runtime; an explicit user setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Freed memory stays in the process (glibc), so CPU steps stop page-faulting their large tensors
# back in (-3 to -5 % CPU per research-size run); SCL_WORKBENCH_MALLOC=system keeps glibc's
# defaults. See workbench/allocator.py.
from . import allocator as _allocator  # noqa: E402

_allocator.configure()

__version__ = "0.1.0"

# public name -> module (relative to this package) that defines it
_API = {
    # configuration and registries
    "Config": "config", "MODEL_PRESETS": "config", "preset": "config",
    "MODELS": "model", "build_model": "model",
    "FORMATS": "datasets",
    # data
    "DataError": "io", "DatasetDir": "datasets.yc2", "load_class_file": "datasets.yc2", "load_sentences": "datasets.yc2",
    "load_glove": "text.glove", "Workspace": "workspace",   # prepare: `from workbench.prepare import prepare` (the module has its name)
    # runs
    "RunDir": "run", "BASELINES": "train", "config_for": "train", "run_preset": "train",
    "load_run": "predict", "predict_boxes": "predict", "ground_segment": "predict", "concepts": "predict",
    # results
    "METRICS": "evaluate", "RULES": "evaluate", "evaluate_boxes": "evaluate", "paper_numbers": "report.paper",
    "provenance": "report.figures", "save_figures": "report.figures",
}
# namespaces for notebooks: ``from workbench import viz`` -> workbench.report.viz
_SUBMODULES = {"notebook": "notebook", "viz": "report.viz", "sweep": "experiments.sweep", "results": "report.results",
               "worlds": "experiments.world_sweep"}

__all__ = sorted([*_API, *_SUBMODULES])


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{_SUBMODULES[name]}", __name__)
    else:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    globals()[name] = value
    return value
