"""Command line: ``python -m workbench COMMAND ...``.

Each command lives in the module named below; that module defines ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs, so ``--help``
and light commands start fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .io import DataError, describe_oserror

COMMANDS = {
    # name: (module, one-line help)
    "simulate": ("workbench.sim.simulate", "write a simulated YouCook2-BB dataset in the real layouts"),
    "generalization-world": ("workbench.experiments.generalization", "write the small held-out-class world of docs/GENERALIZATION.md"),
    "import": ("workbench.datasets.releases", "make a dataset directory from a public release as downloaded (ci, vog, gvd)"),
    "check-dataset": ("workbench.check", "is a dataset directory ready to train on (layout, box space, Upper Bound)"),
    "build-store": ("workbench.features.store", "convert per-segment region features into one HDF5 store per split"),
    "extract-objects": ("workbench.datasets.extract_objects", "find the queried objects (class ids) named in each sentence"),
    "text-features": ("workbench.features.text_cache", "compute and cache GloVe and contextual text features"),
    "evaluate": ("workbench.evaluate", "box and query accuracy of predictions against annotations"),
    "baseline": ("workbench.baselines", "write Random or Upper-Bound predictions from a dataset's proposals"),
    "train": ("workbench.train", "train a preset; resumes an existing run directory"),
    "predict": ("workbench.predict", "top-1 proposal per (object, frame) of a trained run"),
    "bench": ("workbench.bench", "time training steps of a preset"),
    "bench-public": ("workbench.experiments.public_stvg", "time the public STVG code's training step against ours, in one process"),
    "sweep": ("workbench.experiments.sweep_command", "run a grid of presets through the training notebook with papermill"),
    "throughput": ("workbench.experiments.throughput", "runs per core-hour of a sweep: one process per run vs persistent workers"),
    "study": ("workbench.experiments.study", "train named variants (preset + overrides) over seeds in-process; paired Δ"),
    "figures": ("workbench.report.figures", "write the paper figures of a sweep (PNG, PDF, HTML + provenance)"),
    "gpu-check": ("workbench.experiments.gpu_check", "the GPU check: bench, a YouCook2-size epoch, CUDA graphs, the main sweep; one JSON report"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        # Arguments are added lazily in main() for the chosen command only.
    return parser


def _debug(argv: list[str]) -> tuple[bool, list[str]]:
    """``--debug`` anywhere on the command line (removed from it) or WORKBENCH_DEBUG=1."""
    flag = "--debug" in argv
    env = os.environ.get("WORKBENCH_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")
    return flag or env, [a for a in argv if a != "--debug"]


def user_error(e: BaseException) -> str | None:
    """The one-line message of an error caused by the user's input or environment, else None.

    The only place that turns DataError / OSError (and a diverged run) into a CLI message."""
    if isinstance(e, DataError):
        return str(e)
    if isinstance(e, OSError):
        return describe_oserror(e)
    if isinstance(e, FloatingPointError):
        return f"{e} (lower lr or check the inputs)"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command; user errors print ``error: ...`` on one line and return 2 (the traceback
    only with ``--debug`` or WORKBENCH_DEBUG=1)."""
    argv = sys.argv[1:] if argv is None else argv
    debug, argv = _debug(list(argv))
    parser = build_parser()
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module = importlib.import_module(COMMANDS[name][0])
        p = argparse.ArgumentParser(prog=f"python -m workbench {name}", description=COMMANDS[name][1])
        module.add_arguments(p)
        p.add_argument("--debug", action="store_true", help="show the traceback of an error (or WORKBENCH_DEBUG=1)")
        args = p.parse_args(argv[1:])
        try:
            return int(module.run(args) or 0)
        except (DataError, OSError, FloatingPointError) as e:
            if debug:
                raise
            print(f"error: {user_error(e)}", file=sys.stderr)
            return 2
    parser.parse_args(argv)  # prints help / the usage error
    return 2


if __name__ == "__main__":
    sys.exit(main())
