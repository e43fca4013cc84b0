"""File helpers shared by every module: atomic writes, strict JSON/pickle readers, errors.

Every file the workbench writes goes through ``atomic_path``: data is written to a temporary
name in the same directory and renamed over the final name only when complete, so an
interrupted write never leaves a half file under the final name.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import io
import json
import os
import pickle
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


class DataError(ValueError):
    """Bad input data. The message names the file, segment or key and what was expected."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:        # exists, owned by someone else
        return True
    return True


# Temporary names of atomic_path: .<final name>.<pid>.<random>.tmp<suffix>
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.tmp(?P<suffix>.*)$")
_QUIET_S = 60         # a dead writer's temp file is removed once untouched this long
_OLD_TMP_AGE_S = 3600  # temp files of the pid-less naming (older workbench versions) older than this are stale


def clean_stale_temps(final: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``atomic_path`` for ``final`` left by a process that no longer
    runs on this host (e.g. killed with SIGKILL). Returns the removed paths.

    A temp file whose writer is alive (or that changed in the last minute) is kept; one without
    a pid in its name (older versions) is removed once it is an hour old.
    """
    final = Path(final)
    removed = []
    try:
        candidates = list(final.parent.glob(f".{glob.escape(final.name)}.*.tmp*"))
    except OSError:
        return removed
    for p in candidates:
        m = _TMP.match(p.name)
        try:
            if m and m.group("name") == final.name:
                # dead writer, and quiet for a minute (a writer on another host sharing the folder
                # has another pid namespace but keeps touching its file)
                stale = not _pid_alive(int(m.group("pid"))) and time.time() - p.stat().st_mtime > _QUIET_S
            else:
                stale = time.time() - p.stat().st_mtime > _OLD_TMP_AGE_S
            if stale:
                p.unlink()
                removed.append(p)
        except OSError:
            continue
    return removed


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` if the block succeeds.

    ``suffix`` keeps the extension for libraries that look at it (``.npy``, ``.h5``). Stale
    temporary files of ``final`` from a killed writer are removed first.
    """
    final = Path(final)
    if final.is_dir():
        raise DataError(f"{final}: is a directory; expected a file path")
    final.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=f".tmp{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the final file the usual mode
    try:
        try:
            yield tmp
        except OSError as e:
            if e.filename in (str(tmp), tmp):       # name the file the user asked for, not our temp name
                raise type(e)(e.errno, e.strerror, str(final)) from e
            raise
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def describe_oserror(e: OSError) -> str:
    """One line naming the file and the reason of an OSError (for the CLI)."""
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    reason = e.strerror or str(e)
    hint = {errno.ENOSPC: " (disk full: free space or choose another --out)",
            errno.EACCES: " (no permission: choose a writable location)",
            errno.EROFS: " (read-only file system: choose a writable location)",
            errno.EISDIR: " (a directory is in the way: give a file path)",
            errno.EEXIST: " (a file is in the way of a folder)",
            errno.ENOTDIR: " (a file is in the way of a folder)"}.get(e.errno or 0, "")
    return f"{' -> '.join(names) or 'file system'}: {reason}{hint}"


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=indent)
            f.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or malformed file raises DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def expect(cond: bool, where: str, what: str) -> None:
    """Raise DataError(f"{where}: {what}") unless ``cond``."""
    if not cond:
        raise DataError(f"{where}: {what}")


class _BuiltinsOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_builtin_pickle(path: str | os.PathLike) -> Any:
    """Load a pickle that may hold only builtin containers and scalars (no globals at all).

    Used for NAFAE's ``*_entities.pkl``; anything that would construct an object is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    try:
        return _BuiltinsOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{path}: not a plain-builtin pickle ({e})") from None


class SegmentIndex:
    """Segment-id lookup shared by the readers of per-split HDF5 files (feature store, text cache).

    Subclasses set ``path`` and call ``_set_ids``; ``what`` names the file kind in errors.
    """

    path: Path
    what = "file"

    def _set_ids(self, ids) -> None:
        self.seg_ids: list[str] = [s.decode() if isinstance(s, bytes) else str(s) for s in ids]
        self._index = {k: i for i, k in enumerate(self.seg_ids)}

    def __len__(self) -> int:
        return len(self.seg_ids)

    def __contains__(self, seg_id: str) -> bool:
        return seg_id in self._index

    def index(self, seg_id: str) -> int:
        """Row of ``seg_id``; DataError naming the file when it is absent."""
        i = self._index.get(seg_id)
        if i is None:
            raise DataError(f"{self.path}: segment {seg_id} is not in the {self.what}")
        return i
