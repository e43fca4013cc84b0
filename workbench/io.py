"""File helpers shared by every module: atomic writes, strict JSON/pickle readers, errors.

Every file the workbench writes goes through ``atomic_path``: data is written to a temporary
name in the same directory and renamed over the final name only when complete, so an
interrupted write never leaves a half file under the final name.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import io
import json
import math
import os
import pickle
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


from .errors import DataError  # noqa: F401  (every module imports it from here or from errors)


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


class _Duplicated(dict):
    """A parsed JSON object that named ``duplicate`` more than once (found by ``loads_json``)."""

    duplicate: str = ""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    """``object_pairs_hook`` of the strict reader: marks an object that names a key twice (the standard
    reader keeps the last copy silently: a GT segment or a prediction would be replaced)."""
    d = dict(pairs)
    if len(d) == len(pairs):
        return d
    seen: set[str] = set()
    out = _Duplicated(d)
    for k, _ in pairs:
        if k in seen:
            out.duplicate = k
            break
        seen.add(k)
    return out


def _find_duplicate(x: Any, path: tuple = ()) -> tuple[tuple, str] | None:
    """(path, key) of the first object marked by ``_unique_keys`` (depth first)."""
    if isinstance(x, _Duplicated):
        return path, x.duplicate
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for k, v in items:
        if isinstance(v, (dict, list)):
            found = _find_duplicate(v, path + (k,))
            if found:
                return found
    return None


def loads_json(text: str, where: str) -> Any:
    """Parse JSON text strictly: malformed text, or a key named twice in one object, raises DataError naming
    ``where`` (the file, or the file and line), the key and where the object is (``database.V.segments``)."""
    dups = 0

    def hook(pairs):
        nonlocal dups
        d = _unique_keys(pairs)
        dups += isinstance(d, _Duplicated)
        return d
    try:
        value = json.loads(text, object_pairs_hook=hook)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e})") from None
    if dups:
        path, key = _find_duplicate(value)
        at = ".".join(str(k) for k in path)
        raise DataError(f"{where}: duplicate key {key!r} in {'object ' + repr(at) if at else 'the top-level object'} "
                        "(a JSON reader would keep only the last copy); remove or rename one")
    return value


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file strictly (``loads_json``): a missing or malformed file, or a key named twice in one
    object, raises DataError naming the file (and the key). The one JSON reader of the workbench."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not valid JSON (not UTF-8 text: {e.reason})") from None
    return loads_json(text, str(path))


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Read a JSON-lines file (one JSON value per line; blank lines skipped); a bad line raises DataError
    naming the file and the line number. A missing file is an empty list."""
    path = Path(path)
    if not path.is_file():
        return []
    return [loads_json(line, f"{path}:{n}") for n, line in enumerate(path.read_text().splitlines(), 1)
            if line.strip()]


def check_output_path(out: str | os.PathLike, inputs: tuple = (), dirs: tuple = (), flag: str = "--out") -> None:
    """Outputs never land on inputs: refuse ``out`` when it is (the same file as) one of ``inputs`` or an
    existing file inside one of the input directories ``dirs`` (a dataset directory: the workbench cannot
    tell its annotations from an older output, so it writes over none of them). DataError naming both."""
    out = Path(out)
    if not out.exists():
        return
    for p in inputs:
        p = Path(p)
        try:
            same = p.exists() and os.path.samefile(out, p)
        except OSError:
            same = False
        if same:
            raise DataError(f"{out}: is an input of this command ({p}); outputs never overwrite inputs: "
                            f"choose another {flag}")
    if out.is_file():
        real = out.resolve()                            # a link is judged by the file it points at
        shown = f"{out} (-> {real})" if real != out.absolute() else str(out)
        for d in dirs:
            d = Path(d).resolve()
            if d in real.parents:
                raise DataError(f"{shown}: an existing file of the input directory {d}; the workbench never writes "
                                f"over a dataset's files: choose a {flag} outside it (or a new file name)")


def is_percentage(x: Any) -> bool:
    """A JSON / CSV accuracy: a finite real number (not a bool) in [0, 100] (metrics.json, results.csv)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and 0 <= x <= 100


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


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
