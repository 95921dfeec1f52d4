"""Classifier + SGLD: JEM's sampler on an ordinary classifier, with no STIC training (the control).

JEM (Grathwohl et al. 2020) reads the logits as an energy and samples class c with
    x <- x + step_size * d f(x)[c] / dx + noise * xi,   xi ~ N(0, I)            (JEM, eq. 11)
for `steps` steps per chain from a persistent replay buffer, re-initialising 5% of the drawn chains
from U(-1, 1). JEM's step/noise pair (1.0, 0.01) is not textbook Langevin (that would tie the noise
to sqrt(2 * step)); both are named parameters here. PAPERS.md sec. 5: this is the
"adversarial-attack-like" control every classifier-based method must beat.

Buffer: one per class (JEM's class-conditional buffer), `buffer_per_class` chains each. A round
draws `batch_per_class` chains of every class, re-initialises each with probability `reinit_prob`,
runs `steps` steps and writes them back. After `rounds` rounds the output is the first
`samples_per_class` chains of each class after one more pass of `steps` steps without
re-initialisation (so no output is a fresh noise image that had only one pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from pipeline.config import ConfigError
from pipeline.methods.common import class_labels, device_of


@dataclass(frozen=True)
class SGLDConfig:
    step_size: float = 1.0  # JEM: multiplies the gradient of the class logit
    noise: float = 0.01  # JEM: std of the Gaussian added per step
    steps: int = 20  # JEM: steps per draw from the buffer
    buffer_per_class: int = 50  # JEM: 10,000 chains for CIFAR-10; scaled to the digits
    reinit_prob: float = 0.05  # JEM: share of drawn chains restarted from U(-1, 1)
    rounds: int = 5  # draws from the buffer before the output pass
    batch_per_class: int = 20  # chains drawn per class and round
    clamp: bool = True  # keep pixels in [-1, 1] after every step (JEM does not; False = JEM)
    samples_per_class: int = 20

    def validate(self) -> None:
        if self.step_size < 0 or self.noise < 0:
            raise ConfigError("step_size: and noise must be >= 0")
        if self.steps < 0 or self.rounds < 0:
            raise ConfigError("steps: and rounds must be >= 0")
        if not 0.0 <= self.reinit_prob <= 1.0:
            raise ConfigError("reinit_prob: must be in [0, 1]")
        if self.batch_per_class < 1 or self.samples_per_class < 1:
            raise ConfigError("batch_per_class: and samples_per_class must be at least 1")
        if self.buffer_per_class < max(self.batch_per_class, self.samples_per_class):
            raise ConfigError(
                "buffer_per_class: must be >= batch_per_class and >= samples_per_class"
            )


def sgld_chain(
    classifier: torch.nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    *,
    steps: int,
    step_size: float,
    noise: float,
    gen: torch.Generator,
    clamp: bool = True,
) -> torch.Tensor:
    """Run `steps` SGLD steps on x (B, C, H, W) toward class `labels` (B,); returns a new tensor."""
    x = x.detach().clone()
    for _ in range(steps):
        x.requires_grad_(True)
        logit = classifier(x).gather(1, labels[:, None]).sum()  # sum_b f(x_b)[y_b]
        (grad,) = torch.autograd.grad(logit, x)  # (B, C, H, W); chains are independent
        xi = torch.randn(x.shape, generator=gen).to(x.device)  # CPU generator: same draws anywhere
        x = x.detach() + step_size * grad + noise * xi
        if clamp:
            x = x.clamp(-1.0, 1.0)
    return x.detach()


def uniform_noise(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """U(-1, 1) images: JEM's initialisation of buffer chains."""
    return torch.rand(shape, generator=gen) * 2 - 1


def sample(
    classifier: torch.nn.Module,
    cfg: SGLDConfig,
    num_classes: int,
    image_shape: tuple[int, int, int],
    gen: torch.Generator,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples (K * n, C, H, W) in [-1, 1] and their labels (K * n,), grouped by class."""
    classifier.eval()
    dev = device_of(classifier)
    k, n_buf = num_classes, cfg.buffer_per_class
    buffer = uniform_noise((k, n_buf, *image_shape), gen)  # (K, n_buf, C, H, W)
    step = dict(steps=cfg.steps, step_size=cfg.step_size, noise=cfg.noise, gen=gen, clamp=cfg.clamp)
    labels = class_labels(k, cfg.batch_per_class).to(dev)
    for _ in tqdm(range(cfg.rounds), desc="sgld", unit="round", leave=False, disable=not progress):
        idx = torch.stack(
            [torch.randperm(n_buf, generator=gen)[: cfg.batch_per_class] for _ in range(k)]
        )  # (K, b)
        x = buffer[torch.arange(k)[:, None], idx]  # (K, b, C, H, W)
        restart = torch.rand(x.shape[:2], generator=gen) < cfg.reinit_prob  # (K, b)
        x[restart] = uniform_noise((int(restart.sum()), *image_shape), gen)
        x = sgld_chain(classifier, x.flatten(0, 1).to(dev), labels, **step).cpu()
        buffer[torch.arange(k)[:, None], idx] = x.view(k, cfg.batch_per_class, *image_shape)
    n = cfg.samples_per_class
    out_labels = class_labels(k, n)
    x = sgld_chain(classifier, buffer[:, :n].flatten(0, 1).to(dev), out_labels.to(dev), **step)
    return x.cpu(), out_labels
