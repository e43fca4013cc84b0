"""Statistics of the real YouCook2-BB sentences and labels that world v2 is built from.

``real_statistics(data_dir)`` recomputes, from the vendored files (``data/youcook2_bb``), every number
``SIMULATOR.md`` quotes: cue rates by source and kind, per class, the containers and how often they
follow a preposition, the top-10 share and the pronoun share of labels, and the statistics the world's
knobs are set from (twin rate, surprise rate, class frequencies; world v3's same-sentence twin rate and its
compound heads).

``python -m workbench.sim.stats [DATA_DIR]`` prints them as JSON.
"""
from __future__ import annotations

import functools
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from .cues import CONTAINER_NAMES, GROUPS, KINDS, Mention, carry_over, compound_heads, parse_mentions
from ..datasets.yc2 import SPLIT_DICT_NAMES, load_class_file, load_sentences, load_split_dict
from ..paths import YC2_DATA
from ..records import parse_seg_key

REAL_DATA = YC2_DATA


@functools.lru_cache(maxsize=4)
def parsed_corpus(data_dir: str | Path = REAL_DATA) -> dict[str, list[Mention]]:
    """{segment key: its sentence's mentions with cues, carried cues included} for every sentence of
    ``seg_sentence_dict.json`` (a video's segments in order, over all splits)."""
    data_dir = Path(data_dir)
    vocab = load_class_file(data_dir / "class_file.csv")
    sentences = load_sentences(data_dir / "seg_sentence_dict.json")
    by_video: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for key in sentences:
        vid, seg = parse_seg_key(key)
        by_video[vid].append((seg, key))
    out: dict[str, list[Mention]] = {}
    for vid, segs in by_video.items():
        keys = [k for _, k in sorted(segs)]
        mentions = [parse_mentions(sentences[k], vocab) for k in keys]
        carry_over(mentions)
        out.update(zip(keys, mentions))
    return out


def _pct(a: float, b: float) -> float:
    return round(100.0 * a / b, 2) if b else 0.0


def cue_statistics(mentions: list[Mention], num_classes: int, names: list[str]) -> dict:
    """Cue rates (percent of non-pronoun, non-negated mentions) overall, by source, kind and class."""
    ms = [m for m in mentions if not m.is_pronoun]
    n = len(ms)
    own = [m for m in ms if m.sentence_cues]
    by_source = {s: _pct(sum(any(c.source == s for c in m.cues) for m in ms), n)
                 for s in ("prenominal", "patient", "compound")}
    by_kind = {k: _pct(sum(any(c.kind == k for c in m.sentence_cues) for m in ms), n) for k in KINDS}
    per_class = {}
    for cid in range(num_classes):
        mc = [m for m in ms if m.class_id == cid]
        if len(mc) < 20:
            continue
        words = Counter(c.word for m in mc for c in {(c.word): c for c in m.sentence_cues}.values())
        per_class[names[cid]] = {"mentions": len(mc), "cued": _pct(sum(bool(m.sentence_cues) for m in mc), len(mc)),
                                 "top_cues": {w: _pct(k, len(mc)) for w, k in words.most_common(3)}}
    return {"mentions": n, "cued": _pct(len(own), n), "by_source": by_source, "by_kind": by_kind,
            "carried": _pct(sum(not m.sentence_cues and any(c.source == "carried" for c in m.cues) for m in ms), n),
            "negated": _pct(sum(m.negated for m in ms), n), "per_class": per_class}


@functools.lru_cache(maxsize=4)
def _real_statistics(data_dir: str) -> str:
    data_dir = Path(data_dir)
    vocab = load_class_file(data_dir / "class_file.csv")
    C = len(vocab)
    corpus = parsed_corpus(data_dir)
    dicts = {s: load_split_dict(data_dir / f, C) for s, f in SPLIT_DICT_NAMES.items()}
    pronoun_ids = {vocab.forms[p] for p in ("it", "them", "that", "they")}
    container_ids = {vocab.forms[c] for c in CONTAINER_NAMES}
    out: dict = {"source": str(data_dir)}
    for split, short in (("training", "train"), ("validation", "val")):
        mentions = [m for k in dicts[split] for m in corpus.get(k, [])]
        out[f"cues_{short}"] = cue_statistics(mentions, C, vocab.names)
    labels = {s: [c for e in d.values() for c in e.class_ids] for s, d in dicts.items()}
    train_labels = labels["training"]
    counts = Counter(train_labels)
    out["labels"] = {
        "training": len(train_labels),
        "top10_share": _pct(sum(k for _, k in counts.most_common(10)), len(train_labels)),
        "pronoun_share_train": _pct(sum(c in pronoun_ids for c in train_labels), len(train_labels)),
        "pronoun_share_val": _pct(sum(c in pronoun_ids for c in labels["validation"]), len(labels["validation"])),
        "class_counts_train": [counts.get(c, 0) for c in range(C)],
    }
    train_mentions = [m for k in dicts["training"] for m in corpus.get(k, [])]
    cont = [m for m in train_mentions if m.class_id in container_ids]
    out["containers"] = {
        "classes": list(CONTAINER_NAMES),
        "label_share": _pct(sum(c in container_ids for c in train_labels), len(train_labels)),
        "segments_naming_one": _pct(sum(any(c in container_ids for c in e.class_ids) for e in dicts["training"].values()),
                                    len(dicts["training"])),
        "after_preposition": _pct(sum(m.after_preposition for m in cont), len(cont)),
    }
    # Knob sources. twin: a cued mention whose class appears in another state elsewhere in the video.
    by_video: dict[str, dict[int, set]] = defaultdict(lambda: defaultdict(set))
    for key, ms in corpus.items():
        vid, _ = parse_seg_key(key)
        for m in ms:
            if not m.is_pronoun and not m.negated:
                by_video[vid][m.class_id].add(m.end_state())
    cued = [(parse_seg_key(k)[0], m) for k in dicts["training"] for m in corpus.get(k, [])
            if not m.is_pronoun and m.sentence_cues]
    twin = sum(len(by_video[v][m.class_id] - {m.end_state()}) > 0 for v, m in cued)
    ms_np = [m for m in train_mentions if not m.is_pronoun]
    uncued = [m for m in ms_np if not m.sentence_cues]
    patients = [m for m in ms_np if any(c.source == "patient" for c in m.cues)]
    out["knob_sources"] = {
        "twin_rate": _pct(twin, len(cued)),
        "surprise_rate": _pct(sum(any(c.source == "carried" for c in m.cues) for m in uncued), len(uncued)),
        "patient_rate": _pct(len(patients), len(ms_np)),
        "entry_rate": _pct(sum(m.enters for m in ms_np), len(ms_np)),
    }
    out["knob_sources"]["glove_group_excess"] = glove_group_excess(data_dir)
    train_sentences = [corpus.get(k, []) for k in dicts["training"]]
    out["knob_sources"]["same_sentence_twin_rate"] = same_sentence_twin_rate(train_sentences)
    sentences = load_sentences(data_dir / "seg_sentence_dict.json")
    out["compound_heads"] = compound_head_statistics(
        [(ms, compound_heads(ms, sentences[k], vocab)) for k, ms in zip(dicts["training"], train_sentences)], vocab)
    # State frequencies per class (training end states of non-pronoun mentions, "" = plain).
    states: dict[int, Counter] = defaultdict(Counter)
    for m in ms_np:
        if not m.negated:
            states[m.class_id][m.end_state()] += 1
            if m.start_state() != m.end_state():
                states[m.class_id][m.start_state()] += 1
    out["class_states"] = {vocab.names[c]: dict(cnt.most_common()) for c, cnt in sorted(states.items())}
    return json.dumps(out)


def same_sentence_twin_rate(sentences: list[list[Mention]]) -> float:
    """Percent of cued mentions (non-pronoun, not negated, a state cue in their sentence) whose class the same
    sentence mentions again in another state, as the sentence alone states it (start > end; plain counts:
    `add the chopped onion and the green onion`, `add chopped onion and onion`): world v3's twin rate.
    ``sentences``: each sentence's mentions (``parse_mentions``)."""
    cued = twins = 0
    for mentions in sentences:
        ms = [m for m in mentions if not m.is_pronoun and not m.negated]
        stated = [(m.start_state(carried=False), m.end_state(carried=False)) for m in ms]
        for i, m in enumerate(ms):
            if m.sentence_cues:
                cued += 1
                twins += any(o.class_id == m.class_id and stated[j] != stated[i] for j, o in enumerate(ms) if j != i)
    return _pct(twins, cued)


def compound_head_statistics(sentences: list[tuple[list[Mention], list[str]]], vocab) -> dict:
    """How often a non-pronoun mention names a substance by a compound head (``cues.compound_heads``: world v3's
    looks), in percent of non-pronoun mentions: in all, with a head that is a class, with another head; the
    most frequent heads. ``sentences``: (mentions, their heads) per sentence."""
    heads = [h for ms, hs in sentences for m, h in zip(ms, hs) if not m.is_pronoun]
    named = Counter(h for h in heads if h)
    n_class = sum(k for h, k in named.items() if h in vocab.forms)
    return {"mentions": len(heads), "with_head": _pct(sum(named.values()), len(heads)),
            "class_head": _pct(n_class, len(heads)), "word_head": _pct(sum(named.values()) - n_class, len(heads)),
            "top_heads": dict(named.most_common(12))}


def glove_group_excess(data_dir: Path) -> float:
    """Mean GloVe cosine of two class names of the same group minus that of two names of different
    groups (the class-name similarity the groups add), from the vendored GloVe vectors."""
    vectors = json.loads((data_dir / "word_embedding_glove.json").read_text())
    names = [(g, w) for g, ws in GROUPS.items() for w in ws.split() if w in vectors]
    v = np.array([vectors[w] for _, w in names], dtype=np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    cos = v @ v.T
    g = np.array([a for a, _ in names])
    same, off = g[:, None] == g[None, :], ~np.eye(len(g), dtype=bool)
    return round(float(cos[same & off].mean() - cos[~same].mean()), 4)


def real_statistics(data_dir: str | Path = REAL_DATA) -> dict:
    """Every statistic world v2 uses or quotes, recomputed from ``data_dir`` (a fresh dict each call)."""
    return json.loads(_real_statistics(str(Path(data_dir).resolve())))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    s = real_statistics(argv[0] if argv else REAL_DATA)
    s.pop("class_states")
    s["labels"].pop("class_counts_train")
    print(json.dumps(s, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
