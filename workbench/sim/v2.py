"""World v2: object appearance follows the states the real sentences state (see SIMULATOR.md beside this file).

The generator works per segment in three independent random streams fixed by (seed, segment key):
``states`` (what each object is and how it changes), ``boxes`` (tracks and proposals) and ``features``
(region features). ``segment_truth`` draws the first, ``simulate_segment_v2`` all three and returns
the same ``SegmentSim`` arrays as world v1 (so any writer of those arrays serves both worlds).
Nothing here is specific to YouCook2 beyond the plans it is given and the class groups / lexicon.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .base import (CLUTTER_SIZE, FRAME, GOOD_JITTER, OBJECT_WIDTH, POOR_JITTER, PRONOUNS, SegmentPlan, SegmentSim,
                   UnitVectors, clutter_boxes, clutter_vectors, object_tracks, overlap_weights, pick_distractors,
                   proposal_sources, proposals_around, region_features, seeded_rng, to_frame, unit, visibility)
from ..boxes import clip_boxes
from .cues import CONTAINER_NAMES, GROUPS, Mention
from .knobs import SOURCES, WorldKnobs
from ..text.glove import load_glove

GENERATOR_VERSION_V2 = "yc2-sim-2"
WORD_SOURCE = "yc2-vocab"                     # the vendored GloVe vectors the text features read (text/glove.py)
KITCHEN = ("board", "stove", "counter")       # shared background surfaces of every video
MENTION_TYPES = ("cued", "carried", "uncued", "pronoun")


@dataclass
class ObjectTruth:
    """What one object of a segment is, frame by frame (named objects first, in plan order)."""

    cls: int                     # class whose appearance it has (a pronoun: its referent)
    label_cls: int               # class of its label (-1: unnamed)
    role: str                    # named | twin | hand | distractor
    states: list[str]            # state per frame ("" = plain)
    mention: str = ""            # named: cued | carried | uncued | pronoun
    lang: str = ""               # named: what the sentence alone says, "start>end"
    switch: int = -1             # first frame of the new state (-1: no change)
    enters: bool = False         # enters the scene mid-segment
    container: bool = False
    nest_in: int = -1            # index of the container it sits in
    of: int = -1                 # twin / hand: index of the object it belongs to


@dataclass
class SegmentTruth:
    objects: list[ObjectTruth] = field(default_factory=list)
    num_named: int = 0


class WorldV2:
    """Appearance vectors of classes, states, hands and backgrounds for one (seed, D, knobs)."""

    name = "v2"                    # dataset.json's "world"
    knob_sources = SOURCES         # where each knob's default comes from (dataset.json's "knob_sources")
    twins_share_frames = True      # a twin is visible exactly in the frames of the object it twins

    def __init__(self, seed: int, feature_dim: int, knobs: WorldKnobs, vocab, statistics: dict,
                 corpus: dict[str, list[Mention]]):
        self.seed, self.dim, self.knobs, self.vocab = int(seed), int(feature_dim), knobs, vocab
        self.corpus = corpus
        self.group_of = {vocab.forms[w]: g for g, ws in GROUPS.items() for w in ws.split() if w in vocab.forms}
        self.container_ids = {vocab.forms[c] for c in CONTAINER_NAMES}
        self.class_states = {vocab.forms[n]: s for n, s in statistics["class_states"].items()}
        counts = np.asarray(statistics["labels"]["class_counts_train"], dtype=np.float64)
        logn = np.log(np.maximum(counts, 1.0))
        seen = counts > 0
        self.z = (logn - np.median(logn[seen])) / max(float(logn[seen].std()), 1e-9)   # (C,) standardised log freq
        self.vector = UnitVectors(self.seed, self.dim, "v2")    # vector(*parts) -> unit (D,) fixed by (seed, parts)
        self._cache: dict[tuple, np.ndarray] = {}               # appearance(cid, state)
        # appearance_from_words > 0: the projected GloVe vector of each class name (word_looks); else nothing is read
        self.word_looks: dict[int, np.ndarray] = {}
        self.words_info: dict = {}
        if knobs.appearance_from_words > 0:
            self.word_looks, self.words_info = word_looks(self.seed, self.dim, vocab)

    def random_class_appearance(self, cid: int) -> np.ndarray:
        """The class's random look: its own vector mixed with its group's (group_share)."""
        g = self.knobs.group_share
        own = self.vector("class", cid)
        if cid not in self.group_of or g == 0:
            return own
        return unit(np.sqrt(g) * self.vector("group", self.group_of[cid]) + np.sqrt(1 - g) * own)

    def class_appearance(self, cid: int) -> np.ndarray:
        """The class's base look (before states): its random look, moved toward its name's projected GloVe
        vector by w = appearance_from_words (a class whose name has no vector keeps its random look)."""
        a = self.random_class_appearance(cid)
        w = self.knobs.appearance_from_words
        u = self.word_looks.get(cid)
        if w == 0 or u is None:
            return a
        return unit((1 - w) * a + w * u)

    def appearance(self, cid: int, state: str) -> np.ndarray:
        """Noiseless appearance (D,) of class ``cid`` in ``state``: the class look moved toward the
        state's look by the fraction ρ (ρ = 1: the state look alone); the state look is partly shared
        by every class, partly class-specific."""
        key = ("app", cid, state)
        v = self._cache.get(key)
        if v is None:
            v = self._cache[key] = self.in_state(self.class_appearance(cid), state, ("class-state", cid, state))
        return v

    def in_state(self, base: np.ndarray, state: str, specific: tuple) -> np.ndarray:
        """``base`` (D,) moved toward the look of ``state`` by the fraction ρ ("" or ρ = 0: ``base``); the state
        look is ``state_share`` shared by every class, the rest the vector of ``specific`` (its class's part)."""
        if not state or not self.knobs.context:
            return base
        h = self.knobs.state_share
        d = unit(np.sqrt(h) * self.vector("state", state) + np.sqrt(1 - h) * self.vector(*specific))
        return unit((1 - self.knobs.context) * base + self.knobs.context * d)    # moved toward the state look

    def detect_prob(self, cid: int) -> float:
        k = self.knobs
        return float(np.clip(k.detect_prob + k.detect_slope * self.z[cid], 0.02, 0.98))

    def share(self, cid: int) -> float:
        k = self.knobs
        return float(k.object_share * np.exp(k.share_slope * self.z[cid]))

    def meta(self) -> dict:
        """What dataset.json records of this world beyond its knobs (after its splits)."""
        meta = {"world": self.name, "knob_sources": self.knob_sources}
        if self.words_info:                    # appearance_from_words > 0: which word vectors the looks follow
            meta["appearance_words"] = self.words_info
        return meta

    def segment(self, plan: SegmentPlan) -> tuple[SegmentSim, "SegmentTruth"]:
        """Every array of one segment and its truth (``simulate_segment_v2``)."""
        return simulate_segment_v2(self, plan)


def word_looks(seed: int, dim: int, vocab, source: str = WORD_SOURCE) -> tuple[dict[int, np.ndarray], dict]:
    """({class id: unit(P g_c)}, what dataset.json records): g_c the GloVe vector of the class's name (its
    singular name, else the first of its other forms that the source holds), P a (D, word dim) Gaussian
    projection fixed by the world seed, so classes whose names are near in GloVe look alike. Pronouns
    (it, them, that, they: no object class) and names without a vector get none (they keep their random look)."""
    glove = load_glove(source)
    proj = seeded_rng(seed, "v2", "word-projection").standard_normal((dim, glove.dim))      # (D, W)
    looks, missing = {}, []
    for cid, name in enumerate(vocab.names):
        if cid in PRONOUNS:
            continue
        forms = [name] + [f for f in vocab.alternatives(cid) if f != name]
        g = next((glove.get(f) for f in forms if f in glove), None)
        if g is None:
            missing.append(name)
            continue
        looks[cid] = unit(proj @ np.asarray(g, dtype=np.float64))
    info = {"source": glove.source, "fingerprint": glove.fingerprint, "classes_tied": len(looks),
            "classes_without_vector": missing}
    return looks, info


def _mention_of(mentions: list[Mention], class_ids: list[int]) -> list[Mention | None]:
    """The k-th repeat of a class takes its k-th mention, repeats beyond reuse the last, absent -> None
    (the rule of ``text.objects.objects_for_segment``)."""
    by_class: dict[int, list[Mention]] = {}
    for m in mentions:
        by_class.setdefault(m.class_id, []).append(m)
    seen: dict[int, int] = {}
    out = []
    for c in class_ids:
        ms = by_class.get(c, [])
        k = seen.get(c, 0)
        seen[c] = k + 1
        out.append(ms[min(k, len(ms) - 1)] if ms else None)
    return out


def segment_truth(world: WorldV2, plan: SegmentPlan) -> SegmentTruth:
    """Objects of a segment and their states per frame (the ``states`` random stream)."""
    k = world.knobs
    rng = seeded_rng(world.seed, "v2-states", plan.key)
    t = plan.num_frames
    mentions = _mention_of(world.corpus.get(plan.key, []), plan.class_ids)
    objs: list[ObjectTruth] = []
    for i, (label, look, m) in enumerate(zip(plan.class_ids, plan.looks_like, mentions)):
        if m is None or m.negated:
            start = end = lang_s = lang_e = ""
            mention = "pronoun" if label in PRONOUNS else "uncued"
        else:
            start, end = m.start_state(), m.end_state()
            lang_s, lang_e = m.start_state(carried=False), m.end_state(carried=False)
            mention = ("pronoun" if label in PRONOUNS else "cued" if m.sentence_cues
                       else "carried" if m.cues else "uncued")
        if label not in PRONOUNS and rng.random() < k.surprise:
            options = {s: n for s, n in world.class_states.get(look, {}).items() if s != start}
            if options:
                names = sorted(options)
                p = np.array([options[s] for s in names], dtype=np.float64)
                new = names[int(rng.choice(len(names), p=p / p.sum()))]
                end = new if end == start else end
                start = new
        switch = -1
        if end != start and t >= 2 and rng.random() < k.switch_prob:
            switch = int(rng.integers(1, t))
        elif end != start:
            start = end
        states = [start if switch < 0 or f < switch else end for f in range(t)]
        enters = bool(m is not None and m.enters and t >= 2 and rng.random() < k.entry_prob)
        objs.append(ObjectTruth(look, label, "named", states, mention, f"{lang_s}>{lang_e}", switch, enters,
                                look in world.container_ids))
    named = len(objs)
    containers = [i for i, o in enumerate(objs) if o.container]
    for i in range(named):
        o = objs[i]
        if containers and not o.container and rng.random() < k.nest_prob:
            o.nest_in = containers[0]
        if o.label_cls not in PRONOUNS and not o.container and any(o.states) and rng.random() < k.twin_prob:
            # in another state than the object in every frame: plain beside a stated object; beside an
            # object that is plain in some frames, a state of its class it never has
            twin_state = ""
            if "" in o.states:
                options = {s: n for s, n in world.class_states.get(o.cls, {}).items() if s and s not in o.states}
                if not options:
                    continue
                names = sorted(options)
                p = np.array([options[s] for s in names], dtype=np.float64)
                twin_state = names[int(rng.choice(len(names), p=p / p.sum()))]
            objs.append(ObjectTruth(o.cls, -1, "twin", [twin_state] * t, of=i, nest_in=o.nest_in))
    acted = [i for i, m in enumerate(mentions) if m is not None and m.verb and not objs[i].container]
    if acted:
        objs.append(ObjectTruth(-1, -1, "hand", [""] * t, of=acted[0]))
    for c in pick_distractors(rng, plan.distractor_pool, k.max_distractors):
        objs.append(ObjectTruth(int(c), -1, "distractor", [""] * t))
    return SegmentTruth(objs, named)


@dataclass
class SegmentBoxes:
    gt: np.ndarray          # (O, T, 4) pixels
    outside: np.ndarray     # (O, T) bool
    occluded: np.ndarray    # (O, T) bool
    rpn: np.ndarray         # (T, P, 4) in 224 space
    gt224: np.ndarray       # (O, T, 4)


def segment_boxes(world: WorldV2, plan: SegmentPlan, truth: SegmentTruth) -> SegmentBoxes:
    """GT tracks of every object and the frame proposals (the ``boxes`` random stream)."""
    k = world.knobs
    rng = seeded_rng(world.seed, "v2-boxes", plan.key)
    t, p = plan.num_frames, k.num_proposals
    objs = truth.objects
    o = len(objs)
    width, height = float(plan.rwidth), float(plan.rheight)
    gt, outside = object_tracks(rng, o, t, width, height, OBJECT_WIDTH, k.min_visible_frac)
    frames = np.arange(t)
    for i, ob in enumerate(objs):
        if ob.enters:                                     # arrives mid-segment, stays to the end
            outside[i] = frames < int(rng.integers(1, t))
        if ob.nest_in >= 0:                               # inside its container's box, moving with it
            c = gt[ob.nest_in]                            # (T, 4)
            s = rng.uniform(0.35, 0.7, size=2)
            u = rng.uniform(0, 1, size=2) * (1 - s)
            cw, ch = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
            x1, y1 = c[:, 0] + u[0] * cw, c[:, 1] + u[1] * ch
            gt[i] = np.stack([x1, y1, x1 + s[0] * cw, y1 + s[1] * ch], -1)
        if ob.role == "twin" and world.twins_share_frames:  # in the same frames as the object it twins
            outside[i] = outside[ob.of]
        if ob.role == "hand":                             # beside the acted-on object, in hand_prob of its frames
            b = gt[ob.of]
            bw, bh = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
            side = 1.0 if rng.random() < 0.5 else -1.0
            cx = (b[:, 0] + b[:, 2]) / 2 + side * 0.55 * bw
            cy = (b[:, 1] + b[:, 3]) / 2 + 0.3 * bh
            hw, hh = 0.6 * bw, 0.6 * bh
            gt[i] = clip_boxes(np.stack([cx - hw / 2, cy - hh / 2, cx + hw / 2, cy + hh / 2], -1), width, height)
            outside[i] = outside[ob.of] | (rng.random(t) >= k.hand_prob)
    occluded = ~outside & (rng.random((o, t)) < k.occluded_prob)
    gt224 = to_frame(gt, width, height)                                    # (O, T, 4)

    share_o = np.array([world.share(ob.cls) if ob.role == "named" else k.object_share for ob in objs])
    pdet = np.array([world.detect_prob(ob.cls) if ob.role == "named" else k.detect_prob for ob in objs])
    source = proposal_sources(rng, ~outside.T, share_o, k.max_object_share, p)     # (T, P) in 0..O
    detected = rng.random((t, o)) < pdet                                   # (T, O)
    boxes = proposals_around(rng, source, detected, gt224, GOOD_JITTER, POOR_JITTER)  # (T, P, 4)
    boxes = np.where((source == o)[..., None], clutter_boxes(rng, t, p, CLUTTER_SIZE, FRAME, FRAME), boxes)
    return SegmentBoxes(gt, outside, occluded, boxes.astype(np.float32), gt224)


def noiseless(world: WorldV2, ob: ObjectTruth) -> np.ndarray:
    """(T, D) appearance of an object per frame without instance noise."""
    if ob.role == "hand":
        return np.repeat(world.vector("hand")[None], len(ob.states), 0)
    return np.stack([world.appearance(ob.cls, s) for s in ob.states])


def simulate_segment_v2(world: WorldV2, plan: SegmentPlan) -> tuple[SegmentSim, SegmentTruth]:
    """Every array of one segment (``SegmentSim``, as world v1) and its truth."""
    k, d = world.knobs, world.dim
    truth = segment_truth(world, plan)
    bx = segment_boxes(world, plan, truth)
    rng = seeded_rng(world.seed, "v2-features", plan.key)
    t, p = plan.num_frames, k.num_proposals
    objs = truth.objects
    o = len(objs)
    base = np.stack([noiseless(world, ob) for ob in objs])                 # (O, T, D)
    inst = k.instance_spread * rng.standard_normal((o, 1, d)) / np.sqrt(d)
    appearance = unit(base + inst)                                        # (O, T, D)

    # the IoU of the proposals as written (float32), unlike world v1
    weight, rest = overlap_weights(bx.rpn.astype(np.float64), bx.gt224, visibility(bx.outside, bx.occluded,
                                                                                  k.occluded_weight))
    scene = world.vector("scene", plan.vid)
    kitchen = np.stack([world.vector("kitchen", s) for s in KITCHEN])      # (3, D)
    which = rng.integers(0, len(KITCHEN), (t, p))
    clutter = clutter_vectors(rng, k.clutter_scene * scene + k.background_share * kitchen[which], t, p)  # (T, P, D)
    feats = region_features(rng, np.einsum("tpo,otd->tpd", weight, appearance), rest, clutter, k.feature_noise)
    n = truth.num_named
    sim = SegmentSim(bx.gt, bx.outside, bx.occluded, appearance[:, 0], bx.rpn, feats.astype(np.float32), n)
    return sim, truth
