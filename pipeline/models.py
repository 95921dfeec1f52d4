"""Classifier architectures and their registry.

Every classifier exposes the same three things the generation methods need:
`forward(x) -> logits (B, K)`, `forward_features(x) -> (latent (B, D), maps)` where `maps` are the
named intermediate feature maps used by the Gram term of GRMALA, and a linear `head` from the
latent to the logits (ReGene relies on the head being linear).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.errors import ConfigError

Norm = Literal["batch", "group", "none"]
MIN_IMAGE_SIZE = {
    "small_cnn": 4, "flat_cnn": 4, "judge_cnn": 4, "score_cnn": 4, "wrn": 4, "resnet18": 8
}  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    arch: str  # a key of ARCHITECTURES
    width: int  # base channel count (small_cnn, flat_cnn, judge_cnn, score_cnn, resnet18)
    dropout: float
    norm: Norm  # normalisation in small_cnn/flat_cnn/wrn/resnet18 (judge_cnn always uses batch)
    depth: int | None = None  # wrn only (unset elsewhere): 6n + 4 layers
    widen_factor: int | None = None  # wrn only (unset elsewhere)

    def validate(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ConfigError(
                f"arch: unknown '{self.arch}'; choose from {', '.join(ARCHITECTURES)}"
            )
        if self.width < 1:
            raise ConfigError("width: must be positive")
        if self.arch == "wrn":
            if self.depth is None or self.widen_factor is None or (self.depth - 4) % 6 != 0:
                raise ConfigError(
                    "depth: a Wide-ResNet needs depth = 6n + 4 (e.g. 28) and widen_factor set"
                )
        elif self.depth is not None or self.widen_factor is not None:
            raise ConfigError(f"depth: and widen_factor are wrn-only; unset them for {self.arch}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout: must be in [0, 1)")

    def check_image_size(self, size: int, key: str) -> None:
        """Refuse, before any training, an image too small for the architecture's strides."""
        if size < MIN_IMAGE_SIZE[self.arch]:
            raise ConfigError(
                f"{key}.arch: {self.arch} needs images of at least {MIN_IMAGE_SIZE[self.arch]} px "
                f"(data.image_size is {size})"
            )


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(32, channels // 4) or 1, channels)
    return nn.Identity()


class Classifier(nn.Module):
    """Base: subclasses set `self.head` and implement `forward_features`."""

    head: nn.Linear
    map_names: tuple[str, ...]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latent, _ = self.forward_features(x)
        return self.head(latent)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, D): the input of the linear head."""
        return self.forward_features(x)[0]

    @property
    def num_outputs(self) -> int:
        return self.head.out_features


class SmallCNN(Classifier):
    """Fast CPU classifier: three conv stages with SiLU (smooth, so input gradients are too)."""

    def __init__(self, in_channels: int, num_outputs: int, cfg: ModelConfig):
        super().__init__()
        w, act = cfg.width, nn.SiLU
        self.block1 = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1),
            _norm(cfg.norm, w),
            act(),
            nn.Conv2d(w, w, 3, stride=2, padding=1),
            act(),
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, padding=1),
            _norm(cfg.norm, 2 * w),
            act(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1),
            act(),
        )
        self.block3 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), act())
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(4 * w, num_outputs)
        self.map_names = ("block1", "block2", "block3")

    def forward_features(self, x):  # x: (B, C, H, W)
        m1 = self.block1(x)  # (B, w, H/2, W/2)
        m2 = self.block2(m1)  # (B, 2w, H/4, W/4)
        m3 = self.block3(m2)  # (B, 4w, H/4, W/4)
        latent = self.drop(m3.mean(dim=(2, 3)))  # (B, 4w)
        return latent, {"block1": m1, "block2": m2, "block3": m3}


class FlatCNN(Classifier):
    """SmallCNN's first two stages with a flattened MLP head instead of global pooling:
    flatten the (2w, 4, 4) map -> linear 4w -> SiLU -> linear head. Averaging over positions
    (SmallCNN) throws away where each stroke is; a flattened map keeps the layout, so the class
    logits, and their input gradients, carry the shape of a digit. It is the network of STIC's
    working regime on the digits (docs/stic.md): at width 32, conv 1-32-32-64-64, flatten 1024,
    hidden 128. The map is pooled to 4 x 4 first (the identity at 16 px, larger images pool)."""

    GRID = 4  # the flattened map's side

    def __init__(self, in_channels: int, num_outputs: int, cfg: ModelConfig):
        super().__init__()
        w, act = cfg.width, nn.SiLU
        self.block1 = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1),
            _norm(cfg.norm, w),
            act(),
            nn.Conv2d(w, w, 3, stride=2, padding=1),
            act(),
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, padding=1),
            _norm(cfg.norm, 2 * w),
            act(),
            nn.Conv2d(2 * w, 2 * w, 3, stride=2, padding=1),
            act(),
        )
        self.pool = nn.AdaptiveAvgPool2d(self.GRID)
        self.hidden = nn.Sequential(nn.Linear(2 * w * self.GRID**2, 4 * w), act())
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(4 * w, num_outputs)
        self.map_names = ("block1", "block2")

    def forward_features(self, x):  # x: (B, C, H, W)
        m1 = self.block1(x)  # (B, w, H/2, W/2)
        m2 = self.block2(m1)  # (B, 2w, H/4, W/4)
        latent = self.drop(self.hidden(self.pool(m2).flatten(1)))  # (B, 4w)
        return latent, {"block1": m1, "block2": m2}


class ScoreCNN(Classifier):
    """A noise-conditional classifier g(x, sigma) for Score-STIC: SmallCNN's blocks, each feature
    map modulated by an embedding of log sigma (FiLM: h * (1 + gamma) + beta).

    `features_at(x, sigma)` takes one level per image; `at(sigma)` is the same network as an
    ordinary Classifier at one level (what the samplers take). The class score is g / sigma
    (`pipeline.methods.score`), so g's input gradient stays of unit scale at every level."""

    def __init__(self, in_channels: int, num_outputs: int, cfg: ModelConfig):
        super().__init__()
        w, act = cfg.width, nn.SiLU
        self.block1 = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), act(), nn.Conv2d(w, w, 3, 2, 1), act()
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(w, 2 * w, 3, padding=1), act(), nn.Conv2d(2 * w, 2 * w, 3, 2, 1), act()
        )
        self.block3 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, padding=1), act())
        self.embed_sigma = nn.Sequential(nn.Linear(1, 4 * w), act(), nn.Linear(4 * w, 4 * w), act())
        self.film = nn.ModuleList([nn.Linear(4 * w, 2 * c) for c in (w, 2 * w, 4 * w)])
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(4 * w, num_outputs)
        self.map_names = ("block1", "block2", "block3")

    def features_at(
        self, x: torch.Tensor, sigma: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """x (B, C, H, W), sigma (B,) -> latent (B, 4w) and the modulated maps."""
        emb = self.embed_sigma(sigma.log().view(-1, 1).to(x.dtype))  # (B, 4w)
        maps, h = {}, x
        for name, block, film in zip(
            self.map_names, (self.block1, self.block2, self.block3), self.film, strict=True
        ):
            h = block(h)
            gamma, beta = film(emb).chunk(2, dim=1)  # (B, C) each
            h = h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
            maps[name] = h
        return self.drop(h.mean(dim=(2, 3))), maps

    def forward_features(self, x):
        raise ValueError("ScoreCNN needs a noise level: use features_at(x, sigma) or at(sigma)")

    def at(self, sigma: float) -> Classifier:
        """This network at noise level `sigma`, as a Classifier sharing its parameters."""
        return AtLevel(self, sigma)


class AtLevel(Classifier):
    """A noise-conditional network with its level fixed: forward_features(x) = features_at(x, s)."""

    def __init__(self, net: ScoreCNN, sigma: float):
        super().__init__()
        self.net, self.sigma = net, float(sigma)
        self.head, self.map_names = net.head, net.map_names

    def forward_features(self, x):
        return self.net.features_at(x, torch.full((x.shape[0],), self.sigma, device=x.device))


class JudgeCNN(Classifier):
    """The evaluation classifier: a different family (BN, ReLU, max-pool, FC latent) on purpose."""

    def __init__(self, in_channels: int, num_outputs: int, cfg: ModelConfig):
        super().__init__()
        w = cfg.width

        def stage(cin: int, cout: int, pool: bool) -> nn.Sequential:
            layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            return nn.Sequential(*layers, nn.MaxPool2d(2) if pool else nn.Identity())

        self.block1 = stage(in_channels, w, True)
        self.block2 = stage(w, 2 * w, True)
        self.block3 = stage(2 * w, 4 * w, False)
        self.fc = nn.Sequential(nn.Linear(4 * w, 4 * w), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.head = nn.Linear(4 * w, num_outputs)
        self.map_names = ("block1", "block2", "block3")

    def forward_features(self, x):
        m1 = self.block1(x)
        m2 = self.block2(m1)
        m3 = self.block3(m2)
        latent = self.fc(m3.mean(dim=(2, 3)))  # (B, 4w)
        return latent, {"block1": m1, "block2": m2, "block3": m3}


class _WideBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: Norm, dropout: float):
        super().__init__()
        self.n1, self.c1 = _norm(norm, cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.n2, self.c2 = _norm(norm, cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.drop = nn.Dropout(dropout)
        self.short = (
            nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None
        )

    def forward(self, x):
        o = F.leaky_relu(self.n1(x), 0.2)
        y = self.c2(self.drop(F.leaky_relu(self.n2(self.c1(o)), 0.2)))
        return y + (self.short(o) if self.short is not None else x)


class WideResNet(Classifier):
    """Wide-ResNet (Zagoruyko & Komodakis 2016) as in JEM: WRN-28-10 by default, leaky ReLU."""

    def __init__(self, in_channels: int, num_outputs: int, cfg: ModelConfig):
        super().__init__()
        n = (cfg.depth - 4) // 6
        widths = [16, 16 * cfg.widen_factor, 32 * cfg.widen_factor, 64 * cfg.widen_factor]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)

        def group(cin: int, cout: int, stride: int) -> nn.Sequential:
            blocks = [
                _WideBlock(
                    cin if i == 0 else cout, cout, stride if i == 0 else 1, cfg.norm, cfg.dropout
                )
                for i in range(n)
            ]
            return nn.Sequential(*blocks)

        self.block1 = group(widths[0], widths[1], 1)
        self.block2 = group(widths[1], widths[2], 2)
        self.block3 = group(widths[2], widths[3], 2)
        self.final_norm = _norm(cfg.norm, widths[3])
        self.head = nn.Linear(widths[3], num_outputs)
        self.map_names = ("block1", "block2", "block3")

    def forward_features(self, x):
        m1 = self.block1(self.stem(x))
        m2 = self.block2(m1)
        m3 = self.block3(m2)
        latent = F.leaky_relu(self.final_norm(m3), 0.2).mean(dim=(2, 3))
        return latent, {"block1": m1, "block2": m2, "block3": m3}


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: Norm):
        super().__init__()
        self.c1, self.n1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), _norm(norm, cout)
        self.c2, self.n2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), _norm(norm, cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(norm, cout)
            )

    def forward(self, x):
        y = F.relu(self.n1(self.c1(x)))
        return F.relu(self.n2(self.c2(y)) + self.short(x))


class ResNet18(Classifier):
    """ResNet-18, CIFAR variant: 3x3 stem, no max-pool; `width` 64 gives the standard widths."""

    def __init__(self, in_channels: int, num_outputs: int, cfg: ModelConfig):
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), _norm(cfg.norm, w), nn.ReLU()
        )
        widths, strides = [w, 2 * w, 4 * w, 8 * w], [1, 2, 2, 2]
        layers, cin = [], w
        for cout, stride in zip(widths, strides, strict=True):
            layers.append(
                nn.Sequential(
                    _BasicBlock(cin, cout, stride, cfg.norm), _BasicBlock(cout, cout, 1, cfg.norm)
                )
            )
            cin = cout
        self.block1, self.block2, self.block3, self.block4 = layers
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(8 * w, num_outputs)
        self.map_names = ("block1", "block2", "block3", "block4")

    def forward_features(self, x):
        m1 = self.block1(self.stem(x))
        m2 = self.block2(m1)
        m3 = self.block3(m2)
        m4 = self.block4(m3)
        latent = self.drop(m4.mean(dim=(2, 3)))
        return latent, {"block1": m1, "block2": m2, "block3": m3, "block4": m4}


ARCHITECTURES: dict[str, Callable[[int, int, ModelConfig], Classifier]] = {
    "small_cnn": SmallCNN,
    "flat_cnn": FlatCNN,
    "judge_cnn": JudgeCNN,
    "score_cnn": ScoreCNN,
    "wrn": WideResNet,
    "resnet18": ResNet18,
}


def expected_args(cfg: ModelConfig, in_channels: int) -> dict:
    """Model args a checkpoint must have under the current parameters (`num_outputs` aside: STIC
    rounds add a fake class), so a stale or foreign checkpoint is refused by key."""
    return {**asdict(cfg), "in_channels": in_channels}


NewRows = Literal["zero", "random"]


def with_outputs(
    model: Classifier, args: dict, num_outputs: int, new_rows: NewRows = "zero"
) -> tuple[Classifier, dict]:
    """`model` with `num_outputs` outputs: itself when it has them, else a copy with extra head
    rows (`expand_outputs`)."""
    if model.num_outputs == num_outputs:
        return model, args
    if num_outputs < model.num_outputs:
        raise ValueError(f"cannot drop outputs: {model.num_outputs} -> {num_outputs}")
    return expand_outputs(model, args, num_outputs, new_rows)


def model_args(cfg: ModelConfig, in_channels: int, num_outputs: int) -> dict:
    """Everything needed to rebuild the model; stored in every checkpoint."""
    return {"in_channels": in_channels, "num_outputs": num_outputs, **asdict(cfg)}


def build_model(args: dict) -> Classifier:
    args = dict(args)
    in_channels, num_outputs = args.pop("in_channels"), args.pop("num_outputs")
    cfg = ModelConfig(**args)
    cfg.validate()
    return ARCHITECTURES[cfg.arch](in_channels, num_outputs, cfg)


def expand_outputs(
    model: Classifier, args: dict, num_outputs: int, new_rows: NewRows = "zero"
) -> tuple[Classifier, dict]:
    """A copy of `model` with `num_outputs` head rows; old rows kept, new rows zero or random.

    Used to add STIC's extra "fake" class to a K-class classifier. `zero`: the fake logit is 0,
    so the copy's predictions over the real classes are unchanged; `random`: the new rows get
    nn.Linear's initialisation from the global generator (the caller seeds it), as if the
    network had been built with them.
    """
    new_args = {**args, "num_outputs": num_outputs}
    new = build_model(new_args)
    state = model.state_dict()
    old_w, old_b = state["head.weight"], state["head.bias"]
    keep = min(num_outputs, old_w.shape[0])
    if new_rows == "random":
        w, b = new.head.weight.detach().clone(), new.head.bias.detach().clone()
    else:
        w = torch.zeros(num_outputs, old_w.shape[1], dtype=old_w.dtype)
        b = torch.zeros(num_outputs, dtype=old_b.dtype)
    w[:keep], b[:keep] = old_w[:keep], old_b[:keep]
    state["head.weight"], state["head.bias"] = w, b
    new.load_state_dict(state)
    return new, new_args
