"""AC-GAN (Odena, Olah, Shlens, ICML 2017): a class-conditional GAN with an auxiliary classifier.

G(z, c) takes noise and a one-hot class; D has two heads, source (real/fake) and class. With
    L_S = E log P(S=real | x_real) + E log P(S=fake | x_fake)
    L_C = E log P(C=c | x_real) + E log P(C=c | x_fake)
D maximises L_S + L_C and G maximises L_C - L_S (paper, eqs. 2-3). `generator_loss` chooses how
G's "- L_S" is optimised: "minimax" is the paper's literal objective (minimise
E log P(S=fake | x_fake)); "non_saturating" (default) maximises E log P(S=real | x_fake) instead,
Goodfellow et al.'s fix for vanishing gradients that the AC-GAN reference code also uses.

Architectures: "small" (default) for 16x16 digits; "paper" is the paper's CIFAR-10 network
(appendix: G linear from z + one-hot to 384 x 4 x 4, transposed 5x5 convolutions 192, 96, C with
BN + ReLU and a tanh output; D six 3x3 convolutions 16..512 maps, strides 2,1,2,1,2,1, LeakyReLU
0.2, dropout 0.5, BN on all but the first), for image sizes 8 * 2^n.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline import numerics
from pipeline.accel import OFF, Accel, autocast, training_net
from pipeline.config import Overrides, variant
from pipeline.dist import mean_over_ranks, rows
from pipeline.errors import ConfigError, check_finite
from pipeline.infer import device_of
from pipeline.loop import Budget, EpochCallback, run_epochs
from pipeline.resume import Snapshots
from pipeline.samples import class_labels

NAME = "acgan"
Arch = Literal["small", "paper"]
GeneratorLoss = Literal["non_saturating", "minimax"]


@dataclass(frozen=True)
class ACGANModelConfig:
    arch: Arch  # small (16x16 digits) | paper (the paper's CIFAR-10 G and D)
    z_dim: int  # paper (CIFAR-10): 100 noise dims + 10 one-hot = 110 inputs
    width: int  # small arch: base channel count (paper arch ignores it)
    dropout: float  # paper: dropout 0.5 in D

    def validate(self) -> None:
        if self.z_dim < 1 or self.width < 1:
            raise ConfigError("z_dim: and width must be at least 1")
        if not 0 <= self.dropout < 1:
            raise ConfigError("dropout: must be in [0, 1)")

    def check_image_size(self, size: int, key: str) -> None:
        """Refuse, before training, an image size the architecture cannot produce."""
        try:
            if self.arch == "paper":
                if _levels(size, max(size // 8, 1)) != 3:
                    raise ConfigError("")
            else:
                _levels(size, 4)
        except ConfigError:
            shape = "8 * 2^n" if self.arch == "paper" else "4 * 2^n"
            raise ConfigError(
                f"{key}.arch: {self.arch} needs an image size of {shape} (data.image_size is "
                f"{size})"
            ) from None


@dataclass(frozen=True)
class ACGANTrainConfig:
    steps: int  # D + G steps in all
    batch_size: int  # paper: 100
    lr: float  # paper: Adam 2e-4
    beta1: float  # paper: 0.5
    beta2: float
    generator_loss: GeneratorLoss  # non_saturating (reference code) | minimax (paper's literal)

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ConfigError("steps: must be at least 1 and batch_size at least 2")
        if self.lr <= 0 or not 0 <= self.beta1 < 1 or not 0 <= self.beta2 < 1:
            raise ConfigError("lr: must be positive, beta1 and beta2 in [0, 1)")


@dataclass(frozen=True)
class ACGANVariant:
    """A sample set of its own: overrides of acgan.model / acgan.train / acgan.sample."""

    model: Overrides | None = None
    train: Overrides | None = None
    sample: Overrides | None = None


@dataclass(frozen=True)
class ACGANSampleConfig:
    per_class: int  # samples of every class

    def validate(self) -> None:
        if self.per_class < 1:
            raise ConfigError("per_class: must be at least 1")


@dataclass(frozen=True)
class ACGANConfig:
    model: ACGANModelConfig
    train: ACGANTrainConfig
    sample: ACGANSampleConfig
    variants: dict[str, ACGANVariant]  # sample-set name -> overrides ({} = the sections as is)

    def resolved(self, name: str) -> ACGANSettings:
        """Variant `name`: these sections with its overrides."""
        return ACGANSettings(
            variant(ACGANModelConfig, self.model, self.variants, name, NAME, "model"),
            variant(ACGANTrainConfig, self.train, self.variants, name, NAME, "train"),
            variant(ACGANSampleConfig, self.sample, self.variants, name, NAME, "sample"),
        )

    def validate(self) -> None:
        if not self.variants:
            raise ConfigError("variants: list at least one variant (e.g. acgan: {})")
        for name in self.variants:
            self.resolved(name)

    # what the parameter gate asks of every method (pipeline.methods)
    def sample_sets(self) -> list[str]:
        return list(self.variants)

    def hard_counts(self) -> dict[str, int]:
        return {f"variants.{n}.sample.per_class": self.resolved(n).sample.per_class
                for n in self.variants}  # fmt: skip

    def models(self) -> dict:
        return {f"variants.{n}.model": self.resolved(n).model for n in self.variants}


@dataclass(frozen=True)
class ACGANSettings:
    """One variant's resolved sections."""

    model: ACGANModelConfig
    train: ACGANTrainConfig
    sample: ACGANSampleConfig


def _levels(image_size: int, start: int) -> int:
    """Number of x2 upsamplings from `start` to image_size; refuses sizes that are not start*2^n."""
    n, size = 0, start
    while size < image_size:
        size, n = size * 2, n + 1
    if size != image_size:
        raise ConfigError(f"acgan: image size {image_size} must be {start} * 2^n for this arch")
    return n


class Generator(nn.Module):
    """G(z (B, z_dim), y (B,)) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(
        self, z_dim: int, num_classes: int, channels: int, image_size: int, arch: Arch, width: int
    ):
        super().__init__()
        self.num_classes = num_classes
        if arch == "paper":
            start, chans = image_size // 8, [384, 192, 96]  # three stride-2 layers
            if _levels(image_size, max(start, 1)) != 3:
                raise ConfigError("acgan: the paper arch needs image size 8 * 2^n >= 8")
            kernel, pad, out_pad = 5, 2, 1
        else:
            n = _levels(image_size, 4)
            start, chans = 4, [width * 2**i for i in range(n, -1, -1)]
            kernel, pad, out_pad = 4, 1, 0
        self.start, self.c0 = start, chans[0]
        self.fc = nn.Sequential(
            nn.Linear(z_dim + num_classes, chans[0] * start * start),
            nn.BatchNorm1d(chans[0] * start * start),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(cin, cout, kernel, 2, pad, output_padding=out_pad),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
            ]
        if arch == "paper":  # the last transposed convolution outputs the image directly
            layers += [
                nn.ConvTranspose2d(chans[-1], channels, kernel, 2, pad, output_padding=out_pad),
                nn.Tanh(),
            ]
        else:
            layers += [nn.Conv2d(chans[-1], channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, F.one_hot(y, self.num_classes).float()], dim=1)  # (B, z_dim + K)
        h = self.fc(h).view(-1, self.c0, self.start, self.start)  # (B, c0, s, s)
        return self.net(h)  # (B, C, S, S)


class Discriminator(nn.Module):
    """D(x) -> (source logit (B,), class logits (B, K)): one trunk, two linear heads."""

    def __init__(
        self,
        num_classes: int,
        channels: int,
        image_size: int,
        arch: Arch,
        width: int,
        dropout: float,
    ):
        super().__init__()
        if arch == "paper":
            spec = list(zip([16, 32, 64, 128, 256, 512], [2, 1, 2, 1, 2, 1], strict=True))
        else:
            n = _levels(image_size, 4)
            spec = [(width * 2**i, 2) for i in range(n)] + [(width * 2**n, 1)]
        layers: list[nn.Module] = []
        cin = channels
        for i, (cout, stride) in enumerate(spec):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1)]
            if i > 0:
                layers += [nn.BatchNorm2d(cout)]
            layers += [nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            cin = cout
        self.trunk = nn.Sequential(*layers, nn.Flatten())
        with torch.no_grad():
            feat = self.trunk(torch.zeros(2, channels, image_size, image_size)).shape[1]
        self.source = nn.Linear(feat, 1)
        self.classes = nn.Linear(feat, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)  # (B, F)
        return self.source(h).squeeze(1), self.classes(h)


def model_args(num_classes: int, channels: int, image_size: int, cfg: ACGANModelConfig) -> dict:
    """Everything needed to rebuild G and D; stored in the checkpoint."""
    return {
        "z_dim": cfg.z_dim,
        "num_classes": num_classes,
        "channels": channels,
        "image_size": image_size,
        "arch": cfg.arch,
        "width": cfg.width,
        "dropout": cfg.dropout,
    }


def build_generator(args: dict) -> Generator:
    """G alone (what sampling needs), from a checkpoint's model args."""
    return build(args)[0]


def build(args: dict) -> tuple[Generator, Discriminator]:
    a = dict(args)
    g = Generator(
        a["z_dim"], a["num_classes"], a["channels"], a["image_size"], a["arch"], a["width"]
    )
    d = Discriminator(
        a["num_classes"], a["channels"], a["image_size"], a["arch"], a["width"], a["dropout"]
    )
    return g, d


# ---------------------------------------------------------------- losses (paper, eqs. 2-3)


def discriminator_loss(
    src_real: torch.Tensor,
    cls_real: torch.Tensor,
    y_real: torch.Tensor,
    src_fake: torch.Tensor,
    cls_fake: torch.Tensor,
    y_fake: torch.Tensor,
) -> tuple[torch.Tensor, dict[str, float]]:
    """-(L_S + L_C) as batch means; source logits (B,) (real = 1), class logits (B, K)."""
    l_s = -(
        F.binary_cross_entropy_with_logits(src_real, torch.ones_like(src_real))
        + F.binary_cross_entropy_with_logits(src_fake, torch.zeros_like(src_fake))
    )
    l_c = -(F.cross_entropy(cls_real, y_real) + F.cross_entropy(cls_fake, y_fake))
    return -(l_s + l_c), {"d_L_S": float(l_s.detach()), "d_L_C": float(l_c.detach())}


def generator_loss(
    src_fake: torch.Tensor, cls_fake: torch.Tensor, y_fake: torch.Tensor, mode: GeneratorLoss
) -> torch.Tensor:
    """G minimises -(L_C - L_S) restricted to the terms that depend on G (the fake ones)."""
    log_p_class = -F.cross_entropy(cls_fake, y_fake)  # E log P(C=c | x_fake)
    if mode == "minimax":
        log_p_fake = -F.binary_cross_entropy_with_logits(src_fake, torch.zeros_like(src_fake))
        return -(log_p_class - log_p_fake)  # maximise L_C - L_S literally
    log_p_real = -F.binary_cross_entropy_with_logits(src_fake, torch.ones_like(src_fake))
    return -(log_p_class + log_p_real)


# ---------------------------------------------------------------- training and sampling


def train(
    generator: Generator,
    discriminator: Discriminator,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: ACGANTrainConfig,
    gen: torch.Generator,
    on_epoch: EpochCallback | None = None,
    snapshots: Snapshots | None = None,
    accel: Accel = OFF,
) -> list[dict[str, float]]:
    """Alternate one D step and one G step per batch; returns per-epoch mean losses.

    images (N, C, H, W) in [-1, 1], labels (N,). Fake classes are drawn uniformly. Dropout uses the
    global torch RNG: the caller seeds it for bit-identical reruns (snapshots keep it)."""
    opt_g = numerics.adam(generator.parameters(), cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = numerics.adam(discriminator.parameters(), cfg.lr, betas=(cfg.beta1, cfg.beta2))
    k, dev = generator.num_classes, device_of(generator)
    g_net, d_net = training_net(generator, accel), training_net(discriminator, accel)
    budget = Budget(cfg.steps, cfg.batch_size, len(images))
    state = {"generator": generator, "discriminator": discriminator, "opt_g": opt_g, "opt_d": opt_d}

    def epoch_fn(epoch: int) -> dict[str, float]:
        generator.train()
        discriminator.train()
        sums: dict[str, float] = {}
        steps = budget.batches(epoch, torch.randperm(len(images), generator=gen))
        for step, idx in enumerate(steps):
            b = len(idx)
            z = torch.randn(b, generator.fc[0].in_features - k, generator=gen)
            y_fake = torch.randint(k, (b,), generator=gen)
            mine = rows(b)  # this rank's share of the batch (all of it in one process)
            idx, z, y_fake = idx[mine], z[mine].to(dev), y_fake[mine].to(dev)
            x_real, y_real = images[idx].to(dev), labels[idx].to(dev)
            with autocast(dev, accel):  # bf16 when runtime.precision asks (pipeline.accel)
                x_fake = g_net(z, y_fake)  # (B, C, H, W)
                src_r, cls_r = d_net(x_real)
                src_f, cls_f = d_net(x_fake.detach())
                d_loss, d_terms = discriminator_loss(src_r, cls_r, y_real, src_f, cls_f, y_fake)
            check_finite(d_loss.detach(), f"acgan: D loss at epoch {epoch + 1}, step {step}")
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

            with autocast(dev, accel):
                src_f, cls_f = d_net(x_fake)
                g_loss = generator_loss(src_f, cls_f, y_fake, cfg.generator_loss)
            check_finite(g_loss.detach(), f"acgan: G loss at epoch {epoch + 1}, step {step}")
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

            with torch.no_grad():
                acc_real = float((cls_r.argmax(1) == y_real).float().mean())
                acc_fake = float((cls_f.argmax(1) == y_fake).float().mean())
            row = {
                "d_loss": float(d_loss.detach()),
                "g_loss": float(g_loss.detach()),
                **d_terms,
                "d_class_acc_real": acc_real,
                "d_class_acc_fake": acc_fake,
                "d_p_real_on_fake": float(torch.sigmoid(src_f.detach()).mean()),
            }
            for key, v in row.items():
                sums[key] = sums.get(key, 0.0) + v
        return mean_over_ranks({key: v / len(steps) for key, v in sums.items()})

    history = run_epochs(
        epoch_fn,
        budget=budget,
        desc="acgan",
        state=state,
        snapshots=snapshots,
        gen=gen,
        on_epoch=on_epoch,
        show=("d_loss", "g_loss"),
    )
    generator.eval()
    discriminator.eval()
    return history


@torch.no_grad()
def sample(
    generator: Generator, per_class: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`per_class` images per class (K * n, C, H, W) in [-1, 1] and labels, grouped by class."""
    generator.eval()
    labels = class_labels(generator.num_classes, per_class)
    z = torch.randn(
        len(labels), generator.fc[0].in_features - generator.num_classes, generator=gen
    )  # (N, z_dim)
    dev = device_of(generator)
    return generator(z.to(dev), labels.to(dev)).cpu(), labels


PASSES_PER_SAMPLE = 1  # one generator pass a sample
# network passes per real image in a step: D on the real and the fake batch, G's step through D
TRAIN_PASSES = 3.0


def train_passes_per_image(train: ACGANTrainConfig, n_train: int) -> float:
    """Network passes per training image over the whole training run."""
    return TRAIN_PASSES * Budget(train.steps, train.batch_size, n_train).passes_per_image
