"""Issue 21 item 4: the fraction of objects whose CAOS positive d+ is the object itself."""
import numpy as np
import torch

from workbench.model.caos import caos_means, self_positive
from workbench.model.diagnostics import epoch_batches, epoch_self_positive, self_positive_fraction


def test_self_positive_on_a_hand_built_batch():
    # sentence 0: classes 1, 2; sentence 1: 1, 3; sentence 2: 4 twice (a repeat within one sentence)
    cls = torch.tensor([[1, 2], [1, 3], [4, 4]])
    mask = torch.ones_like(cls, dtype=torch.bool)
    assert self_positive(cls, mask).tolist() == [False, True, False, True, False, False]
    assert self_positive(cls, mask, other_sentence=True).tolist() == [False, True, False, True, True, True]
    pad = torch.tensor([[1, -1], [1, 7]])          # a padded slot never counts, as object or as partner
    assert self_positive(pad, pad >= 0).tolist() == [False, False, True]
    classes = [[1, 2], [1, 3], [4, 4], [2]]
    assert self_positive_fraction(classes, [[0, 1, 2]]) == 2 / 6
    assert self_positive_fraction(classes, [[0, 1, 2], [2, 3]]) == 3 / 9   # batch 2: 4, 4 paired; 2 alone
    assert self_positive_fraction(classes, [[0, 1, 2]], other_sentence=True) == 4 / 6


def test_self_positive_is_where_d_plus_is_the_objects_own_cosine():
    g = torch.Generator().manual_seed(0)
    cls = torch.randint(0, 6, (5, 3), generator=g)
    mask = torch.rand(5, 3, generator=g) > 0.2
    ef, concept = torch.randn(5, 3, 8, generator=g), torch.randn(5, 3, 8, generator=g)
    d_pos, _, _ = caos_means(ef, concept, cls, mask)
    own = torch.nn.functional.cosine_similarity(ef[mask], concept[mask], dim=-1)
    sp = self_positive(cls, mask)
    assert 0 < int(sp.sum()) < len(sp)
    assert torch.allclose(d_pos[sp], own[sp], atol=1e-6)
    assert not torch.isclose(d_pos[~sp], own[~sp], atol=1e-6).all()


def test_epoch_batches_are_the_batches_the_epoch_trains_on(smoke_data):
    from workbench.config import preset
    from workbench.features.batches import TrainBatches
    from workbench.workspace import Workspace

    ws = Workspace(preset("scl", data=str(smoke_data)))
    data = TrainBatches(ws.stores["training"], ws.text, 4, 2, 3, max_segments=20)
    for epoch in (0, 1):
        plans = epoch_batches(data, epoch)
        got = [b["obj_class"] for b in data.epoch(epoch)]
        assert len(plans) == len(got) == len(data)
        for segs, oc in zip(plans, got):
            want = [list(ws.text[ws.stores["training"].seg_ids[i]].obj_class) for i in segs]
            assert [r[r >= 0].tolist() for r in oc] == want
    fr = [epoch_self_positive(data, e) for e in (0, 1)]
    assert all(0 <= f <= 1 for f in fr)
    classes = {int(i): ws.text[ws.stores["training"].seg_ids[int(i)]].obj_class for i in data.indices}
    assert fr[0] == self_positive_fraction(classes, [b for b in epoch_batches(data, 0)])
    # one batch holding every segment leaves fewer objects alone than batches of 4
    assert self_positive_fraction(classes, [data.indices]) <= fr[0]
