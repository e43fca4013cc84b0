"""Where a simulated segment's arrays go: per-segment .npy files (the CI/NAFAE layout) or
straight into the HDF5 feature store of its split (the layout ``build-store`` writes), with
bounded memory and a resume point.

A sink consumes what the generator yields per segment (plan, features (T, P, D), proposal
boxes (T, P, 4) in the 224x224 frame); it knows nothing about how they were drawn, so any
generator that yields these arrays can write through it.
"""
from __future__ import annotations

import time
import zlib
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..datasets.yc2 import RESIZED
from ..io import DataError, atomic_path
from ..paths import BOX_DIR, FEATURE_DIR, STORE_DIR
from ..features.store import FORMAT_VERSION, index_digest


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, array)


class NpySink:
    """<root>/region_features/<split>/<key>.npy and .../rpn_box/<split>/<key>.npy, one pair per segment."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def begin_split(self, split: str, plans: list) -> int | None:
        return None  # files are written atomically one by one; no resume point of its own

    def write(self, split: str, i: int, plan, features: np.ndarray, rpn: np.ndarray) -> None:
        _save_npy(self.root / FEATURE_DIR / split / f"{plan.key}.npy", features)
        _save_npy(self.root / FEATURE_DIR / BOX_DIR / split / f"{plan.key}.npy", rpn)

    def commit(self, split: str, done: int) -> None:
        pass

    def end_split(self, split: str) -> None:
        pass


class StoreSink:
    """<root>/store/<split>.h5 in the feature-store format (float16 features chunked one frame per
    chunk, boxes float32 in annotation pixel space), written segment by segment.

    While a split is being written its file is ``<split>.h5.partial`` with attribute
    ``segments_done``; ``commit`` flushes and advances it, and ``begin_split`` reopens a partial
    file that matches the same segments (``identity``) and returns where to continue. At the
    end of a split the file is renamed to ``<split>.h5``.
    """

    def __init__(self, root: Path, num_proposals: int, feature_dim: int, identity: dict,
                 feature_dtype: str = "float16"):
        self.root = Path(root)
        self.N, self.D, self.dtype = int(num_proposals), int(feature_dim), feature_dtype
        self.identity = {k: str(v) for k, v in identity.items()}  # e.g. generator, preset, seed, knobs
        self._f: h5py.File | None = None
        self._offsets: np.ndarray | None = None

    def final(self, split: str) -> Path:
        return self.root / STORE_DIR / f"{split}.h5"

    def partial(self, split: str) -> Path:
        return self.root / STORE_DIR / f"{split}.h5.partial"

    def begin_split(self, split: str, plans: list) -> int | None:
        keys = [p.key for p in plans]
        counts = np.asarray([p.num_frames for p in plans], dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self._offsets, self._plans = offsets, plans
        if self.final(split).is_file():
            return len(plans)
        path = self.partial(split)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            try:
                f = h5py.File(path, "r+")
            except OSError as e:
                raise DataError(f"{path}: unreadable partial store ({e}); delete it to start the split over") from None
            same = (f.attrs.get("segments_total") == len(plans)
                    and all(str(f.attrs.get(f"sim_{k}")) == v for k, v in self.identity.items())
                    and [s.decode() if isinstance(s, bytes) else s for s in f["seg_ids"][:]] == keys)
            if not same:
                f.close()
                raise DataError(f"{path}: a partial store of other segments or settings; delete it or use "
                                "the settings it was started with")
            self._f = f
            return int(f.attrs["segments_done"])
        F = int(counts.sum())
        f = h5py.File(path, "w")
        f.create_dataset("features", (F, self.N, self.D), dtype=self.dtype, chunks=(1, self.N, self.D))
        f.create_dataset("boxes", (F, self.N, 4), dtype="float32", chunks=(min(max(F, 1), 256), self.N, 4))
        f.create_dataset("seg_ids", data=np.array(keys, dtype=h5py.string_dtype()))
        f.create_dataset("frame_offset", data=offsets)
        f.create_dataset("frame_count", data=counts)
        f.create_dataset("frame_crc", (F, 2), dtype="uint32")  # CRC-32 of each frame's feature / box bytes
        f.attrs.update(format_version=FORMAT_VERSION, split=split, source_layout="simulator-direct",
                       source_root=str(self.root.resolve()), feature_dim=self.D, num_proposals=self.N,
                       feature_dtype=self.dtype, workbench_version=__version__,
                       created=time.strftime("%Y-%m-%dT%H:%M:%S"), notes="",
                       segments_total=len(plans), segments_done=0,
                       **{f"sim_{k}": v for k, v in self.identity.items()})
        f.flush()
        self._f = f
        return 0

    def write(self, split: str, i: int, plan, features: np.ndarray, rpn: np.ndarray) -> None:
        T = plan.num_frames
        where = f"segment {plan.key}"
        if features.shape != (T, features.shape[1], self.D) or features.shape[1] < self.N:
            raise DataError(f"{where}: features {features.shape}, expected ({T}, >={self.N}, {self.D})")
        if rpn.shape[:2] != (T, features.shape[1]) or rpn.shape[2] != 4:
            raise DataError(f"{where}: proposal boxes {rpn.shape}, expected ({T}, {features.shape[1]}, 4)")
        if not np.isfinite(features).all():
            raise DataError(f"{where}: non-finite region features")
        off = int(self._offsets[i])
        x = np.ascontiguousarray(features[:, :self.N].astype(self.dtype))
        sx, sy = plan.rwidth / RESIZED, plan.rheight / RESIZED
        b = np.ascontiguousarray(rpn[:, :self.N].astype(np.float32) * np.array([sx, sy, sx, sy], np.float32))
        self._f["features"][off:off + T] = x
        self._f["boxes"][off:off + T] = b
        self._f["frame_crc"][off:off + T] = [(zlib.crc32(x[t].tobytes()), zlib.crc32(b[t].tobytes())) for t in range(T)]

    def commit(self, split: str, done: int) -> None:
        self._f.flush()
        self._f.attrs["segments_done"] = int(done)
        self._f.flush()

    def end_split(self, split: str) -> None:
        if self._f is None:
            return
        for k in ("segments_done", "segments_total"):
            del self._f.attrs[k]
        f = self._f
        f.attrs["index_sha256"] = index_digest(f["seg_ids"][:], f["frame_offset"][:], f["frame_count"][:],
                                               f["frame_crc"][:])
        self._f.close()
        self._f = None
        self.partial(split).rename(self.final(split))

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
