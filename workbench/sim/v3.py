"""World v3 (``yc2-sim-3``): world v2 with two changes (see SIMULATOR.md, "World v3").

1. **Compound heads are looks.** A mention that modifies a compound head naming another substance (``sesame
   oil``, ``garlic powder``, ``lemon juice``, ``rice noodles``: ``cues.compound_heads``) looks like the head,
   not like its labelled class: a head that is a class takes that class's look, any other head one look of its
   own shared by every class (every ``... juice``). The head replaces the class base; ρ still moves it toward
   the object's state look (``heat the sesame oil``: heated oil). A state ``compound:<head>[+<state>]`` carries
   it, so every reader of states (twins, surprise, oracles, the oracle teacher) sees it through ``appearance``.
2. **Twins from one sentence.** ``twin_prob`` is the share of cued training mentions whose class the same
   sentence mentions again in another state (``stats.same_sentence_twin_rate``), and a twin is somewhere in
   its object's segment (its own span), not in exactly its frames.

Everything else (plans, streams, vectors, boxes, features) is world v2's: a segment without compound heads and
twins has world v2's bytes.
"""
from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cues import Cue, Mention, compound_heads, head_word
from ..datasets.yc2 import load_class_file, load_sentences
from .knobs import RANGES, SOURCES, WorldKnobs, parse_knobs
from ..paths import CLASS_FILE, SENTENCES_FILE
from .stats import parsed_corpus, real_statistics
from .v2 import WorldV2

GENERATOR_VERSION_V3 = "yc2-sim-3"
HEAD = "compound:"           # a state "compound:<head>" or "compound:<head>+<state>": the head's look (in <state>)


@dataclass(frozen=True)
class WorldKnobsV3(WorldKnobs):
    """World v2's knobs; only ``twin_prob``'s default (and meaning: a twin in the segment, on its own span) differs."""

    twin_prob: float = 0.0429          # P(a stated object has an unnamed same-class twin in another state)


SOURCES_V3 = {**SOURCES, "twin_prob": "real: share of cued training mentions whose class the same sentence mentions "
                                      "again in another stated state (stats knob_sources.same_sentence_twin_rate); "
                                      "the twin is in its object's segment on its own span (sim/SIMULATOR.md, "
                                      "World v3)"}


def parse_sets(items, base: WorldKnobsV3 | None = None, where: str = "--set") -> WorldKnobsV3:
    """``KNOB=VALUE`` strings (or a dict) applied to world v3's knobs (world v2's checks)."""
    return parse_knobs(items, base or WorldKnobsV3(), RANGES, where)


def with_head(head: str, state: str) -> str:
    """The state string of an object whose look is ``head``'s ("" none) in ``state``."""
    if not head:
        return state
    return f"{HEAD}{head}+{state}" if state else f"{HEAD}{head}"


def split_head(state: str) -> tuple[str, str]:
    """(head, state) of a state string ("" head: an ordinary state; world v2's ``compound:seeds`` -> seeds)."""
    if not state.startswith(HEAD):
        return "", state
    head, _, rest = state[len(HEAD):].partition("+")
    return head, rest


@dataclass
class HeadedMention(Mention):
    """A mention in world v3: ``head`` (its compound head's name, "" none) is its look, its other cues its state.
    ``head_carried``: the head comes from an earlier sentence's cue (``cues.carry_over``)."""

    head: str = ""
    head_carried: bool = False

    def _rest(self) -> Mention:
        return Mention(self.class_id, self.name, self.tok_span, self.char_span,
                       [c for c in self.cues if c.kind != "compound"])

    def _head(self, carried: bool) -> str:
        return self.head if carried or not self.head_carried else ""

    def start_state(self, carried: bool = True) -> str:
        return with_head(self._head(carried), self._rest().start_state(carried))

    def end_state(self, carried: bool = True) -> str:
        return with_head(self._head(carried), self._rest().end_state(carried))


def headed(mentions: list[Mention], sentence: str, vocab) -> list[HeadedMention]:
    """World v3's mentions of one sentence: the compound head of each (``cues.compound_heads``; a carried
    compound cue is a carried head); a class-pair head (``rice noodles``) becomes a compound cue of the mention."""
    out = []
    for m, head in zip(mentions, compound_heads(mentions, sentence, vocab)):
        cues, carried = list(m.cues), False
        if not head:
            cue = next((c for c in cues if c.kind == "compound" and c.source == "carried"), None)
            head, carried = (head_word(cue.word, vocab), True) if cue is not None else ("", False)
        elif not any(c.kind == "compound" and c.source == "compound" for c in cues):
            cues.append(Cue("compound", head, "compound"))
        out.append(HeadedMention(**{**vars(m), "cues": cues}, head=head, head_carried=carried))
    return out


@functools.lru_cache(maxsize=4)
def headed_corpus(data_dir: str | Path) -> dict[str, list[HeadedMention]]:
    """{segment key: world v3's mentions of its sentence} over ``parsed_corpus(data_dir)``."""
    data_dir = Path(data_dir)
    vocab = load_class_file(data_dir / CLASS_FILE)
    sentences = load_sentences(data_dir / SENTENCES_FILE)
    return {key: headed(ms, sentences[key], vocab) for key, ms in parsed_corpus(data_dir).items()}


class WorldV3(WorldV2):
    """World v2's vectors and streams; a ``compound:<head>`` state is the head's look."""

    name = "v3"
    knob_sources = SOURCES_V3
    twins_share_frames = False       # a twin is in the segment on its own span

    def __init__(self, seed: int, feature_dim: int, knobs: WorldKnobsV3, vocab, statistics: dict,
                 corpus: dict[str, list[HeadedMention]]):
        super().__init__(seed, feature_dim, knobs, vocab, statistics, corpus)
        for cid, states in self.class_states.items():   # world v2's `compound:seeds` is the head `seed` here
            merged: Counter = Counter()
            for s, n in states.items():
                head, rest = split_head(s)
                merged[with_head(head_word(head, vocab), rest) if head else s] += n
            self.class_states[cid] = dict(merged)

    def appearance(self, cid: int, state: str) -> np.ndarray:
        """A ``compound:<head>[+<state>]`` state: a class head's look in <state> (``sesame oil`` = oil); another
        head's own look (shared by every class) moved toward <state>'s look by ρ; any other state: world v2's."""
        head, rest = split_head(state)
        if not head:
            return super().appearance(cid, state)
        head = head_word(head, self.vocab)
        if head in self.vocab.forms:
            return super().appearance(self.vocab.forms[head], rest)
        key = ("head", head, rest)
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = self.in_state(self.vector("head", head), rest, ("head-state", head, rest))
        return v


def build(seed: int, dim: int, knobs: WorldKnobsV3, data_dir: Path) -> WorldV3:
    """World v3 of the real YouCook2-BB files in ``data_dir`` (``worlds.WORLDS["v3"]``)."""
    return WorldV3(seed, dim, knobs, load_class_file(Path(data_dir) / CLASS_FILE), real_statistics(data_dir),
                   headed_corpus(Path(data_dir)))
