"""Wang & Torr 2022, "Traditional Classification Neural Networks are Good Generators" (2211.14794).

Images are found by optimising the *input* of a trained classifier. Our reading
(docs/methods.md#wang-and-torr), every component switchable so an ablation can remove it:
- mask-based stochastic views (`views`): each step scores M views of the image, each with random
  square patches replaced by `mask_fill` and a random shift of up to `max_shift` pixels, and
  averages CE(f(view), y) over them, so no single pixel pattern can carry the class alone;
- distance metric loss (`distance_weight`): ||phi(x) - mu_y||^2 / D, phi the classifier's
  penultimate latent, mu_y the mean latent of real class-y images;
- distribution loss (`distribution_weight`): per class in the batch,
  ||mean(phi) - mu_y||^2 / D + ||cov(phi) - Sigma_y||_F^2 / D^2, matching the real mean and
  covariance, which also keeps the batch from collapsing onto mu_y;
- progressive resolution (`progressive`): optimise a start_resolution image, double it (bilinear)
  every `steps_per_resolution` Adam steps up to the data's size; the classifier always sees the
  image upsampled to full size. Off: the same total number of steps at full size.
All off is plain input optimisation, Wang & Torr's "adversarial-attack-like" control.
The classifier it optimises against is its own (`round: wang_torr`, `classifier`: a conventional
CNN trained on real data only, convolutions and global average pooling like the paper's ResNets),
or r0 or a STIC round (docs/readings.md: which network decides whether it draws digits).
Pixels are kept in [-1, 1] by clamping after each Adam step (projected gradient); the optimiser
state restarts at each resolution, as the parameter changes shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from pipeline import numerics
from pipeline.config import Overrides, variant
from pipeline.errors import ConfigError
from pipeline.infer import device_of, embed_all
from pipeline.models import ModelConfig
from pipeline.samples import class_labels
from pipeline.train import ClassifierConfig

OWN_CLASSIFIER = "wang_torr"  # `round` naming the classifier trained from `classifier`


@dataclass(frozen=True)
class WangTorrConfig:
    steps_per_resolution: int
    start_resolution: int  # progressive: first resolution (doubled up to the image size)
    progressive: bool
    lr: float  # Adam on pixels in [-1, 1]
    init_std: float  # start: N(0, init_std^2) noise at the first resolution, clamped
    views: bool  # mask-based stochastic views
    num_views: int  # M stochastic views per step
    mask_patch: int  # side of a masked square, in full-resolution pixels
    mask_prob: float  # chance that a patch is masked
    mask_fill: float  # value of masked pixels (0 = mid grey in [-1, 1])
    max_shift: int  # random translation of a view, in pixels
    distance_weight: float  # 0 turns the distance metric loss off
    distribution_weight: float  # 0 turns the distribution loss off
    samples_per_class: int
    classes_per_batch: int  # classes optimised together (memory vs speed)

    def validate(self) -> None:
        if self.steps_per_resolution < 0:
            raise ConfigError("steps_per_resolution: must be >= 0")
        if self.start_resolution < 1 or self.num_views < 1 or self.mask_patch < 1:
            raise ConfigError("start_resolution: num_views and mask_patch must be at least 1")
        if self.lr <= 0 or self.init_std < 0:
            raise ConfigError("lr: must be positive and init_std >= 0")
        if not 0.0 <= self.mask_prob < 1.0:
            raise ConfigError("mask_prob: must be in [0, 1)")
        if not -1.0 <= self.mask_fill <= 1.0:
            raise ConfigError("mask_fill: must be in [-1, 1]")
        if self.max_shift < 0 or self.distance_weight < 0 or self.distribution_weight < 0:
            raise ConfigError("max_shift: distance_weight and distribution_weight must be >= 0")
        if self.samples_per_class < 1 or self.classes_per_batch < 1:
            raise ConfigError("samples_per_class: and classes_per_batch must be at least 1")
        if self.distribution_weight > 0 and self.samples_per_class < 2:
            raise ConfigError("distribution_weight: needs samples_per_class >= 2 (a covariance)")


@dataclass(frozen=True)
class WangTorrMethodConfig:
    round: str  # the classifier it optimises against: wang_torr (its own), r0 or a STIC round
    classifier: ClassifierConfig  # its own classifier (stage wang_torr_classifier)
    sampler: WangTorrConfig  # what every variant shares
    variants: dict[str, Overrides]  # sample-set name -> overrides of `sampler` ({} = all on)

    def variant(self, name: str) -> WangTorrConfig:
        return variant(WangTorrConfig, self.sampler, self.variants, name, "wang_torr")

    def validate(self) -> None:
        if not self.variants:
            raise ConfigError("variants: list at least one variant (e.g. wang_torr: {})")
        for name in self.variants:
            self.variant(name)

    # what the parameter gate asks of every method (pipeline.methods)
    def sample_sets(self) -> list[str]:
        return list(self.variants)

    def hard_counts(self) -> dict[str, int]:
        return {f"variants.{n}.samples_per_class": self.variant(n).samples_per_class
                for n in self.variants}  # fmt: skip

    def models(self) -> dict[str, ModelConfig]:
        return {"classifier.model": self.classifier.model}

    def check_data(self, facts) -> None:
        for name in self.variants:
            if self.variant(name).start_resolution > facts.image_size:
                raise ConfigError(
                    f"variants.{name}.start_resolution: above data.image_size ({facts.image_size})"
                )


def components(cfg: WangTorrConfig) -> str:
    """The components a variant has on, e.g. 'views+distance+distribution+progressive'."""
    on = [
        name
        for name, active in (
            ("views", cfg.views),
            ("distance", cfg.distance_weight > 0),
            ("distribution", cfg.distribution_weight > 0),
            ("progressive", cfg.progressive),
        )
        if active
    ]
    return "+".join(on) or "plain input optimisation"


def resolution_schedule(
    start: int, final: int, steps_per_resolution: int, progressive: bool
) -> list[tuple[int, int]]:
    """[(resolution, steps), ...]: start, 2*start, ... (< final), then final.

    Not progressive: one level at `final` with as many steps as the progressive schedule in all.
    """
    levels, r = [], min(start, final)
    while r < final:
        levels.append(r)
        r *= 2
    levels.append(final)
    if not progressive:
        return [(final, steps_per_resolution * len(levels))]
    return [(res, steps_per_resolution) for res in levels]


@torch.no_grad()
def class_feature_stats(
    classifier: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class mean (K, D) and covariance (K, D, D) of the penultimate latent of real images."""
    z = embed_all(classifier, images)  # (N, D)
    means = torch.stack([z[labels == c].mean(0) for c in range(num_classes)])
    covs = torch.stack([torch.cov(z[labels == c].T) for c in range(num_classes)])
    return means, covs


def distance_loss(feats: torch.Tensor, labels: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||phi(x_i) - mu_{y_i}||^2 / D."""
    return (feats - means[labels]).pow(2).mean(1).mean()


def distribution_loss(
    feats: torch.Tensor, labels: torch.Tensor, means: torch.Tensor, covs: torch.Tensor
) -> torch.Tensor:
    """Mean over the classes in the batch (with >= 2 samples) of mean and covariance mismatch."""
    terms = []
    d = feats.shape[1]
    for c in torch.unique(labels).tolist():
        f = feats[labels == c]  # (n_c, D)
        if len(f) < 2:
            continue
        mean_term = (f.mean(0) - means[c]).pow(2).sum() / d
        cov_term = (torch.cov(f.T) - covs[c]).pow(2).sum() / d**2
        terms.append(mean_term + cov_term)
    return torch.stack(terms).mean() if terms else feats.new_zeros(())


def stochastic_views(x: torch.Tensor, cfg: WangTorrConfig, gen: torch.Generator) -> torch.Tensor:
    """M masked, shifted views of x (B, C, S, S) -> (M * B, C, S, S), view-major."""
    b, c, s, _ = x.shape
    g = -(-s // cfg.mask_patch)  # patches per side
    out = []
    for _ in range(cfg.num_views):
        keep = (torch.rand((b, 1, g, g), generator=gen) >= cfg.mask_prob).float().to(x.device)
        keep = F.interpolate(keep, scale_factor=cfg.mask_patch, mode="nearest")[..., :s, :s]
        v = x * keep + cfg.mask_fill * (1 - keep)  # (B, C, S, S)
        if cfg.max_shift > 0:
            m = cfg.max_shift
            dx, dy = torch.randint(0, 2 * m + 1, (2,), generator=gen).tolist()
            v = F.pad(v, (m, m, m, m), mode="replicate")[..., dy : dy + s, dx : dx + s]
        out.append(v)
    return torch.cat(out)


def _losses(
    classifier: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: WangTorrConfig,
    stats: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    gen: torch.Generator,
) -> dict[str, torch.Tensor]:
    latent, _ = classifier.forward_features(x)  # (B, D)
    logits = classifier.head(latent)[:, :num_classes]
    if cfg.views:
        views = stochastic_views(x, cfg, gen)  # (M * B, C, S, S)
        ce = F.cross_entropy(classifier(views)[:, :num_classes], y.repeat(cfg.num_views))
    else:
        ce = F.cross_entropy(logits, y)
    out = {"ce": ce, "ce_clean": F.cross_entropy(logits.detach(), y)}
    out["distance"] = distance_loss(latent, y, stats[0])
    out["distribution"] = distribution_loss(latent, y, *stats)
    out["total"] = (
        ce + cfg.distance_weight * out["distance"] + (cfg.distribution_weight * out["distribution"])
    )
    return out


def synthesize(
    classifier: torch.nn.Module,
    labels: torch.Tensor,
    image_shape: tuple[int, int, int],
    cfg: WangTorrConfig,
    stats: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    gen: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Optimise one batch of images for `labels` (B,); returns images (B, C, S, S), final losses."""
    c, size, _ = image_shape
    schedule = resolution_schedule(
        cfg.start_resolution, size, cfg.steps_per_resolution, cfg.progressive
    )
    res0 = schedule[0][0]
    dev = device_of(classifier)
    labels = labels.to(dev)
    stats = (stats[0].to(dev), stats[1].to(dev))
    p = (torch.randn((len(labels), c, res0, res0), generator=gen) * cfg.init_std).clamp(-1, 1)
    p = p.to(dev)
    for res, steps in schedule:
        if p.shape[-1] != res:
            p = F.interpolate(p, size=(res, res), mode="bilinear", align_corners=False)
        p = p.detach().requires_grad_(True)
        opt = numerics.adam([p], cfg.lr)
        for _ in range(steps):
            x = (
                p
                if res == size
                else F.interpolate(p, size=(size, size), mode="bilinear", align_corners=False)
            )
            loss = _losses(classifier, x, labels, cfg, stats, num_classes, gen)["total"]
            # the gradient w.r.t. the image only: the classifier's parameters are left untouched
            (p.grad,) = torch.autograd.grad(loss, [p])
            opt.step()
            with torch.no_grad():
                p.clamp_(-1.0, 1.0)
    x = p.detach()
    final = _losses(classifier, x, labels, cfg, stats, num_classes, gen)
    return x, {k: float(v.detach()) for k, v in final.items()}


def sample(
    classifier: torch.nn.Module,
    cfg: WangTorrConfig,
    stats: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    image_shape: tuple[int, int, int],
    gen: torch.Generator,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """`samples_per_class` images of every class, grouped by class, and mean final losses."""
    classifier.eval()
    n = cfg.samples_per_class
    labels = class_labels(num_classes, n)
    images, sums = [], {}
    chunks = range(0, num_classes, cfg.classes_per_batch)
    for start in tqdm(chunks, desc="wang_torr", unit="batch", leave=False, disable=not progress):
        y = labels[start * n : min(num_classes, start + cfg.classes_per_batch) * n]
        x, losses = synthesize(classifier, y, image_shape, cfg, stats, num_classes, gen)
        images.append(x.cpu())
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v * len(y)
    return torch.cat(images), labels, {k: v / len(labels) for k, v in sums.items()}


def passes_per_sample(cfg: WangTorrConfig, size: int) -> int:
    """Network passes per sample at image size `size`: every optimisation step of the resolution
    schedule scores the image and, with views, its `num_views` masked views."""
    schedule = resolution_schedule(cfg.start_resolution, size, cfg.steps_per_resolution,
                                   cfg.progressive)  # fmt: skip
    return sum(n for _, n in schedule) * (cfg.num_views + 1 if cfg.views else 1)
