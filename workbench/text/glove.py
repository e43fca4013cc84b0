"""Fixed word features w(o) (the paper's GloVe): readers and an explicit out-of-vocabulary policy.

Sources: ``"minilm-static"`` (the installed MiniLM's input word-piece embeddings, 384-d: the default of
ActivityNet-Entities, whose vocabulary no vendored GloVe file covers), ``"yc2-vocab"`` (the vendored GloVe-300 vectors of a 1,003-word YouCook2 vocabulary,
``data/youcook2_bb/word_embedding_glove.json``; the offline default) or a path to GloVe's text
format (``glove.6B.300d.txt``; ``glove.840B.300d.txt``, where a few "words" contain spaces, so a
line's vector is its last ``dim`` fields and the word is everything before) or a JSON
``{word: [floats]}``. A phrase is the mean of its words.

OOV policy: "error" (default: DataError listing the words), "zero" (zero vector) or "unk"
(the source's unknown-token vector: ``<unk>`` or ``unk``). Every use is counted.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from .contextual import resolve_encoder
from ..io import DataError, expect, read_json
from ..paths import YC2_DATA

YC2_VOCAB = YC2_DATA / "word_embedding_glove.json"
OOV_POLICIES = ("error", "zero", "unk")
UNK_TOKENS = ("<unk>", "unk")


@dataclass
class GloVe:
    """Word vectors (lower-cased lookup after an exact one) with an OOV counter."""

    vectors: dict[str, np.ndarray]
    source: str                                   # "yc2-vocab" or the file path
    fingerprint: str                              # content/identity hash of the source
    oov: Counter = field(default_factory=Counter)  # word -> times it was missing

    @property
    def dim(self) -> int:
        return len(next(iter(self.vectors.values())))

    def __contains__(self, word: str) -> bool:
        return word in self.vectors or word.lower() in self.vectors

    def get(self, word: str) -> np.ndarray | None:
        v = self.vectors.get(word)
        return self.vectors.get(word.lower()) if v is None else v

    def word(self, word: str, oov: str = "error", where: str = "word") -> np.ndarray:
        """Vector of one word under the OOV policy (float32 [dim])."""
        expect(oov in OOV_POLICIES, "oov policy", f"{oov!r} is not one of {OOV_POLICIES}")
        v = self.get(word)
        if v is not None:
            return v
        if oov == "error":
            raise DataError(f"{where}: word {word!r} is not in GloVe source {self.source} "
                            f"(choose an OOV policy: zero or unk)")
        self.oov[word] += 1
        if oov == "zero":
            return np.zeros(self.dim, np.float32)
        for u in UNK_TOKENS:
            if u in self.vectors:
                return self.vectors[u]
        raise DataError(f"GloVe source {self.source}: OOV policy 'unk' needs an unknown token {UNK_TOKENS}, none found")

    def phrase(self, words: Iterable[str], oov: str = "error", where: str = "phrase") -> np.ndarray:
        """Mean vector of a phrase's words (float32 [dim])."""
        words = list(words)
        expect(len(words) > 0, where, "empty phrase")
        if oov == "error":
            missing = [w for w in words if w not in self]
            if missing:
                raise DataError(f"{where}: words {missing} are not in GloVe source {self.source} "
                                f"(choose an OOV policy: zero or unk)")
        return np.mean([self.word(w, oov, where) for w in words], axis=0).astype(np.float32)

    def missing(self, words: Iterable[str]) -> list[str]:
        """The distinct words (first-seen order) that the source lacks."""
        return list(dict.fromkeys(w for w in words if w not in self))


def _file_fingerprint(path: Path) -> str:
    """sha256 of the file's content up to 512 MiB; beyond that its name, size and mtime."""
    st = path.stat()
    if st.st_size > 512 * 2**20:
        return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# Fixed word features from an installed encoder's input (word-piece) embedding table, for vocabularies
# no vendored GloVe file covers (ActivityNet-Entities): a word's vector is the mean of its pieces' rows.
STATIC_SOURCES = {"minilm-static": "minilm"}


def glove_fingerprint(source: str) -> str:
    """Identity of a GloVe source without reading its vectors (for cache invalidation)."""
    if source in STATIC_SOURCES:
        return f"static:{resolve_encoder(STATIC_SOURCES[source])[1]}"
    return _file_fingerprint(resolve_source(source))


def static_vectors(encoder: str, words: Iterable[str] | None) -> dict[str, np.ndarray]:
    """{word: mean input embedding of its word pieces} of an installed encoder (every whole-word piece
    of its vocabulary when ``words`` is None)."""
    # transformers is an optional heavy dependency: imported only when this runs
    from transformers import AutoModel, AutoTokenizer


    path, _ = resolve_encoder(encoder)
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    table = AutoModel.from_pretrained(path, local_files_only=True).get_input_embeddings().weight.detach().float().numpy()
    if words is None:
        words = [w for w in tok.get_vocab() if w.isalpha()]
    out = {}
    for w in dict.fromkeys(words):
        ids = tok(w, add_special_tokens=False)["input_ids"]
        if ids and tok.unk_token_id not in ids:
            out[w] = table[ids].mean(0).astype(np.float32)
    return out


def resolve_source(source: str) -> Path:
    path = YC2_VOCAB if source == "yc2-vocab" else Path(source)
    if not path.is_file():
        raise DataError(f"GloVe source {source!r}: file {path} not found "
                        f"(use 'yc2-vocab' or a glove.*.txt / {{word: vector}} JSON path)")
    return path


def read_glove_text(path: str | os.PathLike, words: Iterable[str] | None = None,
                    dim: int | None = None) -> dict[str, np.ndarray]:
    """Read GloVe's text format; keep only ``words`` (and unknown tokens) when given.

    The vector is the last ``dim`` fields of a line (``dim`` inferred from the first line),
    the word everything before it, joined by single spaces (glove.840B has such words).
    """
    path = Path(path)
    keep = None if words is None else set(words) | {w.lower() for w in words} | set(UNK_TOKENS)
    out: dict[str, np.ndarray] = {}
    with open(path, encoding="utf8", errors="strict") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if dim is None:
                if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                    continue  # word2vec-style header "count dim"
                dim = len(parts) - 1
            expect(len(parts) > dim, f"{path}:{lineno}", f"expected a word and {dim} numbers, got {len(parts)} fields")
            word = " ".join(parts[:-dim])
            if keep is not None and word not in keep:
                continue
            try:
                out[word] = np.asarray(parts[-dim:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}:{lineno}: expected {dim} numbers after the word {word!r}") from None
    expect(len(out) > 0 or keep is not None, str(path), "no vectors")
    return out


def read_glove_json(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a ``{word: [floats]}`` JSON (the vendored yc2-vocab file)."""
    raw = read_json(path)
    expect(isinstance(raw, dict) and raw, str(path), "expected a non-empty JSON object {word: vector}")
    out = {w: np.asarray(v, dtype=np.float32) for w, v in raw.items()}
    dims = {v.shape for v in out.values()}
    expect(len(dims) == 1 and len(next(iter(dims))) == 1, str(path), f"vectors of different shapes {sorted(dims)[:3]}")
    return out


def load_glove(source: str = "yc2-vocab", words: Iterable[str] | None = None) -> GloVe:
    """Load a GloVe source ("yc2-vocab" or a path); with ``words`` a text file keeps only those."""
    if source in STATIC_SOURCES:
        vectors = static_vectors(STATIC_SOURCES[source], words)
        expect(len(vectors) > 0, source, "no word has a static vector")
        return GloVe(vectors, source, glove_fingerprint(source))
    path = resolve_source(source)
    if path.suffix == ".json":
        vectors = read_glove_json(path)
    else:
        vectors = read_glove_text(path, words)
    expect(len(vectors) > 0, str(path), "none of the requested words found")
    return GloVe(vectors, source if source == "yc2-vocab" else str(path), _file_fingerprint(path))
