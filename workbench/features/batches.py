"""Model inputs from a feature store and a text cache: training batches with sampled frames,
and evaluation groups with every frame. Batch layout: docs/ARCHITECTURE.md ("Batches")."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from ..io import DataError
from .store import FeatureStore

# The oracle teacher's truth (cfg.teacher = "oracle"): segment keys -> {key: (look (K, Dv) float32, cued (K,) bool)}
# of each segment's named objects: what the simulated world knows (``teacher_looks`` of the simulator's oracles),
# passed in by ``train`` (the features never read a world).
TeacherTruth = Callable[[list[str]], dict[str, tuple[np.ndarray, np.ndarray]]]


def sample_frames(num_frames: int, T: int, rng: np.random.Generator) -> np.ndarray:
    """T frame indices of a segment of ``num_frames`` frames: one random frame in each of T equal
    bins (sorted); a segment shorter than T repeats frames."""
    if num_frames >= T:
        edges = np.linspace(0, num_frames, T + 1)
        lo, hi = np.floor(edges[:-1]).astype(int), np.maximum(np.floor(edges[1:]).astype(int), np.floor(edges[:-1]).astype(int) + 1)
        return rng.integers(lo, hi)
    return np.sort(rng.integers(0, num_frames, size=T))


def _pad(arrays: Sequence[np.ndarray], length: int, fill=0) -> np.ndarray:
    out = np.full((len(arrays), length) + arrays[0].shape[1:], fill, dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


def collate_text(texts: Sequence) -> dict[str, torch.Tensor]:
    """Pad the text side of a batch: objects to K, tokens to L."""
    K = max(len(t.obj_class) for t in texts)
    L = max(max(len(t.tok_glove) for t in texts), 1)
    obj_mask = _pad([np.ones(len(t.obj_class), bool) for t in texts], K, False)
    tok_mask = _pad([np.ones(max(len(t.tok_glove), 0), bool) for t in texts], L, False) if L else None
    tok = [t.tok_glove if len(t.tok_glove) else np.zeros((0, texts[0].obj_glove.shape[1]), np.float32) for t in texts]
    return {
        "obj_glove": torch.from_numpy(_pad([t.obj_glove.astype(np.float32) for t in texts], K)),      # (B, K, Dw)
        "obj_ctx": torch.from_numpy(_pad([t.obj_ctx.astype(np.float32) for t in texts], K)),          # (B, K, Dc)
        "sent_ctx": torch.from_numpy(np.stack([t.sent_ctx.astype(np.float32) for t in texts])),       # (B, Dc)
        "obj_mask": torch.from_numpy(obj_mask),                                                         # (B, K)
        "obj_class": torch.from_numpy(_pad([np.asarray(t.obj_class, np.int64) for t in texts], K, -1)),  # (B, K)
        "tok_glove": torch.from_numpy(_pad([x.astype(np.float32) for x in tok], L)),                  # (B, L, Dw)
        "tok_mask": torch.from_numpy(tok_mask),                                                         # (B, L)
        "obj_tok_span": torch.from_numpy(_pad([np.asarray(t.obj_tok_span, np.int64).reshape(-1, 2) for t in texts], K)),
    }


class TrainBatches:
    """Shuffled training batches of one epoch; the order and the sampled frames depend only on
    (seed, epoch), so a resumed run sees exactly the batches an uninterrupted run sees."""

    def __init__(self, store: FeatureStore, text, batch_size: int, num_frames: int, seed: int,
                 max_segments: int = 0, teacher: TeacherTruth | None = None):
        self.store, self.text = store, text
        ids = list(store.seg_ids)
        missing = [k for k in ids if k not in text]
        if missing:
            raise DataError(f"{store.path}: {len(missing)} segments have no text features (e.g. {missing[:3]})")
        keep = [i for i, k in enumerate(ids) if len(text[k].obj_class) > 0]
        self.skipped = len(ids) - len(keep)  # segments whose sentence names no queried object
        self.indices = np.asarray(keep[:max_segments] if max_segments else keep)
        self.batch_size, self.num_frames, self.seed = batch_size, num_frames, seed
        # teacher: the oracle teacher's truth of the training segments -> each batch carries it (cfg.teacher)
        self.teacher = self._teacher_truth(teacher) if teacher else None

    def _teacher_truth(self, teacher: TeacherTruth) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        keys = [self.store.seg_ids[i] for i in self.indices]
        table = teacher(keys)
        for k in keys:
            look, _ = table[k]
            if len(look) != len(self.text[k].obj_class) or look.shape[1] != self.store.feature_dim:
                raise DataError(f"{self.store.path}: the oracle teacher's truth of segment {k} has {look.shape} looks, "
                                f"its text {len(self.text[k].obj_class)} objects and the store D={self.store.feature_dim}")
        return table

    def _with_teacher(self, batch: dict, segs: np.ndarray) -> dict:
        """Add the oracle teacher's truth: teacher_look (B, K, Dv) float32, teacher_cued (B, K) bool."""
        if self.teacher is not None:
            K = batch["obj_mask"].shape[1]
            rows = [self.teacher[self.store.seg_ids[i]] for i in segs]
            batch["teacher_look"] = torch.from_numpy(_pad([r[0] for r in rows], K))          # (B, K, Dv)
            batch["teacher_cued"] = torch.from_numpy(_pad([r[1] for r in rows], K, False))   # (B, K)
        return batch

    def __len__(self) -> int:
        return len(self.indices) // self.batch_size  # drop the last partial batch (negatives need a full batch)

    def make(self, segs: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        T, st = self.num_frames, self.store
        regions = np.empty((len(segs), T, st.num_proposals, st.feature_dim), dtype=st.feature_dtype)
        for b, i in enumerate(segs):  # each segment's frames are read straight into its slot of the batch
            st.features(int(i), sample_frames(int(st.frame_count[i]), T, rng), out=regions[b])  # (T, N, Dv)
        batch = collate_text([self.text[self.store.seg_ids[i]] for i in segs])
        batch["regions"] = torch.from_numpy(regions)                                    # (B, T, N, Dv) float16
        batch["frame_mask"] = torch.ones(len(segs), T, dtype=torch.bool)                # (B, T)
        return self._with_teacher(batch, segs)

    def plan(self, epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The store indices of each batch of ``epoch`` and each batch's seed (frames, negatives): the one
        definition of an epoch's order (``epoch`` reads it; diagnostics count over it without reading features)."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.indices)
        plans = [order[b * self.batch_size:(b + 1) * self.batch_size] for b in range(len(self))]
        return plans, rng.integers(0, 2**63 - 1, size=len(plans))

    def epoch(self, epoch: int, prefetch: int = 2) -> Iterator[dict[str, torch.Tensor]]:
        """Batches of ``epoch``: with ``prefetch`` >= 1 read by a background thread (up to ``prefetch`` ahead)
        while the model computes; 0: read here, one at a time. The same batches either way."""
        plans, seeds = self.plan(epoch)
        if prefetch <= 0:
            for segs, s in zip(plans, seeds):
                yield self.make(segs, np.random.default_rng(int(s)))
            return
        q: queue.Queue = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def worker():
            try:
                for segs, s in zip(plans, seeds):
                    if stop.is_set():
                        return
                    q.put(self.make(segs, np.random.default_rng(int(s))))
                q.put(None)
            except BaseException as e:  # surfaced in the consumer
                q.put(e)

        th = threading.Thread(target=worker, daemon=True)
        th.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while th.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    th.join(0.05)


def eval_groups(store: FeatureStore, text, keys: Sequence[str], max_frames: int = 512
                ) -> Iterator[tuple[list[str], dict[str, torch.Tensor]]]:
    """Every frame of every segment in ``keys``, grouped so that a group holds about
    ``max_frames`` (segments x padded frames); long segments come alone."""
    order = sorted(keys, key=lambda k: int(store.frame_count[store.index(k)]))
    group: list[str] = []
    for k in order + [None]:
        if k is not None:
            T = int(store.frame_count[store.index(k)])
            if not group or (len(group) + 1) * max(T, 1) <= max_frames:
                group.append(k)
                continue
        if not group:
            continue
        Ts = [int(store.frame_count[store.index(g)]) for g in group]
        Tm = max(Ts)
        feats = [store.features(store.index(g)) for g in group]
        regions = _pad([np.asarray(f) for f in feats], Tm)                               # (B, Tm, N, Dv)
        batch = collate_text([text[g] for g in group])
        batch["regions"] = torch.from_numpy(regions)
        batch["frame_mask"] = torch.from_numpy(_pad([np.ones(t, bool) for t in Ts], Tm, False))
        yield group, batch
        group = [k] if k is not None else []


class ResidentBatches(TrainBatches):
    """The batches of ``TrainBatches`` (same order, same sampled frames) with the region features
    of the whole training store held on ``device`` (e.g. a GPU): a batch is one gather there
    instead of reading frames from disk. Memory: the store's feature bytes on the device."""

    def __init__(self, store: FeatureStore, text, batch_size: int, num_frames: int, seed: int,
                 device: torch.device, max_segments: int = 0, chunk_frames: int = 4096,
                 teacher: TeacherTruth | None = None):
        super().__init__(store, text, batch_size, num_frames, seed, max_segments, teacher)
        self.device = torch.device(device)
        F = int(store.frame_offset[-1] + store.frame_count[-1]) if len(store.frame_count) else 0
        feats = torch.empty((F, store.num_proposals, store.feature_dim), dtype=torch.float16, device=self.device)
        for f0 in range(0, F, chunk_frames):  # bounded host memory: one chunk of frames at a time
            block = store.frame_block(f0, min(F, f0 + chunk_frames))
            feats[f0:f0 + len(block)] = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float16)).to(self.device)
        self.features = feats                                                            # (F, N, D)

    def make(self, segs: np.ndarray, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        T = self.num_frames
        rows = np.stack([sample_frames(int(self.store.frame_count[i]), T, rng) + self.store.frame_offset[i]
                         for i in segs])                                                 # (B, T) global frames
        batch = collate_text([self.text[self.store.seg_ids[i]] for i in segs])
        batch["regions"] = self.features[torch.from_numpy(rows).to(self.device)]         # (B, T, N, Dv) float16
        batch["frame_mask"] = torch.ones(len(segs), T, dtype=torch.bool)                # (B, T)
        return self._with_teacher(batch, segs)
