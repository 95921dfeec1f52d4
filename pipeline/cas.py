"""Classification accuracy score (Ravuri & Vinyals, NeurIPS 2019): a fresh classifier trained on a
sample set's hard samples alone, with their intended labels, and scored on real held-out images.
Samples that carry their class teach it; noise, or the right texture on the wrong class, does not.
A judge-free reading of the same question the discriminability asks. Its reference is the same
classifier trained on as many real images (the real-data floor's row).

The training is plain cross-entropy with Adam (the portable one, pipeline.numerics) on a cosine
schedule, here rather than through pipeline.train, whose fake terms and samplers evaluation has
no use for: an edit of a sampler does not rerun every evaluation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pipeline import numerics
from pipeline.data import ImageSet
from pipeline.infer import logits_of
from pipeline.loop import Budget
from pipeline.models import build_model
from pipeline.runtime import derive_seed

LR = 0.002
BATCH = 64


def classification_accuracy_score(
    train: ImageSet, test: ImageSet, model_args: dict, steps: int, seed: int, device
) -> float:
    """Accuracy on `test` of a new `model_args` classifier trained `steps` steps on `train`
    (batches of 64, or the whole set when smaller)."""
    torch.manual_seed(derive_seed(seed, "cas"))
    model = build_model(model_args).to(device)
    opt = numerics.adam(model.parameters(), LR)
    budget = Budget(steps, max(2, min(BATCH, len(train))), len(train))
    x, y = train.float_images().to(device), train.labels.to(device)
    gen = torch.Generator().manual_seed(derive_seed(seed, "cas", "batches"))
    done = 0
    model.train()
    for epoch in range(budget.epochs):
        for idx in budget.batches(epoch, torch.randperm(len(train), generator=gen)):
            for group in opt.param_groups:
                group["lr"] = LR * 0.5 * (1 + math.cos(math.pi * done / steps))
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
    predicted = logits_of(model, test.float_images())[:, : test.num_classes].argmax(1)
    return float((predicted.cpu() == test.labels).float().mean())
