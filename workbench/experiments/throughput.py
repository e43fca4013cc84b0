"""``python -m workbench throughput``: runs per core-hour of a sweep, one process per run (``--process-per-run``:
papermill and a kernel per run, the path before workers) against a persistent worker (a kept kernel; or
``run_preset`` in the worker, ``--no-notebooks``), at the ablation grid's run size and at the context curve's.

Each measurement is ``python -m workbench sweep --executor inline`` in a child process; its CPU time (user +
system of the child and of every process it waited for: papermill, kernels) comes from ``getrusage``. The same
command once more, every run then finished and skipped, measures what a sweep costs besides its runs (imports,
the dataset checks, the tables); it is subtracted: CPU per run = (sweep - skipped sweep) / runs. A worker's
kernel start is a cost of its runs (amortized over ``--seeds`` x presets runs here; over more in a real grid).
CPU time, not wall time: other jobs on the machine matter less (they still slow a core's caches). The runs of
every mode are compared, metrics.json and log.jsonl byte for byte but for wall-clock seconds. ``--repeats R``
measures every mode once per round, R rounds, so that a ratio pairs measurements minutes apart (the load of a
shared machine drifts over the half hour a sweep of every mode takes).

OUT/<size>-<mode>/          the sweep folders
OUT/throughput.json         every measurement, the machine, the load average before and after
OUT/throughput.md           the table: CPU s per run, runs per core-hour, speed-up over one process per run
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from ..io import DataError, write_json, write_text
from ..paths import REPO
from ..precision import resolve
from ..prepare import fill_missing
from .sweep import unit_dir

# The ablation grid's run (docs/DECISIONS.md: 960 training / 300 eval segments, batch 16, embed 128, 10 epochs, one
# thread) and the context curve's (the same run, 3 epochs).
GRID_RUN = {"max_train_segments": 960, "max_eval_segments": 300, "batch_size": 16, "lr": 1e-3, "embed_dim": 128,
            "threads": 1}
SIZES = {"grid": {**GRID_RUN, "epochs": 10}, "curve": {**GRID_RUN, "epochs": 3}}
MODES = {"process": ["--process-per-run"], "kernel": [], "inline": ["--no-notebooks"]}   # process: before workers
BEFORE = "before"   # --before CHECKOUT: that checkout's own sweep, default flags (e.g. the code before workers and
                    # the fixed-cost cuts: its sweep ran one papermill process per run)
WALL = re.compile(r'("(?:train_)?seconds": )[-+.0-9eE]+')


def child_cpu(cmd: list[str], code: Path = REPO) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, exit status) of ``cmd`` run with the package of checkout ``code`` and every
    process it waited for."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    rc = subprocess.run(cmd, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, time.time() - t0, rc


def sweep_cmd(data: Path, out: Path, presets: list[str], seeds: int, size: str, mode: str) -> list[str]:
    sets = [a for k, v in SIZES[size].items() for a in ("--set", f"{k}={v}")]
    return [sys.executable, "-m", "workbench", "sweep", "--grid", "ablations", "--presets", ",".join(presets),
            "--data", str(data), "--out", str(out), "--seeds", str(seeds), "--executor", "inline", *sets,
            *MODES.get(mode, [])]


def measure(data: Path, out: Path, presets: list[str], seeds: int, size: str, mode: str,
            log=print, code: Path = REPO) -> dict:
    """One sweep of ``presets`` x ``seeds`` at ``size`` in ``mode`` from scratch, then again (all skipped);
    ``code``: the checkout whose package runs it (another one for the ``before`` mode)."""
    folder = out / f"{size}-{mode}"
    shutil.rmtree(folder, ignore_errors=True)
    cmd = sweep_cmd(data, folder, presets, seeds, size, mode)
    cpu, wall, rc = child_cpu(cmd, code)
    if rc != 0:
        raise DataError(f"throughput: `{' '.join(cmd)}` in {code} failed (exit {rc}); see {folder}")
    fixed, fixed_wall, _ = child_cpu(cmd, code)
    runs = len(presets) * seeds
    per_run = (cpu - fixed) / runs
    row = {"size": size, "mode": mode, "runs": runs, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
           "fixed_cpu_s": round(fixed, 1), "cpu_s_per_run": round(per_run, 2),
           "runs_per_core_hour": round(3600 / per_run, 1), "command": " ".join(cmd), "code": str(code)}
    log(f"throughput: {size} {mode}: {row['cpu_s_per_run']} CPU s per run ({runs} runs, sweep {row['cpu_s']} s, "
        f"fixed {row['fixed_cpu_s']} s, wall {row['wall_s']} s)")
    return row


def records(folder: Path, presets: list[str], seeds: int) -> dict:
    """Every run's metrics.json and log.jsonl, wall-clock seconds blanked."""
    return {(p, s): [WALL.sub(r"\1_", (unit_dir(folder, p, s) / "run" / f).read_text())
                     for f in ("metrics.json", "log.jsonl")] for p in presets for s in range(seeds)}


def _per_run(row: dict) -> list[float]:
    """CPU s per run of each round of a row (``--repeats``); a row of one measurement has one."""
    return row.get("rounds") or [row["cpu_s_per_run"]]


def _ratio(base: dict, row: dict) -> str:
    """base / row: one ratio, or with several rounds the median of the rounds' paired ratios and their range
    (each round measures every mode once, in turn, so a ratio pairs measurements minutes apart)."""
    pairs = sorted(b / r for b, r in zip(_per_run(base), _per_run(row)))
    if len(pairs) == 1:
        return f"{pairs[0]:.2f}x"
    return f"{statistics.median(pairs):.2f}x ({pairs[0]:.2f}-{pairs[-1]:.2f})"


def aggregate(size: str, mode: str, rounds: list[dict]) -> dict:
    """One row of ``--repeats`` measurements of a mode: the median CPU s per run, and every round's."""
    per_run = [r["cpu_s_per_run"] for r in rounds]
    med = statistics.median(per_run)
    return {**rounds[-1], "size": size, "mode": mode, "cpu_s_per_run": round(med, 2),
            "runs_per_core_hour": round(3600 / med, 1), "rounds": per_run,
            "cpu_s": [r["cpu_s"] for r in rounds], "wall_s": [r["wall_s"] for r in rounds],
            "fixed_cpu_s": [r["fixed_cpu_s"] for r in rounds]}


def markdown(rows: list[dict], same: dict[str, bool], load: tuple) -> str:
    bases = [m for m in (BEFORE, "process") if any(r["mode"] == m for r in rows)]
    repeated = any(len(_per_run(r)) > 1 for r in rows)
    lines = ["| size | mode | runs | CPU s / run | " + "range | " * repeated + "runs / core-hour | "
             + " | ".join(f"vs {m}" for m in bases) + " | results |",
             "|---|---|---|---|---|" + "---|" * repeated + "---|" * len(bases) + "---|"]
    for r in rows:
        ratios = [_ratio(next(b for b in rows if b["size"] == r["size"] and b["mode"] == m), r) for m in bases]
        spread = f"{min(_per_run(r)):.1f}-{max(_per_run(r)):.1f} | " if repeated else ""
        lines.append(f"| {r['size']} | {r['mode']} | {r['runs']} | {r['cpu_s_per_run']:.1f} | {spread}"
                     f"{r['runs_per_core_hour']:.0f} | {' | '.join(ratios)} | "
                     f"{'identical' if same.get(r['size'] + '-' + r['mode'], True) else 'DIFFER'} |")
    if repeated:
        lines.append(f"\nCPU s / run: the median of {max(len(_per_run(r)) for r in rows)} rounds (each round measures "
                     "every mode once, in the order of the table); a ratio is the median of the rounds' paired "
                     "ratios (range).")
    lines.append(f"\nload average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f}; {os.cpu_count()} CPUs")
    return "\n".join(lines) + "\n"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset directory (e.g. `simulate --preset demo --output store "
                   "--max-segments training=960 --max-segments validation=300 --max-segments testing=300`)")
    p.add_argument("--out", required=True, help="folder for the sweeps and the report")
    p.add_argument("--presets", default="stvg,scl", help="comma-separated presets of every sweep (default stvg,scl)")
    p.add_argument("--seeds", type=int, default=1, help="seeds per preset (runs per sweep: presets x seeds)")
    p.add_argument("--sizes", default="grid,curve", help=f"comma-separated, of {sorted(SIZES)}")
    p.add_argument("--modes", default="process,kernel,inline", help=f"comma-separated, of {list(MODES)} "
                   "(process: one papermill process per run, the path before workers; measured first)")
    p.add_argument("--repeats", type=int, default=1, help="rounds: each measures every mode once, in turn; the "
                   "table gives the median per mode and the median of the rounds' paired ratios, with their range "
                   "(default 1)")
    p.add_argument("--before", metavar="CHECKOUT", help="also measure the sweep of another checkout of the workbench "
                   "with its default flags (mode `before`, measured first), e.g. `git worktree add /tmp/before "
                   "9168f94` for the code before the persistent workers and the fixed-cost cuts (issue 25)")


def run(args: argparse.Namespace) -> int:
    sizes, modes = args.sizes.split(","), args.modes.split(",")
    bad = [s for s in sizes if s not in SIZES] + [m for m in modes if m not in MODES]
    if bad or "process" not in modes:
        raise DataError(f"throughput: unknown size / mode {bad}, or no `process` mode to compare with")
    repeats = args.repeats
    if repeats < 1:
        raise DataError(f"throughput --repeats {repeats}: expected at least 1")
    before = Path(args.before).resolve() if args.before else None
    if before is not None and not (before / "workbench" / "__main__.py").is_file():
        raise DataError(f"throughput --before {args.before}: not a checkout of the workbench (no workbench/__main__.py)")
    data, out = Path(args.data).resolve(), Path(args.out)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    out.mkdir(parents=True, exist_ok=True)
    fill_missing(data)                                  # built here, not inside a measured sweep
    torch.set_num_threads(1)
    resolve("auto", "cpu")                              # dtype=auto at one thread: measured once, cached per machine
    load0 = os.getloadavg()
    rows, same = [], {}
    for size in sizes:
        order = [BEFORE] * (before is not None) + ["process", *[m for m in modes if m != "process"]]
        rounds: dict[str, list[dict]] = {m: [] for m in order}
        ref = None
        for _ in range(repeats):
            for mode in order:
                rounds[mode].append(measure(data, out, presets, args.seeds, size, mode,
                                            code=before if mode == BEFORE else REPO))
            ref = ref or records(out / f"{size}-process", presets, args.seeds)
            for mode in order:       # every round's runs against the first round's one-process-per-run runs
                same[f"{size}-{mode}"] = (same.get(f"{size}-{mode}", True)
                                          and records(out / f"{size}-{mode}", presets, args.seeds) == ref)
        rows += [rounds[m][0] if repeats == 1 else aggregate(size, m, rounds[m]) for m in order]
    load = (load0[0], os.getloadavg()[0])
    write_json(out / "throughput.json", {"rows": rows, "identical": same, "load_1min": load, "cpus": os.cpu_count(),
                                         "presets": presets, "seeds": args.seeds, "repeats": repeats,
                                         "sizes": SIZES,
                                         "before": str(before) if before else None}, indent=2)
    text = markdown(rows, same, load)
    write_text(out / "throughput.md", text)
    print(text)
    return 0 if all(same.values()) else 1
