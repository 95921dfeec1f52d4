"""The training cost of a classifier trained on real images only (the judges, r0, Wang & Torr's
own), in network passes per training image: each step's real batch and, with mixup, its mixed
batch, as pipeline.chains.train_passes counts a round less its fakes. The methods that train
otherwise declare their costs in their own modules."""

from __future__ import annotations

from pipeline.loop import Budget
from pipeline.train import TrainConfig


def classifier_train_passes(train: TrainConfig, n_train: int) -> float:
    """Network passes per training image over the whole run."""
    mix = 1 if train.mixup_alpha > 0 and train.mixup_weight > 0 else 0
    return (1 + mix) * Budget(train.steps, train.batch_size, n_train).passes_per_image
