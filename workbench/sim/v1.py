"""World v1 (generator yc2-sim-1, ``simulate --world v1``): an object's appearance is its class's look shifted by
its sentence's context words (see ``SIMULATOR.md`` beside this file). Kept byte for byte so old runs stay
reproducible (tests/test_world_v1_bytes.py); world v2 (``v2.py``) is the default."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

from .base import (CLUTTER_SIZE, FRAME, GOOD_JITTER, OBJECT_WIDTH, POOR_JITTER, STOPWORDS, SegmentPlan, SegmentSim,
                   UnitVectors, clutter_boxes, clutter_vectors, object_tracks, overlap_weights, pick_distractors,
                   proposal_sources, proposals_around, region_features, seeded_rng, to_frame, unit, visibility)
from .knobs import parse_knobs

GENERATOR_VERSION = "yc2-sim-1"
# dataset.json (and a store's world identity) record `context` under its name of generator yc2-sim-1: the
# written files stay byte for byte those of every earlier v1 world (tests/test_world_v1_bytes.py)
RECORDED_AS = {"context": "context_strength"}


@dataclass(frozen=True)
class Knobs:
    """Every knob of world v1 (recorded in dataset.json)."""

    num_proposals: int = 20            # P: proposals per frame
    context: float = 0.5               # size of the sentence-context shift of an object's appearance (0 = none)
    instance_spread: float = 0.3       # per-object deviation from its (class, context) appearance
    feature_noise: float = 0.5         # norm of the per-region Gaussian noise (appearances have norm 1)
    clutter_scene: float = 0.7         # weight of the video's scene vector in a clutter vector
    max_distractors: int = 2           # unnamed objects of the same video that co-occur in a segment
    min_visible_frac: float = 0.4      # an object is in the frame for a contiguous span of >= this fraction
    occluded_prob: float = 0.1         # per visible frame
    occluded_weight: float = 0.5       # an occluded object contributes this much to what overlaps it
    detect_prob: float = 0.58          # per (object, frame): the detector localises the object at all
    object_share: float = 0.25         # share of a frame's proposals drawn around each visible object
    max_object_share: float = 0.8      # cap on the share of all objects together (the rest is clutter)
    good_jitter: tuple = GOOD_JITTER   # jitter scale (fraction of box size) of a detected object's proposals
    poor_jitter: tuple = POOR_JITTER   # jitter scale when not detected (IoU then kept <= 0.5)
    object_width: tuple = OBJECT_WIDTH  # GT box width as a fraction of the frame width
    clutter_size: tuple = CLUTTER_SIZE  # clutter box side as a fraction of the frame side

    def to_dict(self) -> dict:
        """The knobs as dataset.json records them (``RECORDED_AS``)."""
        return {RECORDED_AS.get(k, k): v for k, v in dataclasses.asdict(self).items()}


# world v1 takes one knob on the command line (`--set context=VALUE`); the others are those of yc2-sim-1
COMMAND_LINE = {"context": "non_negative"}


def parse_sets(items: list[str] | None, where: str = "--set") -> Knobs:
    """``--set context=VALUE`` -> world v1's knobs (an unknown knob or a bad value: DataError naming it)."""
    return parse_knobs(items, Knobs(), COMMAND_LINE, where, what="world v1 knob", settable=tuple(COMMAND_LINE),
                       renamed=RECORDED_AS)


class World:
    """Appearance vectors of classes, words and scenes for one (seed, feature_dim, knobs)."""

    def __init__(self, seed: int, feature_dim: int, knobs: Knobs, class_forms: dict[str, int]):
        self.seed, self.dim, self.knobs = int(seed), int(feature_dim), knobs
        self.class_forms = class_forms
        self.vector = UnitVectors(self.seed, self.dim, "vec")   # vector(*parts) -> unit (D,) fixed by (seed, parts)

    def class_appearance(self, cid: int) -> np.ndarray:
        return self.vector("class", cid)

    def context_words(self, sentence: str) -> list[str]:
        """The sentence's words that carry context: not object names, not stop words."""
        words = re.findall(r"[a-z]+", sentence.lower())
        return [w for w in words if w not in STOPWORDS and w not in self.class_forms]

    def context_direction(self, cid: int, words: list[str]) -> np.ndarray:
        """Unit direction of the (class, context) shift: each word moves every class the same way
        (a shared part) and this class its own way (a class-specific part)."""
        if not words:
            return np.zeros(self.dim)
        v = sum(self.vector("word", w) + self.vector("class-word", cid, w) for w in words)
        return unit(v)

    def object_appearance(self, cid: int, sentence: str) -> np.ndarray:
        """Appearance (D,) of an object of class ``cid`` described by ``sentence``."""
        a = self.class_appearance(cid)
        k = self.knobs.context
        if k:
            a = a + k * self.context_direction(cid, self.context_words(sentence))
        return unit(a)

    def meta(self) -> dict:
        """What dataset.json records of this world beyond its knobs: nothing (yc2-sim-1's dataset.json)."""
        return {}

    def segment(self, plan: SegmentPlan) -> tuple[SegmentSim, None]:
        """Every array of one segment; world v1 has no truth beyond them."""
        return simulate_segment(self, plan), None


def simulate_segment(world: World, plan: SegmentPlan) -> SegmentSim:
    """Draw the objects, proposals and region features of one segment (vectorised over frames)."""
    k, d = world.knobs, world.dim
    rng = seeded_rng(world.seed, "segment", plan.key)
    t, p = plan.num_frames, k.num_proposals
    distractors = [int(c) for c in pick_distractors(rng, plan.distractor_pool, k.max_distractors)]
    o = len(plan.class_ids) + len(distractors)

    # Appearance of each object instance (O, D): named objects shift with their sentence context,
    # pronouns look like their referent, distractors look like their class.
    base = [world.object_appearance(c, plan.sentence) for c in plan.looks_like]
    base += [world.class_appearance(c) for c in distractors]
    appearance = unit(np.stack(base) + k.instance_spread * rng.standard_normal((o, d)) / np.sqrt(d))

    width, height = float(plan.rwidth), float(plan.rheight)
    gt, outside = object_tracks(rng, o, t, width, height, k.object_width, k.min_visible_frac)
    occluded = ~outside & (rng.random((o, t)) < k.occluded_prob)
    gt224 = to_frame(gt, width, height)                                    # (O, T, 4)

    # Which object each proposal is drawn around (index O = clutter), then the boxes.
    source = proposal_sources(rng, ~outside.T, k.object_share, k.max_object_share, p)   # (T, P)
    detected = rng.random((t, o)) < k.detect_prob                          # (T, O)
    boxes = proposals_around(rng, source, detected, gt224, k.good_jitter, k.poor_jitter)  # (T, P, 4)
    boxes = np.where((source == o)[..., None], clutter_boxes(rng, t, p, k.clutter_size, FRAME, FRAME), boxes)

    # Region features: the appearance of what a proposal overlaps, weighted by IoU, plus clutter and noise.
    weight, rest = overlap_weights(boxes, gt224, visibility(outside, occluded, k.occluded_weight))
    clutter = clutter_vectors(rng, k.clutter_scene * world.vector("scene", plan.vid), t, p)
    feats = region_features(rng, weight @ appearance, rest, clutter, k.feature_noise)
    return SegmentSim(gt, outside, occluded, appearance, boxes.astype(np.float32), feats.astype(np.float32),
                      len(plan.class_ids))
