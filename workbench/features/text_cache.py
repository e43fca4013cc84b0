"""The text cache: every segment's objects with GloVe and contextual features in one HDF5 file.

``python -m workbench text-features --data DIR --encoder minilm --glove yc2-vocab`` writes the flat
layout of docs/ARCHITECTURE.md ("Text cache"). A second call with the same inputs (segments,
sentences, objects, encoder revision, GloVe source, OOV policies) reuses the file and says so;
anything different rebuilds it and says why.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..io import DataError, SegmentIndex, atomic_path, expect, write_json
from ..paths import cache_dir
from ..text.glove import OOV_POLICIES, GloVe, glove_fingerprint, load_glove
from ..text.objects import QueryObject, TextInputs, tokenize  # noqa: F401  (TextInputs re-exported)
from ..datasets import detect
from ..datasets.base import DatasetFormat
from ..datasets.yc2 import DatasetDir
from ..text.contextual import encode, load_encoder, resolve_encoder

FORMAT_VERSION = 2
STR = h5py.string_dtype()


@dataclass
class SegmentText:
    """Everything the model reads about one segment's sentence."""

    obj_class: np.ndarray       # (K,) int64, -1 for an open-vocabulary object
    obj_glove: np.ndarray       # (K, Dw) float32
    obj_ctx: np.ndarray         # (K, Dc) float32
    sent_ctx: np.ndarray        # (Dc,) float32
    tok_glove: np.ndarray       # (L, Dw) float32
    obj_tok_span: np.ndarray    # (K, 2) int64 token [start, end) in tok_glove; -1 when not in the sentence
    sentence: str
    obj_name: list[str]
    obj_char_span: np.ndarray   # (K, 2) int64 character [start, end); -1 when not in the sentence
    obj_in_sentence: np.ndarray  # (K,) bool
    tok_words: list[str]


# --- inputs ---------------------------------------------------------------------------------

def collect_inputs(data_dir: str | Path, fmt: DatasetFormat | None = None) -> TextInputs:
    """Segments of a dataset directory with their sentences and objects (spans located), from
    the directory's format (``workbench.datasets``): the train/val/test split dicts of a
    YouCook2-BB directory, or the cleaned annotation JSONs of an ActivityNet-Entities directory."""
    return (fmt or detect(data_dir)).text_inputs(Path(data_dir))


def _inputs_hash(inp: TextInputs, identity: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(identity, sort_keys=True).encode())
    for key, split, s, objs in zip(inp.seg_ids, inp.splits, inp.sentences, inp.objects):
        h.update(json.dumps([key, split, s, [[o.class_id, o.name, o.char_span, o.mention] for o in objs]]).encode())
    return h.hexdigest()


# --- GloVe side -----------------------------------------------------------------------------

def object_glove_words(obj: QueryObject, glove: GloVe, vocab_forms: list[str] | None) -> list[str]:
    """Words whose GloVe mean is w(o): the object's name; if that has OOV words and another form
    of the same class (e.g. "mussels" for "mussel") is fully in the source, that form."""
    words = [w for w, _, _ in tokenize(obj.name)]
    if glove.missing(words) and vocab_forms:
        for form in vocab_forms:
            alt = [w for w, _, _ in tokenize(form)]
            if alt and not glove.missing(alt):
                return alt
    return words


def _fail_on_oov(gl: GloVe, words: list[str], what: str, flag: str) -> None:
    missing = gl.missing(words)
    if missing:
        raise DataError(f"GloVe source {gl.source}: {len(missing)} words of the {what} are out of vocabulary: "
                        f"{missing[:30]}{' ...' if len(missing) > 30 else ''} (choose {flag} zero or unk)")


# --- build ----------------------------------------------------------------------------------

def build_text_features(data_dir: str | Path, encoder: str = "minilm", glove: str | None = None,
                        out: str | Path | None = None, oov: str = "error", token_oov: str = "zero",
                        batch_size: int = 64, device: str = "auto", bf16: bool = False,
                        allow_download: bool = False, progress: bool = True, force: bool = False,
                        fmt: DatasetFormat | None = None) -> Path:
    """Write (or reuse) the text cache of a dataset directory; returns its path (``fmt``: the directory's format,
    detected when not given).

    oov: policy for object words (w(o)); token_oov: policy for the per-token GloVe sequences of
    the GloVe+biLSTM encoder. Both counts are printed and stored as attributes.
    """
    expect(oov in OOV_POLICIES and token_oov in OOV_POLICIES, "text-features",
           f"OOV policies must be in {OOV_POLICIES}, got {oov!r}, {token_oov!r}")
    expect(isinstance(batch_size, int) and not isinstance(batch_size, bool) and batch_size >= 1,
           "text-features: --batch-size", f"must be an integer >= 1 (sentences per encoder batch), got {batch_size!r}")
    d = DatasetDir(data_dir)
    fmt = fmt or detect(data_dir)
    if not glove:       # the format's default source (yc2-vocab; minilm-static for ActivityNet-Entities)
        glove = fmt.glove
    out = Path(out) if out else d.text_features
    inp = collect_inputs(data_dir, fmt)
    enc_path, enc_rev = resolve_encoder(encoder, allow_download)
    identity = dict(format_version=FORMAT_VERSION, encoder=encoder, encoder_revision=enc_rev,
                    glove_source=glove, glove_fingerprint=glove_fingerprint(glove), oov_policy=oov,
                    token_oov_policy=token_oov, bf16=bool(bf16))
    digest = _inputs_hash(inp, identity)
    if out.is_file() and not force:
        try:
            with h5py.File(out, "r") as f:
                old = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        except OSError:
            old = {}
        if old.get("inputs_hash") == digest:
            print(f"text-features: reusing {out} (same inputs, encoder {encoder} {enc_rev}, GloVe {glove})")
            return out
        changed = [k for k, v in identity.items() if str(old.get(k)) != str(v)] or ["segments/sentences/objects"]
        print(f"text-features: rebuilding {out} (changed: {', '.join(changed)})")

    t0 = time.time()
    tok_lists = [tokenize(s) for s in inp.sentences]
    all_words = {w for toks in tok_lists for w, _, _ in toks} | {w for objs in inp.objects for o in objs
                                                                for w, _, _ in tokenize(o.name)}
    all_words |= {w for forms in inp.class_forms.values() for f in forms for w, _, _ in tokenize(f)}
    gl = load_glove(glove, all_words)

    if token_oov == "error":
        _fail_on_oov(gl, [w for toks in tok_lists for w, _, _ in toks], "sentence tokens", "--token-oov")

    # objects: GloVe, spans
    forms_of = lambda o: inp.class_forms.get(o.class_id)  # noqa: E731
    if oov == "error":
        _fail_on_oov(gl, [w for objs in inp.objects for o in objs for w in object_glove_words(o, gl, forms_of(o))],
                     "object names", "--oov")
    obj_rows, obj_glove, obj_words, tok_span = [], [], [], []
    n_sub = 0
    for key, objs, toks in zip(inp.seg_ids, inp.objects, tok_lists):
        for o in objs:
            words = object_glove_words(o, gl, forms_of(o))
            n_sub += words != [w for w, _, _ in tokenize(o.name)]
            obj_glove.append(gl.phrase(words, oov, where=f"segment {key}: object {o.name!r}"))
            obj_words.append(" ".join(words))
            if o.char_span is None:
                tok_span.append((-1, -1))
            else:
                a, e = o.char_span
                ids = [i for i, (_, s, t) in enumerate(toks) if s < e and t > a]
                tok_span.append((ids[0], ids[-1] + 1))
            obj_rows.append(o)
    obj_oov = dict(gl.oov)
    gl.oov.clear()
    tok_words, tok_ids, table, table_glove = [], [], {}, []   # distinct words -> row of /tok_vocab_glove
    tok_oov_words: dict[str, int] = {}
    for key, toks in zip(inp.seg_ids, tok_lists):
        for w, _, _ in toks:
            if w not in table:
                table[w] = len(table)
                table_glove.append(gl.word(w, token_oov, where=f"segment {key}: sentence token"))
            if w not in gl:
                tok_oov_words[w] = tok_oov_words.get(w, 0) + 1
            tok_words.append(w)
            tok_ids.append(table[w])

    # contextual

    enc = load_encoder(encoder, device, allow_download)
    sent_ctx, obj_ctx = encode(enc, inp.sentences, [[o.char_span for o in objs] for objs in inp.objects],
                               [[o.name for o in objs] for objs in inp.objects], batch_size=batch_size,
                               bf16=bf16, progress=progress, where=[f"segment {k}" for k in inp.seg_ids])
    obj_ctx = np.concatenate(obj_ctx) if obj_rows else np.zeros((0, enc.dim), np.float32)

    counts = np.array([len(o) for o in inp.objects], np.int64)
    tcounts = np.array([len(t) for t in tok_lists], np.int64)
    n_absent = sum(o.mention == "absent" for o in obj_rows)
    n_reused = sum(o.mention == "reused" for o in obj_rows)
    with atomic_path(out, suffix=".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            f["seg_ids"] = np.array(inp.seg_ids, dtype=object).astype(STR)
            f["splits"] = np.array(inp.splits, dtype=object).astype(STR)
            f["sentences"] = np.array(inp.sentences, dtype=object).astype(STR)
            f["obj_offset"] = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
            f["obj_count"] = counts
            f["obj_class"] = np.array([-1 if o.class_id is None else o.class_id for o in obj_rows], np.int64)
            f["obj_name"] = np.array([o.name for o in obj_rows], dtype=object).astype(STR)
            f["obj_glove_words"] = np.array(obj_words, dtype=object).astype(STR)
            f["obj_mention"] = np.array([o.mention for o in obj_rows], dtype=object).astype(STR)
            f["obj_char_span"] = np.array([o.char_span or (-1, -1) for o in obj_rows], np.int64).reshape(-1, 2)
            f["obj_tok_span"] = np.array(tok_span, np.int64).reshape(-1, 2)
            f["obj_in_sentence"] = np.array([o.char_span is not None for o in obj_rows], bool)
            f["obj_glove"] = np.array(obj_glove, np.float32).reshape(-1, gl.dim)
            f["obj_ctx"] = obj_ctx.astype(np.float32)
            f["sent_ctx"] = sent_ctx.astype(np.float32)
            f["tok_offset"] = np.concatenate([[0], np.cumsum(tcounts)[:-1]]).astype(np.int64)
            f["tok_count"] = tcounts
            f["tok_ids"] = np.array(tok_ids, np.int32)
            f["tok_vocab"] = np.array(list(table), dtype=object).astype(STR)
            f["tok_vocab_glove"] = np.array(table_glove, np.float32).reshape(-1, gl.dim)
            f["tok_vocab_oov"] = np.array([w not in gl for w in table], bool)
            attrs = dict(identity, encoder_path=enc.path, ctx_dim=enc.dim, glove_dim=gl.dim,
                         oov_count=sum(obj_oov.values()), oov_words=json.dumps(obj_oov),
                         obj_glove_substituted=int(n_sub), token_oov_count=sum(tok_oov_words.values()),
                         token_oov_words=json.dumps(tok_oov_words), absent_objects=int(n_absent),
                         reused_mentions=int(n_reused), inputs_hash=digest,
                         created=time.strftime("%Y-%m-%dT%H:%M:%S"))
            for k, v in attrs.items():
                f.attrs[k] = v
    top = sorted(tok_oov_words.items(), key=lambda kv: -kv[1])[:8]
    print(f"text-features: {len(inp.seg_ids)} segments, {len(obj_rows)} objects ({n_reused} reuse a mention, "
          f"{n_absent} not named in their sentence), {len(tok_words)} tokens; encoder {encoder} ({enc.dim}-d), "
          f"GloVe {glove} ({gl.dim}-d)")
    print(f"  object OOV ({oov}): {sum(obj_oov.values())}; objects using another form of their class for GloVe: "
          f"{n_sub}; token OOV ({token_oov}): {sum(tok_oov_words.values())} of {len(tok_words)} "
          f"({len(tok_oov_words)} distinct, e.g. {[w for w, _ in top]})")
    print(f"  wrote {out} ({out.stat().st_size / 2**20:.1f} MiB) in {time.time() - t0:.1f} s")
    return out


def ensure_text_features(data_dir: str | Path, encoder: str = "minilm", glove: str | None = None,
                         out: str | Path | None = None, **kw) -> Path:
    """The text cache of a dataset directory, built if missing or stale (default DIR/text_features.h5)."""
    return build_text_features(data_dir, encoder, glove, out, **kw)


# --- the input check, remembered -------------------------------------------------------------
# Re-deriving every segment's text inputs to compare them with a cache's inputs hash parses the dataset's
# sentences and split files and locates every object (0.65 s CPU for the 13,649 segments of the demo world). A passed
# check is remembered by a digest of what it read: the bytes of every file at the top of the dataset
# directory (where every format keeps its text inputs; feature and cache files left out), the source of the
# code that derives the inputs, and the cache's identity and inputs hash. Any change to one of them checks again.

CHECKS_FILE = "text_checks.json"      # in the per-machine cache folder (paths.cache_dir)
_CHECKS_KEPT = 256                    # the most recent passed checks remembered
_NOT_INPUTS = {".h5", ".hdf5", ".npy", ".npz", ".pt", ".pth", ".bin", ".partial", ".lock"}


_CODE: str | None = None             # _code_digest(), computed once per process


def _code_digest() -> str:
    """sha256 of the sources that derive a dataset's text inputs (datasets/, text/, this module)."""
    global _CODE
    if _CODE is None:
        here = Path(__file__).resolve().parent.parent
        files = sorted([*(here / "datasets").rglob("*.py"), *(here / "text").rglob("*.py"), Path(__file__).resolve()])
        h = hashlib.sha256()
        for f in files:
            h.update(str(f.relative_to(here)).encode() + b"\0" + f.read_bytes() + b"\0")
        _CODE = h.hexdigest()
    return _CODE


def _check_key(data_dir: str | Path, identity: dict, inputs_hash: str) -> str | None:
    """The digest a passed input check of ``data_dir`` against a cache (``identity``, ``inputs_hash``) is remembered
    by; None when a file cannot be read (the check then runs, and names what is wrong)."""
    h = hashlib.sha256(json.dumps([identity, inputs_hash, _code_digest()], sort_keys=True, default=str).encode())
    try:
        for f in sorted(Path(data_dir).iterdir()):
            if f.is_file() and f.suffix.lower() not in _NOT_INPUTS:
                h.update(f.name.encode() + b"\0")
                with open(f, "rb") as fh:
                    h.update(hashlib.file_digest(fh, "sha256").digest())
    except OSError:
        return None
    return h.hexdigest()


def _checks_path() -> Path:
    return cache_dir() / CHECKS_FILE


def _read_checks() -> dict:
    try:
        table = json.loads(_checks_path().read_text())
    except (OSError, ValueError):
        return {}                                     # none yet, or damaged: check again
    return table if isinstance(table, dict) else {}


def _remember_check(key: str) -> None:
    """Record a passed check (the newest ``_CHECKS_KEPT``); a lost race or a read-only home only costs a re-check."""
    table = _read_checks()
    table.pop(key, None)
    table[key] = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        write_json(_checks_path(), dict(list(table.items())[-_CHECKS_KEPT:]))
    except OSError:
        pass


# --- reader ---------------------------------------------------------------------------------

class TextFeatures(SegmentIndex):
    """The whole text cache in RAM; ``tf[seg_id] -> SegmentText``."""

    what = "text cache"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        expect(self.path.is_file(), str(self.path), "text cache not found (run `python -m workbench text-features`)")
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
                expect(self.attrs.get("format_version") == FORMAT_VERSION, str(self.path),
                       f"format_version {self.attrs.get('format_version')!r}, expected {FORMAT_VERSION}; rebuild it "
                       "with `python -m workbench text-features`")
                a = {k: f[k][()] for k in f.keys()}
        except (OSError, RuntimeError, KeyError) as e:
            raise DataError(f"{self.path}: not a readable text cache ({str(e).splitlines()[0][:160]}); the file is "
                            "truncated or corrupt, rebuild it with `python -m workbench text-features --force`") from None
        for name in ("seg_ids", "splits", "sentences", "obj_offset", "obj_count", "obj_class", "obj_glove", "obj_ctx",
                     "sent_ctx", "tok_offset", "tok_count", "tok_ids", "tok_vocab", "tok_vocab_glove"):
            expect(name in a, str(self.path), f"missing dataset /{name}; rebuild it with `python -m workbench text-features`")
        S, O = len(a["seg_ids"]), len(a["obj_class"])
        for off, cnt, total in (("obj_offset", "obj_count", O), ("tok_offset", "tok_count", len(a["tok_ids"]))):
            ok = (a[off].shape == (S,) and a[cnt].shape == (S,) and (a[cnt] >= 0).all()
                  and (a[off] == np.concatenate([[0], np.cumsum(a[cnt])[:-1]])).all() and int(a[cnt].sum()) == total)
            expect(bool(ok), str(self.path), f"/{off} must equal cumsum(/{cnt}) over {S} segments and cover {total} "
                   "rows; the cache is corrupt, rebuild it with `python -m workbench text-features --force`")
        for name in ("obj_glove", "obj_ctx", "sent_ctx", "tok_vocab_glove"):
            bad = np.flatnonzero(~np.isfinite(a[name]).reshape(len(a[name]), -1).all(1))
            expect(bad.size == 0, str(self.path), f"non-finite values in /{name} (row {bad[:1].tolist()}); the cache "
                   "is corrupt, rebuild it with `python -m workbench text-features --force`")
        dec = lambda x: [s.decode() if isinstance(s, bytes) else s for s in x]  # noqa: E731
        self._set_ids(a["seg_ids"])
        self.splits: list[str] = dec(a["splits"])
        self.sentences: list[str] = dec(a["sentences"])
        self.obj_name = dec(a["obj_name"])
        self.tok_vocab = dec(a["tok_vocab"])
        self._a = a

    def check_inputs(self, data_dir: str | Path, fmt: DatasetFormat | None = None) -> None:
        """Refuse a stale cache: the segments, sentences and objects of ``data_dir`` must be those
        the cache was built from (its ``inputs_hash``, recomputed with the cache's own identity:
        encoder, GloVe source, OOV policies - so no encoder is loaded)."""
        keys = ("format_version", "encoder", "encoder_revision", "glove_source", "glove_fingerprint", "oov_policy",
                "token_oov_policy", "bf16")
        if "inputs_hash" not in self.attrs or any(k not in self.attrs for k in keys):
            raise DataError(f"{self.path}: records no inputs hash; rebuild it with "
                            f"`python -m workbench text-features --data {data_dir} --force`")
        identity = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.attrs.items() if k in keys}
        seen = _check_key(data_dir, identity, str(self.attrs["inputs_hash"]))
        if seen is not None and seen in _read_checks():
            return                                    # these very files passed this check before
        digest = _inputs_hash(collect_inputs(data_dir, fmt), identity)
        if digest != self.attrs["inputs_hash"]:
            raise DataError(f"{self.path}: stale text cache: the segments, sentences or objects of {data_dir} changed "
                            "since it was built (inputs hash differs); rebuild it with "
                            f"`python -m workbench text-features --data {data_dir}`")
        if seen is not None:
            _remember_check(seen)

    @property
    def ctx_dim(self) -> int:
        return int(self.attrs["ctx_dim"])

    @property
    def glove_dim(self) -> int:
        return int(self.attrs["glove_dim"])

    def __getitem__(self, seg_id: str) -> SegmentText:
        a, i = self._a, self.index(seg_id)
        o = slice(a["obj_offset"][i], a["obj_offset"][i] + a["obj_count"][i])
        t = slice(a["tok_offset"][i], a["tok_offset"][i] + a["tok_count"][i])
        return SegmentText(a["obj_class"][o], a["obj_glove"][o], a["obj_ctx"][o], a["sent_ctx"][i],
                           a["tok_vocab_glove"][a["tok_ids"][t]], a["obj_tok_span"][o], self.sentences[i],
                           self.obj_name[o], a["obj_char_span"][o], a["obj_in_sentence"][o],
                           [self.tok_vocab[j] for j in a["tok_ids"][t]])

    def array(self, name: str) -> np.ndarray:
        """A raw flat dataset (e.g. "obj_ctx", "obj_class", "obj_offset") for whole-cache statistics."""
        expect(name in self._a, str(self.path), f"no dataset {name!r}")
        return self._a[name]


# --- CLI ------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="dataset directory (class_file.csv, seg_sentence_dict.json, split dicts)")
    p.add_argument("--encoder", default="minilm", help="hub name (cached locally), model directory, or 'minilm'")
    p.add_argument("--glove", default=None, help="'yc2-vocab' (vendored), 'minilm-static' or a glove.*.txt / JSON "
                   "path (default: the dataset format's: yc2-vocab; minilm-static for ActivityNet-Entities)")
    p.add_argument("--out", default="", help="output HDF5 (default DIR/text_features.h5)")
    p.add_argument("--oov", default="error", choices=OOV_POLICIES, help="OOV policy for object words")
    p.add_argument("--token-oov", default="zero", choices=OOV_POLICIES,
                   help="OOV policy for the per-token GloVe sequences (GloVe+biLSTM input)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per encoder batch")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast on CPU (features agree to cos > 0.9999)")
    p.add_argument("--allow-download", action="store_true", help="download a hub encoder missing from the cache")
    p.add_argument("--force", action="store_true", help="rebuild even when the inputs are unchanged")


def run(args: argparse.Namespace) -> int:
    build_text_features(args.data, args.encoder, args.glove, args.out or None, oov=args.oov,
                        token_oov=args.token_oov, batch_size=args.batch_size, device=args.device,
                        bf16=args.bf16, allow_download=args.allow_download, force=args.force)
    return 0
