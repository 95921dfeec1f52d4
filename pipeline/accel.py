"""The GPU path of the training loops: bf16 autocast, channels-last memory and torch.compile.

Three runtime options (`runtime.precision`, `runtime.channels_last`, `runtime.compile`), all off
by default; off, a training loop runs exactly the code it ran before they existed. They apply to
the networks a training loop calls for its losses (`training_net`, `autocast`): the classifiers
(judges, baseline, STIC rounds, JEM), the score classifier, the AC-GAN and the ReGene decoder.

The samplers stay in fp32 and uncompiled: a Metropolis-Hastings ratio compares log-densities
that differ in the fourth digit, which bf16 (8 bits of mantissa) does not resolve. The score
classifier is not compiled either: its denoising loss differentiates through an input gradient
(double backward), which torch.compile does not support.

They travel explicitly: a stage builds its `Accel` from `runtime` (`stages.skeleton.Stage.accel`)
and hands it to the training function, whose default is everything off.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Literal

import torch

from pipeline.dist import wrap

Precision = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class Accel:
    precision: Precision
    channels_last: bool
    compile: bool


OFF = Accel("fp32", False, False)


def training_net(model: torch.nn.Module, accel: Accel, compile_ok: bool = True) -> torch.nn.Module:
    """The network a training loop calls: `model` in channels-last memory, inside DDP when
    several processes train (pipeline.dist), compiled, each when asked; with everything off and
    one process, `model` itself. `model` keeps its parameters: checkpoints and snapshots hold
    its state dict unchanged."""
    if accel.channels_last:
        model.to(memory_format=torch.channels_last)
    net = wrap(model)
    if accel.compile and compile_ok:
        net = torch.compile(net)
    return net


def autocast(device: torch.device, accel: Accel) -> contextlib.AbstractContextManager:
    """bf16 autocast for a training step's forward passes and losses when runtime.precision is
    bf16 (parameters, gradients and optimizer state stay fp32); a no-op context otherwise."""
    if accel.precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
