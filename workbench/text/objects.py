"""Queried objects: which objects a sentence names, and where (character span) it names them.

Tokenisation is deliberately simple and deterministic: a token is a maximal run of letters and
digits (``[^\\W_]+``), compared lower-cased. On the real YouCook2-BB training split this
reproduces the class lists of the STVG/CI ``train_dict.json`` (built with a spaCy token match of
the class file's forms) for every one of its 9,184 segments: spaCy also splits hyphens
("ginger-garlic"), possessives and contractions ("it's" -> "it", "'s"), which a whitespace split
would not.

Objects of a segment come in two flavours:

* ``find_objects``: the classes named in the sentence, in sentence order, duplicates kept
  (training objects; the ``extract-objects`` command).
* ``objects_for_segment``: the split dict's class ids (validation/testing: the annotated objects
  in annotation order, which may repeat a class more often than the sentence names it). The
  k-th repeat of a class takes the k-th mention; a repeat beyond the mentions reuses the last
  mention (``mention="reused"``); a class the sentence does not name at all gets
  ``char_span=None`` (``mention="absent"``). Its contextual feature then falls back to the class
  name encoded as a second text segment after the sentence (see ``text/contextual.py``).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from ..io import expect

TOKEN = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class QueryObject:
    """One queried object of a sentence.

    class_id is None for an open-vocabulary query (a RoboWatch noun outside the 67 classes).
    char_span is [start, end) in the sentence, None when the sentence does not name the object.
    source: "sentence" (found in the text), "annotation" (a split dict / box annotation),
    "anet" (ActivityNet-Entities process_clss/process_idx) or "query" (open vocabulary).
    mention: "named" | "reused" (a repeat beyond the sentence's mentions) | "absent".
    """

    class_id: int | None
    name: str
    char_span: tuple[int, int] | None
    source: str = "sentence"
    mention: str = "named"

    @property
    def in_sentence(self) -> bool:
        return self.char_span is not None


@dataclass
class TextInputs:
    """What a dataset format hands the text cache: every segment's sentence and queried objects."""

    seg_ids: list[str]
    splits: list[str]
    sentences: list[str]
    objects: list[list[QueryObject]]
    class_forms: dict[int, list[str]]          # class id -> every surface form (GloVe fallbacks)


def tokenize(sentence: str) -> list[tuple[str, int, int]]:
    """Tokens of a sentence as (lower-cased word, start, end) character offsets."""
    return [(m.group().lower(), m.start(), m.end()) for m in TOKEN.finditer(sentence)]


_TABLES: dict[int, tuple[dict, dict, int]] = {}   # id(forms) -> (forms, table, longest form)


def _form_table(forms: dict[str, int]) -> tuple[dict[tuple[str, ...], int], int]:
    """Forms as word tuples (cached per forms dict; the dict is kept alive with its entry)."""
    hit = _TABLES.get(id(forms))
    if hit is None or hit[0] is not forms or len(hit[1]) != len(forms):
        table = {}
        for form, cid in forms.items():
            words = tuple(w for w, _, _ in tokenize(form))
            if words:
                table[words] = cid
        hit = _TABLES[id(forms)] = (forms, table, max((len(k) for k in table), default=1))
    return hit[1], hit[2]


def find_objects(sentence: str, vocab) -> list[QueryObject]:
    """The classes of ``vocab`` (a ClassVocab: ``.names``, ``.forms``) named in ``sentence``.

    Sentence order, duplicates kept; multi-word forms match greedily, longest first.
    """
    table, longest = _form_table(vocab.forms)
    toks = tokenize(sentence)
    out: list[QueryObject] = []
    i = 0
    while i < len(toks):
        for n in range(min(longest, len(toks) - i), 0, -1):
            cid = table.get(tuple(w for w, _, _ in toks[i:i + n]))
            if cid is not None:
                out.append(QueryObject(cid, vocab.names[cid], (toks[i][1], toks[i + n - 1][2]), "sentence"))
                i += n
                break
        else:
            i += 1
    return out


def objects_for_segment(sentence: str, class_ids: Sequence[int], vocab, where: str = "segment") -> list[QueryObject]:
    """Objects of a split-dict entry, each with its mention span in ``sentence``.

    The k-th occurrence of a class in ``class_ids`` takes the k-th mention of that class in the
    sentence; repeats beyond the mentions reuse the last one (mention="reused"); a class the
    sentence never names gets char_span None (mention="absent").
    """
    mentions: dict[int, list[tuple[int, int]]] = {}
    for o in find_objects(sentence, vocab):
        mentions.setdefault(o.class_id, []).append(o.char_span)
    seen: Counter = Counter()
    out = []
    for cid in class_ids:
        expect(isinstance(cid, int) and 0 <= cid < len(vocab.names), where,
               f"class id {cid!r} outside [0, {len(vocab.names)})")
        spans = mentions.get(cid, [])
        k = seen[cid]
        seen[cid] += 1
        if not spans:
            out.append(QueryObject(cid, vocab.names[cid], None, "annotation", "absent"))
        elif k < len(spans):
            out.append(QueryObject(cid, vocab.names[cid], spans[k], "annotation", "named"))
        else:
            out.append(QueryObject(cid, vocab.names[cid], spans[-1], "annotation", "reused"))
    return out


def query_objects(sentence: str, nouns: Sequence[str], vocab=None) -> list[QueryObject]:
    """Open-vocabulary queries (RoboWatch): each noun (or phrase) located in the sentence.

    class_id is the vocab class of the noun when it is one of its forms, else None.
    """
    low = sentence.lower()
    used: Counter = Counter()
    out = []
    for noun in nouns:
        noun_l = " ".join(w for w, _, _ in tokenize(noun))
        expect(bool(noun_l), "query", f"empty query noun {noun!r}")
        starts = [m.start() for m in re.finditer(rf"(?<![^\W_]){re.escape(noun_l)}(?![^\W_])", low)]
        k = used[noun_l]
        used[noun_l] += 1
        cid = None if vocab is None else vocab.forms.get(noun_l)
        span = None if not starts else (starts[min(k, len(starts) - 1)], starts[min(k, len(starts) - 1)] + len(noun_l))
        mention = "absent" if not starts else ("named" if k < len(starts) else "reused")
        out.append(QueryObject(cid, noun_l, span, "query", mention))
    return out


def anet_objects(tokens: Sequence[str], process_clss: Sequence[Sequence[str]],
                 process_idx: Sequence[Sequence[int]], vocab: Sequence[str] | None = None,
                 where: str = "segment") -> tuple[str, list[QueryObject]]:
    """ActivityNet-Entities objects of one segment.

    The sentence is ``" ".join(tokens)``. Every (class, word index) pair of the boxes'
    ``process_clss`` / ``process_idx`` is one object, first appearance order, each pair once;
    its span is the indexed token. class_id is the index in the file's ``vocab`` (None if no vocab).
    """
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t) + 1
    sentence = " ".join(tokens)
    index = {c: i for i, c in enumerate(vocab)} if vocab is not None else None
    expect(len(process_clss) == len(process_idx), where, "process_clss and process_idx differ in length")
    seen, out = set(), []
    for clss, idx in zip(process_clss, process_idx):
        expect(len(clss) == len(idx), where, f"box classes {clss} and word indices {idx} differ in length")
        for c, i in zip(clss, idx):
            expect(isinstance(i, int) and 0 <= i < len(tokens), where, f"word index {i!r} outside the {len(tokens)} tokens")
            if (c, i) in seen:
                continue
            seen.add((c, i))
            cid = None
            if index is not None:
                expect(c in index, where, f"class {c!r} not in the vocab")
                cid = index[c]
            out.append(QueryObject(cid, c, (starts[i], starts[i] + len(tokens[i])), "anet"))
    return sentence, out


# --- CLI: extract-objects ---------------------------------------------------------------------

def extract_all(sentences: dict[str, str], vocab) -> dict[str, list[int]]:
    """{segment: [class ids named in its sentence]} for every sentence."""
    return {k: [o.class_id for o in find_objects(s, vocab)] for k, s in sentences.items()}
