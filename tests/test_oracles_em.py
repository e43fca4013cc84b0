"""The training-time oracles (issue 21): MIL-EM class prototypes with and without a perfect contextual
teacher, on a hand-built world whose answer is known, and their place in `simulate --stats`."""
import json

import numpy as np

from workbench.sim import simulate as sim
from workbench.sim.oracles import METHODS, mil_em


def _world():
    """Two classes in D = 6 (basis e0..e5), 8 bags each, 2 frames of 3 proposals.

    Class A's object looks a = e0; every A bag also holds d = e1 (something that always comes with A, never
    with B: the most A-specific region), and half of the B bags hold an unnamed A-looking object (a). So
    a is less A-specific than d: a context-free MIL-EM locks onto d. B's object b = e2; backgrounds e3..e5.
    Held out: A frames [d, a, bg] (the right answer: a) and B frames [b, bg, bg]."""
    e = np.eye(6)
    a, d, b, bg1, bg2, bg3 = e
    bags, labels = [], []
    for i in range(8):
        bags.append(np.stack([np.stack([d, a, bg1]), np.stack([bg2, d, a])]))            # A bag (F=2, P=3, D)
        labels.append(0)
    for i in range(8):
        other = a if i % 2 else bg3
        bags.append(np.stack([np.stack([b, other, bg1]), np.stack([bg2, b, bg3])]))     # B bag
        labels.append(1)
    held_a = np.stack([d, a, bg1])                                                      # (P, D): answer 1
    held_b = np.stack([bg2, bg3, b])                                                    # answer 2
    return bags, labels, (a, d, b), held_a, held_b


def test_class_em_locks_onto_the_class_specific_confuser():
    bags, labels, (a, d, b), held_a, held_b = _world()
    proto = mil_em(bags, labels)
    assert proto[0] @ d > 0.99                       # the known wrong answer of context-free MIL
    assert (held_a @ proto[0]).argmax() == 0         # picks d, not a
    assert proto[1] @ b > 0.99 and (held_b @ proto[1]).argmax() == 2


def test_teacher_in_most_cued_bags_moves_the_context_free_prototype_to_the_object():
    bags, labels, (a, d, b), held_a, held_b = _world()
    teacher = [a if (lab == 0 and i % 4 != 3) else None for i, lab in enumerate(labels)]   # 6 of 8 A bags cued
    proto = mil_em(bags, labels, teacher)
    # the cued bags pick a; the prototype leans to a, and the uncued A bags follow it in the next iteration
    assert proto[0] @ a > 0.99
    assert (held_a @ proto[0]).argmax() == 1
    assert proto[1] @ b > 0.99                       # the other class is untouched


def test_teacher_picks_are_fixed_by_the_look_not_the_prototype():
    bags, labels, (a, d, b), _, _ = _world()
    teacher = [d if lab == 0 else None for lab in labels]    # a teacher that (wrongly) names d: followed exactly
    assert mil_em(bags, labels, teacher)[0] @ d > 0.999


def test_simulate_stats_report_the_training_time_oracles(tmp_path):
    out = sim.simulate(tmp_path / "w", preset="smoke", seed=0)
    stats = json.loads((out / sim.WORLD_STATS_FILE).read_text())
    for split in ("validation", "testing"):
        for m in ("oracle_class_em", "oracle_teacher_em", "oracle_class_box"):
            assert m in METHODS and 0 <= stats[split][m]["box_micro"] <= stats[split]["upper_bound"]["box_micro"]
        assert stats[split]["learned_from"]["em_bags"] > 0
    truth = json.loads((out / sim.WORLD_TRUTH_FILE).read_text())
    train = json.loads((out / "train_dict.json").read_text())
    assert set(train) <= set(truth)                      # the oracle teacher reads the training truth
    assert all("cls" in r and "lang" in r for rows in truth.values() for r in rows)
