"""The benchmark (`make bench`) on tiny data: every row measured, ratios against the naive loops."""

from __future__ import annotations

import math

import torch
from support import small_cnn, tiny_train

from pipeline import bench


def test_ours_and_the_naive_reference_are_timed_in_turn():
    calls = []
    bench.timed_pair(lambda: calls.append("ours"), lambda: calls.append("naive"), repeat=3)
    assert calls == ["ours", "naive"] * 4  # a warm-up each, then alternating


def test_every_row_on_tiny_data(tiny_data):
    model, _ = small_cnn()
    cfg = tiny_train(steps=3, lr=1e-3, lr_schedule="constant", mixup_weight=0.0)
    peak, rows = bench.run(model, tiny_data, torch.device("cpu"), chains=12, steps=4,
                           train_cfg=cfg)  # fmt: skip
    assert peak > 0
    names = [r.name for r in rows]
    assert names[:3] == ["GRMALA (MH, reflected box)", "SGLD (JEM's sampler)",
                         "annealed Langevin (Score-STIC)"]  # fmt: skip
    assert {"judge features", "training with synthesis (10 MH steps per batch)"} <= set(names)
    assert all(math.isfinite(r.rate) and r.rate > 0 for r in rows)
    compared = [r for r in rows if r.naive_rate is not None]
    assert len(compared) == 5 and all(r.speedup > 0 for r in compared)
