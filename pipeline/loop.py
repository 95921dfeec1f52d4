"""The one epoch loop every trainer shares (classifier, AC-GAN, ReGene decoder, score classifier):
resume from a snapshot, a progress bar, a log line and a callback per epoch, a snapshot after it.

A training budget is counted in optimizer steps (`Budget`), so a larger training set does not
multiply the cost: the steps are laid out as passes over the training set ("epochs"), every pass
whole but the last, which stops where the budget does. A trainer supplies
`epoch_fn(epoch) -> row of metrics` and takes its batches from `Budget.batches`; everything
around it lives here. With
`reseed`, the global torch RNG is reseeded from (seed, epoch) at every epoch start, so a run
resumed from a snapshot replays the same randomness as an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from pipeline.dist import agree
from pipeline.resume import Snapshots
from pipeline.runtime import derive_seed

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Budget:
    """`steps` optimizer steps of `batch_size` images over a training set of `n` images."""

    steps: int
    batch_size: int
    n: int

    @property
    def per_pass(self) -> int:
        """Steps of one whole pass (the last incomplete batch is dropped)."""
        return max(1, self.n // self.batch_size)

    @property
    def epochs(self) -> int:
        """Passes the budget spans, the last one possibly partial."""
        return -(-self.steps // self.per_pass)

    @property
    def passes_per_image(self) -> float:
        """Times the average training image is seen: steps x batch size / images."""
        return self.steps * self.batch_size / self.n

    def steps_in(self, epoch: int) -> int:
        return min(self.per_pass, self.steps - epoch * self.per_pass)

    def progress(self, epoch: int) -> float:
        """Share of the budget done when `epoch` starts (learning-rate schedules read it)."""
        return epoch * self.per_pass / self.steps

    def batches(self, epoch: int, perm: torch.Tensor) -> list[torch.Tensor]:
        """Epoch `epoch`'s index batches of the permutation `perm` of range(n)."""
        return batches(self.n, self.batch_size, perm)[: self.steps_in(epoch)]


def run_epochs(
    epoch_fn: Callable[[int], dict[str, float]],
    *,
    budget: Budget,
    desc: str,
    state: Mapping[str, Any],
    snapshots: Snapshots | None = None,
    gen: torch.Generator | None = None,
    reseed: int | None = None,
    on_epoch: EpochCallback | None = None,
    show: Sequence[str] = (),
) -> list[dict[str, float]]:
    """Run epochs `start..epochs-1` (start > 0 when resuming); returns every epoch's row.

    `state`: name -> object with state_dict()/load_state_dict() (modules, optimizers, chain
    buffers), snapshotted with `gen` and the global RNG. `show`: row keys in the progress bar."""
    epochs = budget.epochs
    start, history = snapshots.restore(state, gen) if snapshots else (0, [])
    bar = tqdm(
        range(start, epochs),
        desc=desc,
        initial=start,
        total=epochs,
        unit="epoch",
        leave=False,
        mininterval=1.0,
        disable=None,  # off when stderr is not a terminal (DVC logs): the log lines say it
    )
    for epoch in bar:
        if reseed is not None:
            torch.manual_seed(derive_seed(reseed, "epoch", epoch))
        row = agree(state.values(), epoch_fn(epoch))  # ranks of a DDP run hold rank 0's state
        history.append(row)
        bar.set_postfix({k: f"{row[k]:.3f}" for k in show if k in row})
        (log.info if bar.disable else log.debug)(
            "%s epoch %d/%d %s",
            desc,
            epoch + 1,
            epochs,
            " ".join(f"{k}={v:.4g}" for k, v in row.items()),
        )
        if on_epoch is not None:
            on_epoch(epoch, row)
        if snapshots is not None:
            snapshots.save(epoch + 1, epochs, state, history, gen)
    bar.close()
    if snapshots is not None:
        snapshots.finish()
    return history


def batches(n: int, batch_size: int, perm: torch.Tensor) -> list[torch.Tensor]:
    """Index batches of a permutation of range(n); the last incomplete batch is dropped."""
    steps = max(1, n // batch_size)
    return [perm[i * batch_size : (i + 1) * batch_size] for i in range(steps)]
