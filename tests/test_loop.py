"""Training budgets in optimizer steps (pipeline.loop.Budget)."""

from __future__ import annotations

import torch

from pipeline.loop import Budget, batches


def test_a_budget_runs_whole_passes_then_stops_where_the_steps_end():
    b = Budget(steps=7, batch_size=16, n=60)  # 3 steps a pass (12 images dropped each pass)
    assert (b.per_pass, b.epochs) == (3, 3)
    assert [b.steps_in(e) for e in range(b.epochs)] == [3, 3, 1]
    assert sum(len(b.batches(e, torch.randperm(60))) for e in range(b.epochs)) == 7
    assert [b.progress(e) for e in range(3)] == [0.0, 3 / 7, 6 / 7]
    assert b.passes_per_image == 7 * 16 / 60


def test_whole_epochs_in_steps_are_the_epochs_they_were():
    """E epochs of the old loop = 22 E steps on 1,438 images at batch 64: the same batches."""
    b = Budget(steps=22 * 15, batch_size=64, n=1438)
    assert b.epochs == 15 and all(b.steps_in(e) == 22 for e in range(15))
    perm = torch.randperm(1438, generator=torch.Generator().manual_seed(0))
    new, old = b.batches(4, perm), batches(1438, 64, perm)
    assert len(new) == len(old) and all(torch.equal(x, y) for x, y in zip(new, old, strict=True))
    assert b.progress(5) == 5 / 15  # the cosine schedule's old epoch / epochs, to the bit


def test_the_cost_does_not_grow_with_the_training_set():
    small, large = Budget(1000, 64, 1438), Budget(1000, 64, 4000)
    assert small.steps == large.steps and large.epochs < small.epochs
    assert large.passes_per_image < small.passes_per_image
