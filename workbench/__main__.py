"""Command line: ``python -m workbench COMMAND ...``.

Each command lives in the module named below; that module defines ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs, so ``--help``
and light commands start fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .io import DataError

COMMANDS = {
    # name: (module, one-line help)
    "simulate": ("workbench.data.simulator", "write a simulated YouCook2-BB dataset in the real layouts"),
    "build-store": ("workbench.data.store", "convert per-segment region features into one HDF5 store per split"),
    "extract-objects": ("workbench.text.objects", "find the queried objects (class ids) named in each sentence"),
    "text-features": ("workbench.text.cache", "compute and cache GloVe and contextual text features"),
    "evaluate": ("workbench.evaluate", "box and query accuracy of predictions against annotations"),
    "baseline": ("workbench.baselines", "write Random or Upper-Bound predictions from a dataset's proposals"),
    "train": ("workbench.train", "train a preset; resumes an existing run directory"),
    "predict": ("workbench.predict", "top-1 proposal per (object, frame) of a trained run"),
    "bench": ("workbench.bench", "time training steps of a preset"),
    "sweep": ("workbench.sweep", "run a grid of presets through the training notebook with papermill"),
    "figures": ("workbench.figures", "write the paper figures of a sweep (PNG, PDF, HTML + provenance)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        # Arguments are added lazily in main() for the chosen command only.
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module = importlib.import_module(COMMANDS[name][0])
        p = argparse.ArgumentParser(prog=f"python -m workbench {name}", description=COMMANDS[name][1])
        module.add_arguments(p)
        args = p.parse_args(argv[1:])
        try:
            return int(module.run(args) or 0)
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    parser.parse_args(argv)  # prints help / the usage error
    return 2


if __name__ == "__main__":
    sys.exit(main())
