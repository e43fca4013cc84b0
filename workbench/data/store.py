"""The HDF5 feature store: one file per split holding every segment's region features and
proposal boxes, so training reads the sampled frames of a batch without touching thousands of
per-segment .npy files (the bottleneck of the public code).

Layout (see docs/ARCHITECTURE.md): /features float16 [F, N, D] chunked one frame per chunk,
/boxes float32 [F, N, 4] in annotation pixel space, /seg_ids, /frame_offset, /frame_count.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..formats import detect
from ..formats.base import SourceSegment
from ..io import DataError, SegmentIndex, atomic_path, expect
from .layout import check_split

FORMAT_VERSION = 1


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
                feature_dtype: str = "float16", progress: bool = True) -> dict:
    """Convert the split's region features under ``root`` into one HDF5 store at ``out``.

    Validates every segment while converting and raises DataError naming the first bad one.
    Returns a summary dict (segments, frames, feature_dim, bytes, seconds).
    """
    from tqdm.auto import tqdm

    t0 = time.time()
    root, split = Path(root), check_split(split)
    src = detect(root).source(root, split)
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
            it = zip(src.segments, offsets, counts)
            for seg, off, T in tqdm(it, total=len(counts), desc=f"build-store {split}", disable=not progress):
                feats, boxes = seg.load()
                _validate(seg, feats, boxes, N, dim, feature_dtype)
                expect(feats.shape[0] == T, f"segment {seg.key}", "file changed while converting")
                fd[off:off + T] = feats[:, :N].astype(feature_dtype)
                sx, sy = seg.scale
                bd[off:off + T] = boxes[:, :N].astype(np.float32) * np.array([sx, sy, sx, sy], np.float32)
            f.attrs.update(format_version=FORMAT_VERSION, split=split, source_layout=src.layout,
                           source_root=str(src.root.resolve()), feature_dim=dim, num_proposals=N,
                           feature_dtype=feature_dtype, workbench_version=__version__,
                           created=time.strftime("%Y-%m-%dT%H:%M:%S"), notes=src.notes)
    return dict(split=split, segments=len(counts), frames=F, feature_dim=int(dim), num_proposals=N,
                bytes=Path(out).stat().st_size, seconds=round(time.time() - t0, 2), out=str(out))


class FeatureStore(SegmentIndex):
    """Read-only access to one split's store. Frames are read chunk by chunk (one frame per chunk)."""

    what = "feature store"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        expect(self.path.is_file(), str(self.path), "feature store not found (build it with `build-store`)")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            raise DataError(f"{self.path}: not a readable HDF5 file ({e})") from None
        f = self._f
        for name in ("features", "boxes", "seg_ids", "frame_offset", "frame_count"):
            expect(name in f, str(self.path), f"missing dataset /{name}")
        expect(int(f.attrs.get("format_version", -1)) == FORMAT_VERSION, str(self.path),
               f"store format {f.attrs.get('format_version')} is not {FORMAT_VERSION}; rebuild it")
        self.attrs = dict(f.attrs)
        self._set_ids(f["seg_ids"][:])
        self.frame_offset = f["frame_offset"][:]
        self.frame_count = f["frame_count"][:]
        self._feat = f["features"]
        self._boxes = f["boxes"]
        self.num_proposals = int(self._feat.shape[1])
        self.feature_dim = int(self._feat.shape[2])
        self._direct = self._feat.chunks == (1, self.num_proposals, self.feature_dim) and self._feat.compression is None
        self._frame_dtype = self._feat.dtype
        self.feature_dtype = self._feat.dtype       # float16 (or float32) as stored

    def _rows(self, i: int, frames) -> np.ndarray:
        T = int(self.frame_count[i])
        if frames is None:
            return np.arange(T) + self.frame_offset[i]
        frames = np.asarray(frames, dtype=np.int64)
        if frames.size and (frames.min() < 0 or frames.max() >= T):
            raise DataError(f"{self.path}: segment {self.seg_ids[i]} has {T} frames, asked for {frames.tolist()}")
        return frames + self.frame_offset[i]

    def features(self, i: int, frames=None, out: np.ndarray | None = None) -> np.ndarray:
        """Region features of segment ``i`` -> (t, N, D) in the store's dtype; with ``frames``, written
        into ``out`` when given (a (t, N, D) C-contiguous array of that dtype, e.g. a slot of a batch)."""
        rows = self._rows(i, frames)
        if frames is None:
            return self._feat[rows[0]:rows[0] + len(rows)] if len(rows) else self._feat[0:0]
        shape = (len(rows), self.num_proposals, self.feature_dim)
        if out is None:
            out = np.empty(shape, dtype=self._frame_dtype)
        elif out.shape != shape or out.dtype != self._frame_dtype or not out.flags.c_contiguous:
            raise ValueError(f"features(out=...): expected a C-contiguous {shape} {self._frame_dtype} array, "
                             f"got {out.shape} {out.dtype}")
        if self._direct:  # raw chunk reads straight into ``out``: one frame per chunk, no extra copy
            for j, r in enumerate(rows):
                self._feat.id.read_direct_chunk((int(r), 0, 0), out=out[j].reshape(-1).view(np.uint8))
        else:
            for j, r in enumerate(rows):
                out[j] = self._feat[int(r)]
        return out

    def frame_block(self, start: int, stop: int) -> np.ndarray:
        """Region features of the store's frames [start, stop) across segments -> (stop - start, N, D)."""
        return self._feat[start:stop]

    def boxes(self, i: int, frames=None) -> np.ndarray:
        """Proposal boxes of segment ``i`` in annotation pixel space -> (t, N, 4)."""
        rows = self._rows(i, frames)
        if len(rows) == 0:
            return np.zeros((0, self.num_proposals, 4), np.float32)
        block = self._boxes[rows.min():rows.max() + 1]
        return block[rows - rows.min()]

    def close(self) -> None:
        self._f.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", required=True, help="dataset directory (or a feature root in the CI/NAFAE/GVD layout)")
    p.add_argument("--split", required=True, choices=("training", "validation", "testing"))
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--num-proposals", type=int, default=20, help="N: proposals kept per frame (the first N)")
    p.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="stored feature dtype")


def run(args: argparse.Namespace) -> int:
    import json

    summary = build_store(args.root, args.split, args.out, args.num_proposals, args.dtype)
    print(json.dumps(summary))
    return 0
