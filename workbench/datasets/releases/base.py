"""What every release importer shares: the ``Release`` record, links, store builds stamped with the release,
and ``dataset.json`` (written last: it marks a finished import)."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...features.store import build_store, store_is_current
from ...io import DataError, expect, read_json, write_json
from ...paths import DATASET_META, STORE_DIR


@dataclass(frozen=True)
class Release:
    name: str                                   # the import subcommand
    title: str                                  # how the docs name it
    recognise: Callable[[Path], bool]           # does a folder hold this release as downloaded
    importer: Callable | None                   # (src, out, log, num_proposals) -> {"files": {...}, ...}; None: no import
    advice: str = ""                            # what to do when there is no importer

    def how_to_import(self, src: Path) -> str:
        if self.importer is None:
            return self.advice
        return f"import it with `python -m workbench import {self.name} {src} --out DIR`, then check DIR"


# --- helpers the importers share ------------------------------------------------------------------

def link(target: Path, out: Path, name: str, files: dict) -> None:
    """Symlink ``out/name`` -> ``target`` (absolute), kept when it already points there; recorded in ``files``."""
    target = Path(target).resolve()
    expect(target.exists(), str(target), "not found (the release is incomplete?)")
    at = out / name
    if at.is_symlink() and Path(os.readlink(at)) == target:
        pass
    elif at.exists() or at.is_symlink():
        raise DataError(f"{at}: exists and is not a link to {target}; remove it or import into a new --out")
    else:
        at.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, at)
    files[name] = str(target)


def store_done(path: Path, source_root: str, release: str) -> bool:
    """A store built by a previous run of the same import (resumable)."""
    # h5py only where a store is opened
    import h5py


    if not path.is_file() or not store_is_current(path):
        return False
    with h5py.File(path, "r") as f:
        return str(f.attrs.get("import_source", "")) == source_root and str(f.attrs.get("import_release", "")) == release


def build(out: Path, split: str, source, release: str, src: Path, log, num_proposals: int) -> dict:
    """Build (or keep) ``out/store/<split>.h5`` from a release's Source, stamped with the release and its source."""
    # h5py only where a store is opened
    import h5py


    path = out / STORE_DIR / f"{split}.h5"
    if store_done(path, str(src.resolve()), release):
        log(f"import: {path} already built from {src} (kept)")
        return {"store": str(path), "kept": True}
    log(f"import: building {path} from {source.root} ({len(source.segments)} segments, boxes {source.box_space})")
    summary = build_store(out, split, path, num_proposals=num_proposals, progress=True, source=source)
    with h5py.File(path, "r+") as f:          # the index digest covers datasets only: attributes may be added
        f.attrs["import_release"] = release
        f.attrs["import_source"] = str(src.resolve())
        f.attrs["source_release"] = release
    return summary


def start(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / ".workbench-import").write_text("an import into this directory is in progress or done\n")
    meta = out / DATASET_META
    if meta.is_file():
        raw = read_json(meta)
        expect(isinstance(raw, dict) and isinstance(raw.get("release"), dict), str(meta),
               "exists and was not written by `import`; import into a new --out")


def finish(out: Path, release: str, src: Path, files: dict, extra: dict) -> None:
    write_json(out / DATASET_META, {"dataset": extra.pop("dataset", "youcook2-bb"), "simulated": False,
                                    "release": {"name": release, "source": str(src.resolve()), "files": files,
                                                "imported": time.strftime("%Y-%m-%dT%H:%M:%S"), **extra}}, indent=2)
