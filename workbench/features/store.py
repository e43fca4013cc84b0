"""The HDF5 feature store: one file per split holding every segment's region features and
proposal boxes, so training reads the sampled frames of a batch without touching thousands of
per-segment .npy files (the bottleneck of the public code).

Layout (see docs/ARCHITECTURE.md): /features float16 [F, N, D] chunked one frame per chunk,
/boxes float32 [F, N, 4] in annotation pixel space, /seg_ids, /frame_offset, /frame_count,
/frame_crc uint32 [F, 2] (CRC-32 of each frame's feature and box bytes) and the attribute
index_sha256 (digest of the index datasets). Opening a store checks the index (digest and
offset == cumsum(count)); each frame's checksum is verified the first time it is read.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import zlib
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..datasets import detect
from ..datasets.base import BOX_CONVENTION, BOX_SPACE_224, BOX_SPACE_ANNOTATION, SourceSegment
from ..datasets.yc2 import DatasetDir, check_split
from ..io import DataError, SegmentIndex, atomic_path, expect, file_sha256, read_json
from ..paths import DATASET_META

FORMAT_VERSION = 2  # 2: /frame_crc and index_sha256 (integrity checks)


def _validate(seg: SourceSegment, feats: np.ndarray, boxes: np.ndarray, num_proposals: int, dim: int | None,
              feature_dtype: str = "float16") -> None:
    k = f"segment {seg.key}"
    expect(feats.ndim == 3, k, f"features must be (T, P, D), got shape {feats.shape}")
    expect(boxes.ndim == 3 and boxes.shape[2] == 4, k, f"boxes must be (T, P, 4), got shape {boxes.shape}")
    T, P, D = feats.shape
    expect(T > 0, k, "no frames")
    expect(boxes.shape[0] == T, k, f"features have {T} frames but boxes have {boxes.shape[0]} (short file?)")
    expect(P >= num_proposals, k, f"{P} proposals per frame, fewer than the configured N={num_proposals}")
    expect(boxes.shape[1] >= num_proposals, k, f"{boxes.shape[1]} proposal boxes, fewer than N={num_proposals}")
    expect(dim is None or D == dim, k, f"feature dimension {D} differs from the first segment's {dim}")
    if seg.expected_frames is not None:
        expect(T == seg.expected_frames, k, f"{T} feature frames but the annotation has {seg.expected_frames}")
    expect(bool(np.isfinite(feats).all()), k, "non-finite values in the region features")
    if feature_dtype == "float16":
        big = float(np.abs(feats[:, :num_proposals]).max())
        expect(big <= float(np.finfo(np.float16).max), k, f"feature magnitude {big:g} overflows float16 (use --dtype float32)")
    b = boxes[:, :num_proposals]
    expect(bool(np.isfinite(b).all()), k, "non-finite values in the proposal boxes")
    w, h = seg.frame_size
    tol = 1.0
    inside = (b[..., 0] >= -tol) & (b[..., 1] >= -tol) & (b[..., 2] <= w + tol) & (b[..., 3] <= h + tol)
    ordered = (b[..., 2] >= b[..., 0]) & (b[..., 3] >= b[..., 1])
    if not (inside & ordered).all():
        t, n = np.argwhere(~(inside & ordered))[0]
        raise DataError(f"{k}: proposal box {b[t, n].tolist()} of frame {t} lies outside the {w:g}x{h:g} frame "
                        f"or has x2<x1 / y2<y1")


def build_store(root: str | Path, split: str, out: str | Path, num_proposals: int = 20,
                feature_dtype: str = "float16", progress: bool = True, source=None, fmt=None) -> dict:
    """Convert the split's region features under ``root`` into one HDF5 store at ``out``.

    Validates every segment while converting and raises DataError naming the first bad one.
    Returns a summary dict (segments, frames, feature_dim, bytes, seconds). ``fmt``: the directory's format
    (detected when not given).
    """
    # progress bars only in the long commands
    from tqdm.auto import tqdm

    t0 = time.time()
    root, split = Path(root), check_split(split)
    if isinstance(num_proposals, bool) or not isinstance(num_proposals, (int, np.integer)) or num_proposals < 1:
        raise DataError(f"build-store: --num-proposals must be an integer >= 1, got {num_proposals!r}")
    src = (fmt or detect(root)).source(root, split) if source is None else source   # importers pass a release's own Source
    if src.notes and progress:
        print(f"build-store: {src.notes}", file=sys.stderr)
    # Pass 1: shapes only (memory-mapped headers), to size the datasets.
    counts, dim = [], None
    for seg in src.segments:
        (fshape, bshape) = seg.shapes()
        k = f"segment {seg.key}"
        expect(len(fshape) == 3, k, f"features must be (T, P, D), got shape {fshape}")
        T, P, D = fshape
        expect(T > 0, k, "no frames")
        expect(P >= num_proposals, k, f"{P} proposals per frame, fewer than the configured N={num_proposals}")
        expect(dim is None or D == dim, k, f"feature dimension {D} differs from the first segment's {dim}")
        if bshape is not None:
            expect(len(bshape) == 3 and bshape[0] == T, k,
                   f"features have {T} frames but the boxes file has shape {bshape} (short file?)")
        if seg.expected_frames is not None:
            expect(T == seg.expected_frames, k, f"{T} feature frames but the annotation has {seg.expected_frames}")
        dim = D if dim is None else dim
        counts.append(T)
    counts = np.asarray(counts, dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    F, N = int(counts.sum()), num_proposals
    with atomic_path(out, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            fd = f.create_dataset("features", (F, N, dim), dtype=feature_dtype, chunks=(1, N, dim))
            bd = f.create_dataset("boxes", (F, N, 4), dtype="float32", chunks=(min(F, 256), N, 4))
            f.create_dataset("seg_ids", data=np.array([s.key for s in src.segments], dtype=h5py.string_dtype()))
            f.create_dataset("frame_offset", data=offsets)
            f.create_dataset("frame_count", data=counts)
            crc = np.zeros((F, 2), np.uint32)
            it = zip(src.segments, offsets, counts)
            for seg, off, T in tqdm(it, total=len(counts), desc=f"build-store {split}", disable=not progress):
                feats, boxes = seg.load()
                _validate(seg, feats, boxes, N, dim, feature_dtype)
                expect(feats.shape[0] == T, f"segment {seg.key}", "file changed while converting")
                x = np.ascontiguousarray(feats[:, :N].astype(feature_dtype))
                fd[off:off + T] = x
                sx, sy = seg.scale
                b = np.ascontiguousarray(boxes[:, :N].astype(np.float32) * np.array([sx, sy, sx, sy], np.float32))
                bd[off:off + T] = b
                crc[off:off + T] = [(zlib.crc32(x[t].tobytes()), zlib.crc32(b[t].tobytes())) for t in range(T)]
            f.create_dataset("frame_crc", data=crc)
            f.attrs["index_sha256"] = index_digest(f["seg_ids"][:], offsets, counts, crc)
            f.attrs.update(format_version=FORMAT_VERSION, split=split, source_layout=src.layout,
                           source_root=str(src.root.resolve()), feature_dim=dim, num_proposals=N,
                           feature_dtype=feature_dtype, workbench_version=__version__,
                           created=time.strftime("%Y-%m-%dT%H:%M:%S"), notes=src.notes,
                           box_space=src.box_space, box_convention=BOX_CONVENTION, box_source=src.box_source,
                           source_release=_release_of(root))
            world = dataset_identity(root)
            if world is not None:                # the world the store was built for (Workspace compares it)
                f.attrs["dataset_identity"] = world
            _stamp_annotations(f, Path(root), split)
    return dict(split=split, segments=len(counts), frames=F, feature_dim=int(dim), num_proposals=N,
                box_space=src.box_space, bytes=Path(out).stat().st_size, seconds=round(time.time() - t0, 2),
                out=str(out))


# What makes a simulated world: dataset.json's generator, its version, preset, seed and knobs.
WORLD_KEYS = ("generator", "generator_version", "preset", "seed", "knobs")


def dataset_identity(root: str | Path) -> str | None:
    """The identity of the world a dataset directory was generated as (canonical JSON of dataset.json's
    WORLD_KEYS), stamped into each store it builds; None for a dataset without a generator (an import)."""

    meta = Path(root) / DATASET_META
    try:
        raw = read_json(meta) if meta.is_file() else None
    except DataError:
        return None
    return world_identity(raw)


def world_identity(meta) -> str | None:
    """``dataset_identity`` of a dataset.json's content (None without a generator)."""
    if not isinstance(meta, dict) or not meta.get("generator"):
        return None
    return json.dumps({k: meta.get(k) for k in WORLD_KEYS}, sort_keys=True, default=str)


def stamp_world(store_dir: str | Path, meta: dict) -> None:
    """Stamp every finished store under ``store_dir`` with the world of ``meta`` and the annotation file of its
    split (a simulator writing its stores directly into ``<dataset>/store``, before its dataset.json exists;
    ``build-store`` stamps as it builds)."""
    identity = world_identity(meta)
    for path in sorted(Path(store_dir).glob("*.h5")) if identity else ():
        with h5py.File(path, "r+") as f:
            f.attrs["dataset_identity"] = identity
            _stamp_annotations(f, Path(store_dir).parent, path.stem)


# The sha256 of the split's box annotations the store was built beside: annotations of another world (same keys and
# frame counts) copied in later are refused by ``check_store_annotations`` instead of being scored.
ANNOTATIONS_ATTR = "annotations_sha256"


def _stamp_annotations(f: h5py.File, root: Path, split: str) -> None:
    ds = DatasetDir(root)
    if ds.has_annotations(split):
        f.attrs[ANNOTATIONS_ATTR] = file_sha256(ds.annotations(split))


def check_store_annotations(store: "FeatureStore", annotations: Path) -> None:
    """The annotation file is the one the store was built beside (its stamped sha256); stores built before the
    stamp existed are not checked."""
    want = store.stamp(ANNOTATIONS_ATTR)
    if want is None:
        return
    have = file_sha256(annotations)
    if have != want:
        raise DataError(f"{annotations}: not the annotation file the store {store.path} was built beside "
                        f"(sha256 {have[:12]}... here, {want[:12]}... recorded in the store): annotations of another "
                        "world or edited after the store was built; restore them or rebuild the store (`build-store`)")


def check_store_worlds(stores: dict[str, "FeatureStore"], root: Path) -> None:
    """Every store was built for the world dataset.json describes (the identity stamped when it was built,
    ``store.dataset_identity``): a store copied in from another world with the same segment keys is refused.
    Stores built before the stamp existed are accepted with a note; datasets without a generator are not checked."""

    here = dataset_identity(root)
    if here is None:
        return
    unstamped = []
    for split, st in stores.items():
        stamp = st.stamp("dataset_identity")
        if stamp is None:
            unstamped.append(split)
            continue
        if stamp != here:
            a, b = json.loads(stamp), json.loads(here)
            diff = [f"{k}: {a.get(k)!r} there, {b.get(k)!r} here" for k in sorted(set(a) | set(b))
                    if a.get(k) != b.get(k) and k != "knobs"]
            ka, kb = a.get("knobs") or {}, b.get("knobs") or {}
            if isinstance(ka, dict) and isinstance(kb, dict):
                diff += [f"knob {k}: {ka.get(k)!r} there, {kb.get(k)!r} here" for k in sorted(set(ka) | set(kb))
                         if ka.get(k) != kb.get(k)]
            raise DataError(f"{st.path}: built for another world than {root / 'dataset.json'} describes "
                            f"({'; '.join(diff[:4]) or 'identity differs'}); rebuild it with `build-store` "
                            "from this dataset")
    if unstamped:
        print(f"note: {root}: stores {unstamped} record no world identity (built before it was stamped); "
              "not checked", file=sys.stderr)


def _release_of(root: Path) -> str:
    """The public release a dataset directory was imported from (dataset.json ``release``), else ""."""
    meta = root / DATASET_META
    try:
        raw = read_json(meta) if meta.is_file() else {}
    except DataError:
        return ""
    rel = raw.get("release") if isinstance(raw, dict) else None
    return str(rel.get("name", "")) if isinstance(rel, dict) else str(rel or "")


def box_space_of(attrs: dict) -> str:
    """The box space a store was stamped with; stores built before the stamp: the 224x224 frame when their
    build-store note said so (the old silent fallback), else annotation pixels (what build-store wrote)."""
    space = attrs.get("box_space")
    if space is not None:
        return space.decode() if isinstance(space, bytes) else str(space)
    notes = attrs.get("notes", "")
    notes = notes.decode() if isinstance(notes, bytes) else str(notes)
    return BOX_SPACE_224 if "224x224" in notes else BOX_SPACE_ANNOTATION


def check_box_space(store: "FeatureStore", annotations, root=None) -> None:
    """Refuse a store whose proposal boxes are not in the annotations' pixel frame (a score on it would be
    computed on misread boxes); the message says how to rebuild it."""
    space = box_space_of(store.attrs)
    if space == BOX_SPACE_ANNOTATION:
        return
    split = store.attrs.get("split", "SPLIT")
    split = split.decode() if isinstance(split, bytes) else split
    src = store.attrs.get("box_source") or store.attrs.get("notes") or ""
    src = src.decode() if isinstance(src, bytes) else src
    root = root if root is not None else "DIR"
    raise DataError(f"{store.path}: its proposal boxes are in the {space} frame{f' ({src})' if src else ''}, but "
                    f"{annotations} gives boxes in each video's annotation pixel frame; a score would be computed on "
                    f"misread boxes. Rebuild it from the dataset directory that holds the annotations: "
                    f"`python -m workbench build-store --root {root} --split {split} --out {store.path}`")


def index_digest(seg_ids, offsets, counts, crc) -> str:
    """SHA-256 of a store's index datasets (segment ids, offsets, counts, frame checksums)."""
    h = hashlib.sha256()
    for s in seg_ids:
        h.update((s.decode() if isinstance(s, bytes) else str(s)).encode() + b"\0")
    for a, dt in ((offsets, np.int64), (counts, np.int32), (crc, np.uint32)):
        h.update(np.ascontiguousarray(np.asarray(a, dtype=dt)).tobytes())
    return h.hexdigest()


def seal(f: h5py.File) -> None:
    """Write /frame_crc and index_sha256 for a store written by other means than ``build_store``
    (tests, converters); the datasets must already hold their final values."""
    F = f["features"].shape[0]
    crc = np.zeros((F, 2), np.uint32)
    for r in range(F):
        crc[r] = (zlib.crc32(np.ascontiguousarray(f["features"][r]).tobytes()),
                  zlib.crc32(np.ascontiguousarray(f["boxes"][r]).tobytes()))
    if "frame_crc" in f:
        del f["frame_crc"]
    f.create_dataset("frame_crc", data=crc)
    f.attrs["index_sha256"] = index_digest(f["seg_ids"][:], f["frame_offset"][:], f["frame_count"][:], crc)
    f.attrs["format_version"] = FORMAT_VERSION


def store_is_current(path: str | Path) -> bool:
    """Whether ``path`` is a store of the current format (``prepare`` rebuilds older ones)."""
    try:
        with h5py.File(path, "r") as f:
            return int(f.attrs.get("format_version", -1)) == FORMAT_VERSION
    except OSError:
        return False


class FeatureStore(SegmentIndex):
    """Read-only access to one split's store. Frames are read chunk by chunk (one frame per chunk)."""

    what = "feature store"

    def __init__(self, path: str | Path, num_proposals: int | None = None):
        """Open and check a store; ``num_proposals`` serves only the first N proposals of each
        frame (DataError if the store holds fewer)."""
        self.path = Path(path)
        expect(self.path.is_file(), str(self.path), "feature store not found (build it with `build-store`)")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise DataError(f"{self.path}: not a readable HDF5 file ({e})") from None
        try:
            self._open(num_proposals)
        except BaseException:
            self._f.close()
            raise

    def stamp(self, name: str) -> str | None:
        """A text attribute of the store (an identity or digest stamped when it was built), None when absent."""
        v = self.attrs.get(name)
        return None if v is None else v.decode() if isinstance(v, bytes) else str(v)

    def _open(self, num_proposals: int | None) -> None:
        f = self._f
        where = str(self.path)
        for name in ("features", "boxes", "seg_ids", "frame_offset", "frame_count"):
            expect(name in f, where, f"missing dataset /{name}")
        expect(int(f.attrs.get("format_version", -1)) == FORMAT_VERSION, where,
               f"store format {f.attrs.get('format_version')} is not {FORMAT_VERSION}; rebuild it with `build-store`")
        expect("frame_crc" in f and "index_sha256" in f.attrs, where, "no checksums (/frame_crc, index_sha256); "
               "rebuild it with `build-store`")
        self.attrs = dict(f.attrs)
        try:
            seg_ids = f["seg_ids"][:]
            self.frame_offset = f["frame_offset"][:]
            self.frame_count = f["frame_count"][:]
            self._crc = f["frame_crc"][:]
        except (OSError, RuntimeError, ValueError) as e:
            raise DataError(f"{where}: unreadable index datasets ({e}); rebuild it with `build-store`") from None
        self._set_ids(seg_ids)
        self._feat = f["features"]
        self._boxes = f["boxes"]
        self._check_index(where)
        stored = int(self._feat.shape[1])
        self._stored_n = stored
        if num_proposals is not None:
            expect(num_proposals <= stored, where,
                   f"holds {stored} proposals per frame but num_proposals={num_proposals} was asked; lower "
                   f"num_proposals or rebuild with `build-store --num-proposals {num_proposals}`")
        self.num_proposals = stored if num_proposals is None else int(num_proposals)
        self.feature_dim = int(self._feat.shape[2])
        self._direct = (self._feat.chunks == (1, stored, self.feature_dim) and self._feat.compression is None
                        and not self._feat.fletcher32 and not self._feat.scaleoffset and not self._feat.shuffle)
        self._frame_dtype = self._feat.dtype
        self.feature_dtype = self._feat.dtype       # float16 (or float32) as stored
        self._checked = np.zeros((len(self._crc), 2), bool)  # frames whose checksum was verified

    def _check_index(self, where: str) -> None:
        """Index invariants: shapes agree, offset == cumsum(count), ids unique, digest matches."""
        fe, bo, off, cnt = self._feat, self._boxes, self.frame_offset, self.frame_count
        expect(fe.ndim == 3 and bo.ndim == 3 and bo.shape[2] == 4 and fe.shape[:2] == bo.shape[:2], where,
               f"/features {fe.shape} and /boxes {bo.shape} must be (F, N, D) and (F, N, 4)")
        S = len(self.seg_ids)
        expect(S > 0 and off.shape == (S,) and cnt.shape == (S,), where,
               f"/seg_ids, /frame_offset, /frame_count must have one entry per segment "
               f"(got {S}, {off.shape}, {cnt.shape})")
        expect(len(self._index) == S, where, "duplicate segment ids in /seg_ids")
        bad = np.flatnonzero(cnt < 1)
        expect(bad.size == 0, where, f"segment {self.seg_ids[bad[0]] if bad.size else ''} has frame_count "
               f"{cnt[bad[0]] if bad.size else ''} (must be >= 1)")
        want = np.concatenate([[0], np.cumsum(cnt.astype(np.int64))[:-1]])
        bad = np.flatnonzero(off != want)
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{where}: /frame_offset[{i}] of segment {self.seg_ids[i]} is {int(off[i])}, but the "
                            f"frame counts put it at {int(want[i])} (offset must equal cumsum(count)); the index is "
                            "corrupt, rebuild the store with `build-store`")
        F = int(cnt.astype(np.int64).sum())
        expect(F == fe.shape[0], where, f"frame counts sum to {F} but /features has {fe.shape[0]} frames")
        expect(self._crc.shape == (F, 2), where, f"/frame_crc has shape {self._crc.shape}, expected ({F}, 2)")
        digest = index_digest(self.seg_ids, off, cnt, self._crc)
        a = self.stamp("index_sha256")
        expect(digest == a, where, "index datasets (/seg_ids, /frame_offset, /frame_count, /frame_crc) do not match "
               "their digest index_sha256; the store was modified after it was built: rebuild it with `build-store`")

    def _corrupt(self, row: int, what: str) -> DataError:
        i = int(np.searchsorted(self.frame_offset, row, side="right") - 1)
        return DataError(f"{self.path}: segment {self.seg_ids[i]} frame {row - int(self.frame_offset[i])}: {what} "
                         "bytes do not match their checksum; the store is corrupt, rebuild it with `build-store`")

    def _verify(self, row: int, raw: bytes | np.ndarray, col: int) -> None:
        if not self._checked[row, col]:
            data = raw if isinstance(raw, bytes) else np.ascontiguousarray(raw).reshape(-1).view(np.uint8)  # no copy
            if zlib.crc32(data) != int(self._crc[row, col]):
                raise self._corrupt(row, "feature" if col == 0 else "box")
            self._checked[row, col] = True

    def verify(self) -> None:
        """Check every frame's checksum now (``features``/``boxes`` check each frame on first read)."""
        for i in range(len(self)):
            self.features(i)
            self.boxes(i)

    def _rows(self, i: int, frames) -> np.ndarray:
        T = int(self.frame_count[i])
        if frames is None:
            return np.arange(T) + self.frame_offset[i]
        frames = np.asarray(frames, dtype=np.int64)
        if frames.size and (frames.min() < 0 or frames.max() >= T):
            raise DataError(f"{self.path}: segment {self.seg_ids[i]} has {T} frames, asked for {frames.tolist()}")
        return frames + self.frame_offset[i]

    def features(self, i: int, frames=None, out: np.ndarray | None = None) -> np.ndarray:
        """Region features of segment ``i`` -> (t, N, D) in the store's dtype (first N proposals); with
        ``frames``, written into ``out`` when given (a C-contiguous (t, N, D) array of that dtype, e.g. a
        slot of a batch). Each frame's checksum is verified on its first read."""
        rows = self._rows(i, frames)
        N = self.num_proposals
        if frames is None:
            if not len(rows):
                return self._feat[0:0, :N]
            block = self._read(lambda: self._feat[rows[0]:rows[0] + len(rows)], rows[0])
            for j, r in enumerate(rows):
                self._verify(int(r), block[j], 0)
            return block[:, :N] if N < self._stored_n else block
        shape = (len(rows), N, self.feature_dim)
        if out is None:
            out = np.empty(shape, dtype=self._frame_dtype)
        elif out.shape != shape or out.dtype != self._frame_dtype or not out.flags.c_contiguous:
            raise ValueError(f"features(out=...): expected a C-contiguous {shape} {self._frame_dtype} array, "
                             f"got {out.shape} {out.dtype}")
        whole = N == self._stored_n
        for j, r in enumerate(rows):
            r = int(r)
            if self._direct and whole:  # raw chunk read straight into ``out``: one frame per chunk, no copy
                self._read(lambda: self._feat.id.read_direct_chunk((r, 0, 0), out=out[j].reshape(-1).view(np.uint8)), r)
                self._verify(r, out[j], 0)
            elif self._direct:
                _, buf = self._read(lambda: self._feat.id.read_direct_chunk((r, 0, 0)), r)
                self._verify(r, buf, 0)
                out[j] = np.frombuffer(buf, dtype=self._frame_dtype).reshape(self._stored_n, self.feature_dim)[:N]
            else:
                frame = self._read(lambda: self._feat[r], r)
                self._verify(r, frame, 0)
                out[j] = frame[:N]
        return out

    def frame_block(self, start: int, stop: int) -> np.ndarray:
        """Region features of the store's frames [start, stop) across segments -> (stop - start, N, D),
        each frame's checksum verified on its first read."""
        block = self._read(lambda: self._feat[start:stop], start)
        for j in range(len(block)):
            self._verify(start + j, block[j], 0)
        N = self.num_proposals
        return block[:, :N] if N < self._stored_n else block

    def _read(self, fn, row: int):
        try:
            return fn()
        except (OSError, RuntimeError, ValueError) as e:
            raise self._corrupt_read(int(row), e) from None

    def _corrupt_read(self, row: int, e: Exception) -> DataError:
        i = int(np.searchsorted(self.frame_offset, row, side="right") - 1)
        return DataError(f"{self.path}: segment {self.seg_ids[i]}: cannot read frame row {row} "
                         f"({str(e).splitlines()[0][:120]}); the store is damaged, rebuild it with `build-store`")

    def boxes(self, i: int, frames=None) -> np.ndarray:
        """Proposal boxes of segment ``i`` in annotation pixel space -> (t, N, 4) (first N proposals)."""
        rows = self._rows(i, frames)
        if len(rows) == 0:
            return np.zeros((0, self.num_proposals, 4), np.float32)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        block = self._read(lambda: self._boxes[lo:hi], lo)
        for j in range(hi - lo):
            self._verify(lo + j, block[j], 1)
        return block[rows - lo, :self.num_proposals]

    def close(self) -> None:
        self._f.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="dataset directory (a bare CI feature root without annotations keeps "
                   "its boxes in the 224x224 frame: the store is stamped so and refused against annotations; "
                   "public releases: `python -m workbench import`)")
    p.add_argument("--split", required=True, choices=("training", "validation", "testing"))
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--num-proposals", type=int, default=20, help="N: proposals kept per frame (the first N)")
    p.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="stored feature dtype")


def run(args: argparse.Namespace) -> int:
    summary = build_store(args.root, args.split, args.out, args.num_proposals, args.dtype)
    print(json.dumps(summary))
    if summary["box_space"] not in (BOX_SPACE_ANNOTATION, "absent"):
        print(f"build-store: {args.out} holds boxes in the {summary['box_space']} frame, not in annotation pixels: "
              "it cannot be evaluated against box annotations (rebuild from a dataset directory that holds "
              "them, or use `python -m workbench import ci`)", file=sys.stderr)
    return 0
