"""Classification accuracy score (Ravuri & Vinyals, NeurIPS 2019): a fresh classifier trained on a
sample set's hard samples alone, with their intended labels, and scored on real held-out images.
Samples that carry their class teach it; noise, or the right texture on the wrong class, does not.
A judge-free reading of the same question the discriminability asks. Its reference is the same
classifier trained on as many real images (the real-data floor's row)."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import torch

from pipeline.data import ImageSet
from pipeline.models import build_model
from pipeline.runtime import derive_seed
from pipeline.train import TrainConfig, evaluate_classifier, train_classifier


def cas_config(steps: int, n: int) -> TrainConfig:
    """The CAS classifier's training: Adam at 2e-3 with a cosine schedule, plain cross-entropy
    (no mixup, no noise), batches of 64 or the whole set when smaller."""
    return TrainConfig(steps=steps, batch_size=max(2, min(64, n)), lr=0.002, optimizer="adam",
                       weight_decay=0.0, momentum=0.9, lr_schedule="cosine", mixup_alpha=0.0,
                       mixup_weight=0.0, data_noise=0.0, checkpoint_every=steps)  # fmt: skip


@contextmanager
def _quiet(name: str):
    """The training loop's per-pass log lines off (a CAS run makes dozens of tiny passes)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def classification_accuracy_score(
    train: ImageSet, test: ImageSet, model_args: dict, steps: int, seed: int, device
) -> float:
    """Accuracy on `test` of a new `model_args` classifier trained `steps` steps on `train`."""
    torch.manual_seed(derive_seed(seed, "cas"))
    model = build_model(model_args)
    with _quiet("pipeline.loop"):
        train_classifier(model, train, cas_config(steps, len(train)), device=device,
                         seed=derive_seed(seed, "cas", "train"), where="cas")  # fmt: skip
    return evaluate_classifier(model, test)["accuracy"]
