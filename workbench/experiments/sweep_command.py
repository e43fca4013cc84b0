"""``python -m workbench sweep``: the command line of grid sweeps (``experiments.sweep``) and world sweeps
(``experiments.world_sweep``), with the executor options both take."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config, MODEL_PRESETS, parse_sets
from .executor import ClusterOptions, EXECUTORS
from ..io import DataError
from ..sim.simulate import DEFAULT_WORLD, WORLDS
from .sweep import DEFAULT_SEEDS, GRIDS, GRID_SETS, sweep
from .world_sweep import AXES, CURVE_PRESETS, parse_axis, world_sweep


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grid", required=True, choices=sorted(GRIDS) + sorted(AXES), help="main: every implemented "
                   f"Table 1 row ({', '.join(GRIDS['main'])}); ablations: every Table 3 row; anet: every implemented "
                   "Table 2 row (an ActivityNet-Entities directory); generalization: every implemented Table 4 row (a "
                   "world simulated with --holdout K; GRID_SETS apply); context: the context-effect curve (one world "
                   "per ρ, see --data-root)")
    p.add_argument("--data", help="dataset directory (stores and text features built); every grid but context")
    p.add_argument("--out", required=True, help="sweep directory (finished runs in it are skipped)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override for every run (repeatable)")
    p.add_argument("--seeds", type=int, default=DEFAULT_SEEDS,
                   help=f"runs per preset, seeds s, s+1, ... (s = --set seed, default 0); default {DEFAULT_SEEDS}")
    p.add_argument("--presets", help="comma-separated presets instead of the grid's rows (the context grid: its "
                   "seven); the grid's own settings still apply")
    w = p.add_argument_group("world sweeps (--grid context, or any simulator knob with --axis)")
    w.add_argument("--data-root", help="directory holding one simulated world per axis value (created as needed)")
    w.add_argument("--axis", metavar="KNOB=V1,V2,...", help="vary this world v2 knob instead of the grid's axis")
    w.add_argument("--world", default=DEFAULT_WORLD, choices=WORLDS, help="simulator world of every world folder "
                   "(v2, the default; v3; v1: `simulate --world`)")
    w.add_argument("--world-preset", default="curve", help="simulator size of each world (curve | demo | smoke)")
    w.add_argument("--world-seed", type=int, default=0, help="simulator seed of every world")
    w.add_argument("--world-set", action="append", metavar="KNOB=VALUE", help="world knob held fixed (repeatable)")
    p.add_argument("--executor", default="inline", choices=EXECUTORS,
                   help="inline: in this process; local: submitit, one process per run on this machine; "
                        "slurm: submitit, one Slurm job array (see README, 'Sweeps on a Slurm cluster')")
    p.add_argument("--jobs", type=int, default=1, help="runs at once: inline, one per GPU (sequential without "
                   "GPUs); local, that many worker processes (one GPU each when there are GPUs)")
    r = p.add_mutually_exclusive_group()
    r.add_argument("--no-notebooks", action="store_true", help="run each run's training in the worker process "
                   "itself (train.run_preset), writing no 02_train.ipynb; same results, ~0.7 CPU s less per run and no "
                   "kernel start")
    r.add_argument("--process-per-run", action="store_true", help="one papermill process (and kernel) per run, "
                   "as before workers (default: each worker executes the notebooks in one kept kernel)")
    d = ClusterOptions()
    g = p.add_argument_group("submitit (local / slurm)")
    g.add_argument("--partition", default=d.partition, help="Slurm partition (default: the cluster's default)")
    g.add_argument("--gpus-per-run", type=int, default=d.gpus, help="GPUs per run (Slurm; default: 1 when --set "
                   "device=cuda or the partition has GPUs, else 0, so CPU partitions work as is; local: 0 = CPU, "
                   "default: one GPU each when the machine has GPUs)")
    g.add_argument("--cpus-per-run", type=int, default=d.cpus, help="CPUs per run (Slurm)")
    g.add_argument("--time-limit", type=int, default=d.time_min, metavar="MINUTES",
                   help="time limit per run; on Slurm a run past it is requeued and resumes from its checkpoint")
    g.add_argument("--array-parallelism", type=int, default=d.array_parallelism,
                   help="Slurm: array tasks running at once")
    g.add_argument("--units-per-task", type=int, default=d.units_per_task, metavar="K",
                   help="Slurm: runs per array task, run in turn by one worker (imports once, one kernel); its time "
                        "limit is K times --time-limit")
    g.add_argument("--mem", default=d.mem, help="Slurm: memory per run, e.g. 32G (default: the partition's)")
    g.add_argument("--account", default=d.account, help="Slurm account")
    g.add_argument("--qos", default=d.qos, help="Slurm quality of service")
    g.add_argument("--requeues", type=int, default=d.requeues, help="Slurm: requeues of a pre-empted / timed-out run")
    g.add_argument("--setup", action="append", default=[], metavar="SHELL_LINE",
                   help="Slurm: shell line run before each job, e.g. 'module load cuda' (repeatable)")


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    for k in ("gpus_per_run", "cpus_per_run", "time_limit", "array_parallelism", "requeues", "units_per_task"):
        if getattr(args, k) is not None and getattr(args, k) < (1 if k in ("time_limit", "array_parallelism",
                                                                            "cpus_per_run", "units_per_task") else 0):
            raise DataError(f"--{k.replace('_', '-')}: {getattr(args, k)} is out of range")
    return ClusterOptions(partition=args.partition, gpus=args.gpus_per_run, cpus=args.cpus_per_run,
                          time_min=args.time_limit, array_parallelism=args.array_parallelism,
                          units_per_task=args.units_per_task, mem=args.mem,
                          account=args.account, qos=args.qos, requeues=args.requeues, setup=list(args.setup))


def runs_mode(args: argparse.Namespace) -> str:
    """``worker.RUNS`` from ``--no-notebooks`` / ``--process-per-run`` (default: kernel)."""
    return "inline" if args.no_notebooks else "process" if args.process_per_run else "kernel"


def parse_presets(text: str) -> list[str]:
    """``--presets a,b``: the named presets (or random / upper-bound); an unknown or empty name is an error."""
    presets = [p.strip() for p in text.split(",")]
    unknown = [p for p in presets if p not in MODEL_PRESETS and p not in ("random", "upper-bound")]
    if unknown:
        raise DataError(f"--presets: unknown preset(s) {unknown}")
    twice = sorted({p for p in presets if presets.count(p) > 1})
    if twice:
        raise DataError(f"--presets: {twice} named twice (one run directory per preset and seed); name each once")
    return presets


def run(args: argparse.Namespace) -> int:
    sets = {**GRID_SETS.get(args.grid, {}), **parse_sets(args.set)}
    if "data" in sets:                                  # as train: the dataset is given once
        world = args.grid in AXES or args.axis
        if world or not args.data or Path(sets["data"]).resolve() != Path(args.data).resolve():
            raise DataError(f"--set data={sets['data']} contradicts " + ("--data-root (a world sweep trains on each "
                            "world of it)" if world else f"--data {args.data}") + "; give the dataset once"
                            + ("" if world else " (--data)"))
        del sets["data"]                                # the same dataset: it is the sweep's --data
    cfg = Config().replace(**sets)                      # unknown keys / bad values fail before any run
    overrides = {k: getattr(cfg, k) for k in sets}      # typed, as the notebook parameters record them
    if args.grid in AXES or args.axis:
        if not args.data_root:
            raise DataError(f"--grid {args.grid}: pass --data-root (one world per axis value is kept there)")
        knob, values = parse_axis(args.axis) if args.axis else AXES[args.grid]
        presets = parse_presets(args.presets) if args.presets else list(CURVE_PRESETS)
        world_sets = parse_sets(args.world_set)
        WORLDS[args.world].parse_sets(world_sets, where="--world-set")
        options = dict(jobs=args.jobs, executor=args.executor, options=cluster_options(args), runs=runs_mode(args))
        df = world_sweep(knob, values, presets, args.data_root, args.out, args.seeds, args.world_preset,
                         args.world_seed, world_sets, overrides, sweep_options=options, world=args.world)
        print((Path(args.out) / "results.md").read_text())
        return 1 if (df["status"] != "ok").any() else 0
    if not args.data:
        raise DataError(f"--grid {args.grid}: pass --data")
    presets = parse_presets(args.presets) if args.presets else GRIDS[args.grid]   # --presets: the grid's sets still apply
    df = sweep(presets, args.data, args.out, overrides, args.jobs, grid=args.grid, seeds=args.seeds,
               executor=args.executor, options=cluster_options(args), runs=runs_mode(args))
    print((Path(args.out) / "results.md").read_text())
    failed = df[df["status"].isin(["failed", "missing"])]    # not the paper's rows without a preset
    return 1 if len(failed) else 0
