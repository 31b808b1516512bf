"""InfoNCE, duplicate masking, the per-combination batch sampler, GradCache equivalence, schedule."""

from __future__ import annotations

import math

import pytest
import torch

from gme_data.training.gradcache import grad_cache_step
from gme_data.training.losses import duplicate_mask, info_nce
from gme_data.training.sampler import CombinationBatchSampler
from gme_data.training.trainer import linear_schedule


def test_info_nce_matches_manual_and_masks_duplicates():
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    c = torch.nn.functional.normalize(torch.randn(7, 8), dim=-1)   # 3 positives + 4 hard negatives
    loss = info_nce(q, c, temperature=0.05)
    logits = q @ c.T / 0.05
    manual = -sum(torch.log_softmax(logits[i], 0)[i] for i in range(3)) / 3
    assert torch.allclose(loss, manual, atol=1e-5)
    # query 0 and query 2 share a positive (key "a"): column 2 is not a negative for query 0 and vice versa
    mask = duplicate_mask(["a", "b", "a"], ["a", "b", "a", "n1", "n2", "a", "n3"])
    assert mask.tolist()[0] == [False, False, True, False, False, True, False]
    assert mask.tolist()[2] == [True, False, False, False, False, True, False]
    masked = info_nce(q, c, 0.05, mask=mask)
    lm = logits.masked_fill(mask, float("-inf"))
    manual = -sum(torch.log_softmax(lm[i], 0)[i] for i in range(3)) / 3
    assert torch.allclose(masked, manual, atol=1e-5)
    # perfect alignment with low temperature -> ~0 loss
    assert info_nce(c[:3], c[:3], 0.01) < 1e-3


def test_sampler_one_combination_per_batch_and_deterministic():
    combs = ["T->T"] * 10 + ["IT->I"] * 7 + ["I->T"] * 3
    s = CombinationBatchSampler(combs, batch_size=4, seed=5)
    b0 = s.batches(0)
    assert len(b0) == len(s) == 3 + 2 + 1
    for b in b0:
        assert len({combs[i] for i in b}) == 1
    assert sorted(i for b in b0 for i in b) == list(range(20))
    assert b0 == CombinationBatchSampler(combs, batch_size=4, seed=5).batches(0)
    assert b0 != s.batches(1)
    assert len(CombinationBatchSampler(combs, 4, drop_last=True)) == 2 + 1 + 0


def test_grad_cache_equals_full_batch_gradients():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 8))
    xq, xc = torch.randn(5, 6), torch.randn(12, 6)

    def embed(x):
        return torch.nn.functional.normalize(net(x), dim=-1)

    def loss_fn(q, c):
        return info_nce(q, c, 0.05)

    torch.manual_seed(1)
    chunks_q, chunks_c = [xq[:2], xq[2:4], xq[4:]], [xc[:5], xc[5:10], xc[10:]]
    torch.manual_seed(1)
    loss_gc = grad_cache_step(embed, chunks_q, chunks_c, loss_fn)
    g_gc = [p.grad.clone() for p in net.parameters()]
    net.zero_grad()
    torch.manual_seed(1)
    reps = [embed(x) for x in chunks_q + chunks_c]
    loss = loss_fn(torch.cat(reps[:3]), torch.cat(reps[3:]))
    loss.backward()
    assert torch.allclose(loss_gc, loss.detach(), atol=1e-6)
    for a, b in zip(g_gc, [p.grad for p in net.parameters()], strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_linear_schedule_warmup_and_decay():
    f = linear_schedule(100, 0.06)
    assert f(0) == pytest.approx(1 / 6) and f(5) == pytest.approx(1.0)
    assert f(6) == pytest.approx(1.0) and f(53) == pytest.approx(47 / 94)
    assert f(100) == 0.0
    assert math.isclose(linear_schedule(10, 0.0)(0), 1.0)
