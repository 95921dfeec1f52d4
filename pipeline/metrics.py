"""Evaluation of a sample set against real images, measured the same way for every method.

A chain of small pure functions (docs/methods.md#evaluation):
  images -> judge features (penultimate latent) and logits, through the torch-fidelity feature
  extractor registered for the judge checkpoint -> torch-fidelity's FID, KID, Inception-Score
  analogue and precision/recall on those features;
  judge probabilities -> discriminability (AC-GAN) and interpolation error (STIC's soft fakes);
  features and pixels -> nearest-neighbour distances to the training images (memorisation);
  same-class image pairs -> MS-SSIM (pytorch_msssim) -> diversity (AC-GAN).

Sample-size honesty: every set is evaluated at the same number of hard samples,
n = min(eval.num_samples, held-out test images) (FID is biased at small n: only equal n compare),
judge-FID gets a bootstrap interval over the samples and KID (unbiased) stands beside it.
Nothing here reads params.yaml or a fixed path; torch-fidelity is imported where a metric is
computed (its import costs seconds).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pipeline.data import to_float
from pipeline.errors import ConfigError, DataError
from pipeline.infer import batched
from pipeline.io import sha256_of
from pipeline.ladder import LadderConfig
from pipeline.models import Classifier
from pipeline.samples import two_class_mixtures

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- result keys (stable: DVC metrics)
EVAL_COUNT = "eval_count"  # n: hard samples every set is measured at
NUM_HARD = "num_hard_samples"
NUM_SOFT = "num_soft_samples"
NUM_REFERENCE = "num_reference_images"
JUDGE_FID = "judge_fid"
JUDGE_FID_LO = "judge_fid_lo"  # bootstrap interval over samples (eval.confidence)
JUDGE_FID_HI = "judge_fid_hi"
JUDGE_FID_TEST = "judge_fid_test"  # against the held-out test images instead of the training set
JUDGE_KID = "judge_kid"
JUDGE_KID_STD = "judge_kid_std"
JUDGE_IS = "judge_is"
JUDGE_IS_STD = "judge_is_std"
PRECISION = "precision"
RECALL = "recall"
DISCRIMINABILITY = "discriminability"
CAS = "cas"  # classification accuracy score: a classifier trained on the samples, on real images
CAS_TEST_IMAGES = "cas_test_images"  # the real held-out images it is scored on
NN_FEATURE_RATIO = "nn_feature_ratio"  # median NN distance to train, samples / held-out images
NN_PIXEL_RATIO = "nn_pixel_ratio"
COPY_SHARE = "copy_share"  # samples nearer a training image (pixels) than 95% of held-out images
DIVERSITY = "diversity_msssim"
DIVERSE_FRACTION = "diverse_class_fraction"
DIVERSITY_THRESHOLD = "diversity_real_threshold"
DISTINCT_SHARE = "distinct_share"  # hard samples that are no near-copy of another of their class
INTERPOLATION_ERROR = "interpolation_error"
INTERPOLATION_LO = "interpolation_error_lo"  # 95% interval (normal approximation)
INTERPOLATION_HI = "interpolation_error_hi"
INTERPOLATION_CHANCE = "interpolation_chance"  # the error of always answering 0.5
PAIR_MASS = "pair_mass"  # mean p_i + p_j of the judge on the two mixed classes
SECOND_JUDGE = "judge_b"  # prefix of the second judge's keys
INCEPTION_FID = "inception_fid"
INCEPTION_KID = "inception_kid"
INCEPTION_IS = "inception_is"
INCEPTION_IS_STD = "inception_is_std"
INCEPTION_STATUS = "inception_status"  # "computed" or "not computed: <reason>"
INCEPTION_WEIGHTS_SHA256 = "inception_weights_sha256"  # which weights file computed them

JUDGE_EXTRACTOR = "cgen-judge"  # torch-fidelity registry name of the judge extractor
FEATURE_EMBED = "embed"  # penultimate features (input of the linear head): FID, KID, PR
FEATURE_LOGITS = "logits"  # class logits: the Inception-Score analogue
INCEPTION_EXTRACTOR = "inception-v3-compat"
NORMAL_95 = 1.959963984540054  # two-sided 95% normal quantile
COPY_QUANTILE = 0.05  # a sample nearer than this quantile of held-out NN distances is a copy
DUPLICATE_RMS = 0.02  # RMS pixel difference (in [-1, 1] units) below which two images are copies

# pytorch_msssim 1.0 always checks side > (win - 1) * 2**4 (five scales, Wang et al. 2003), whatever
# `weights` says. A 3-tap window (sigma 1.5, nearly a box) on 3x-upsampled 16 px images keeps its
# five scales and standard weights; the 11-tap standard window would need 176 px and costs ~100x.
MSSSIM_WINDOW = 3
MSSSIM_DOWNSAMPLINGS = 4


@dataclass(frozen=True)
class EvalConfig:
    """Parameters of evaluation (params.yaml `eval`); none of them changes how samples are made."""

    seed: int  # subsampling, bootstrap, MS-SSIM pairs, KID subsets and IS splits
    num_samples: int  # hard samples per set, capped at the held-out test split's size
    batch_size: int  # judge batch size (results do not depend on it)
    judge_metrics: bool  # judge-FID/KID/IS and precision/recall
    kid_subsets: int
    kid_subset_size: int  # lowered to the sample count when fewer samples exist
    isc_splits: int  # lowered to the sample count when fewer samples exist
    prc_neighborhood: int  # k of k-NN precision/recall (Kynkaanniemi et al. 2019)
    bootstrap: int  # resamples for judge-FID's interval; 0 = none
    confidence: float  # level of every interval (bootstrap here, across seeds in `compare`)
    diversity: bool
    diversity_pairs: int  # random same-class pairs per class for MS-SSIM
    neighbours: int  # samples shown above their nearest training image (memorisation figure)
    inception_weights: str | None  # local Inception-v3 weights file; null: not computed
    cas_steps: int  # training steps of the classification accuracy score's classifier; 0: none

    def validate(self) -> None:
        if self.num_samples <= self.prc_neighborhood:
            raise ConfigError("num_samples: must exceed prc_neighborhood")
        if self.batch_size < 1 or self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise ConfigError("batch_size: kid_subsets >= 1 and kid_subset_size >= 2 needed")
        if self.isc_splits < 1 or self.prc_neighborhood < 1 or self.diversity_pairs < 1:
            raise ConfigError("isc_splits: prc_neighborhood and diversity_pairs must be >= 1")
        if self.bootstrap < 0 or self.neighbours < 0 or self.cas_steps < 0:
            raise ConfigError("bootstrap:, neighbours and cas_steps must be >= 0")
        if not 0.5 < self.confidence < 1:
            raise ConfigError("confidence: must be in (0.5, 1)")

    def count(self, test_images: int) -> int:
        """n: the hard samples every set is measured at, so that FIDs compare."""
        return min(self.num_samples, test_images)


@dataclass(frozen=True)
class EvalSection:
    """params.yaml `eval`: how sets are measured, and which sets besides the STIC rounds."""

    metrics: EvalConfig  # changing these reruns only evaluation and the report
    methods: tuple[str, ...]  # sample sets (data/samples/<name>.pt) evaluated and reported
    ladder: LadderConfig  # the generation test's calibration: degraded real images

    def validate(self) -> None:
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError("methods: names must be unique")
        if "real" in self.methods:
            raise ConfigError("methods: 'real' is reserved for the real-data floor")


# ----------------------------------------------------------------- judge features


class JudgeFeatures:
    """A judge's penultimate features (N, D) and logits (N, K) of uint8 images."""

    def __init__(self, embed: torch.Tensor, logits: torch.Tensor):
        self.embed, self.logits = embed, logits

    def __len__(self) -> int:
        return int(self.embed.shape[0])

    def subset(self, index: torch.Tensor) -> JudgeFeatures:
        return JudgeFeatures(self.embed[index], self.logits[index])

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.double().softmax(1)


def judge_features(
    judge: Classifier, images: torch.Tensor, batch_size: int, device: torch.device | str = "cpu"
) -> JudgeFeatures:
    """uint8 (N, C, H, W) -> the judge's features, as the torch-fidelity extractor computes them
    (`JudgeFeatureExtractor.forward`: float conversion, penultimate latent, linear head)."""
    judge.eval()

    def both(x: torch.Tensor) -> torch.Tensor:
        latent, _ = judge.forward_features(to_float(x))
        return torch.cat([latent, judge.head(latent)], dim=1).float()

    out = batched(both, images, batch_size, device)
    d = judge.head.in_features
    if len(images) == 0:
        return JudgeFeatures(torch.zeros(0, d), torch.zeros(0, judge.num_outputs))
    return JudgeFeatures(out[:, :d], out[:, d:])


def register_judge_extractor() -> str:
    """Register the judge as a torch-fidelity feature extractor once per process (for
    torch-fidelity's own entry points, e.g. `fidelity --feature-extractor cgen-judge`)."""
    from torch_fidelity.feature_extractor_base import FeatureExtractorBase
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    from pipeline.checkpoint import load_classifier

    class JudgeFeatureExtractor(FeatureExtractorBase):
        """uint8 images -> (penultimate features, logits); the checkpoint path arrives as
        `feature_extractor_weights_path`. Its cache is keyed by name, not weights: pass
        cache=False."""

        def __init__(self, name: str, features_list: list[str], **kwargs: Any):
            super().__init__(name, features_list)
            path = kwargs.get("feature_extractor_weights_path")
            if path is None:
                raise ValueError(f"{name}: needs feature_extractor_weights_path (a judge)")
            self.model, _ = load_classifier(Path(path))

        @staticmethod
        def get_provided_features_list() -> tuple[str, ...]:
            return (FEATURE_EMBED, FEATURE_LOGITS)

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return FEATURE_LOGITS if metric == "isc" else FEATURE_EMBED

        @staticmethod
        def can_be_compiled() -> bool:
            return False

        @staticmethod
        def get_dummy_input_for_compile() -> None:
            return None

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            f = judge_features(self.model, x, len(x), x.device)
            out = {FEATURE_EMBED: f.embed, FEATURE_LOGITS: f.logits}
            return tuple(out[name] for name in self.features_list)

    if JUDGE_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(JUDGE_EXTRACTOR, JudgeFeatureExtractor)
    return JUDGE_EXTRACTOR


# ----------------------------------------------------------------- torch-fidelity on features


def fid_stats(features: torch.Tensor) -> dict:
    from torch_fidelity.metric_fid import fid_features_to_statistics

    return fid_features_to_statistics(features.double())


def fid(fake: torch.Tensor | dict, real: torch.Tensor | dict) -> float:
    """FID between two feature sets (N, D) (or their statistics)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    a = fake if isinstance(fake, dict) else fid_stats(fake)
    b = real if isinstance(real, dict) else fid_stats(real)
    # a set measured against itself can come out at -1e-8: FID is a squared distance
    return max(0.0, float(fid_statistics_to_metric(a, b, verbose=False)[KEY_METRIC_FID]))


def fidelity(fake: JudgeFeatures, real: JudgeFeatures, cfg: EvalConfig) -> dict[str, float]:
    """Judge-FID/KID/IS and precision/recall (torch-fidelity's metric functions)."""
    from torch_fidelity.metric_isc import (
        KEY_METRIC_ISC_MEAN,
        KEY_METRIC_ISC_STD,
        isc_features_to_metric,
    )
    from torch_fidelity.metric_kid import (
        KEY_METRIC_KID_MEAN,
        KEY_METRIC_KID_STD,
        kid_features_to_metric,
    )
    from torch_fidelity.metric_prc import (
        KEY_METRIC_PRECISION,
        KEY_METRIC_RECALL,
        prc_features_to_metric,
    )

    n = min(len(fake), len(real))
    kid = kid_features_to_metric(
        fake.embed.double(),
        real.embed.double(),
        kid_subsets=cfg.kid_subsets,
        kid_subset_size=min(cfg.kid_subset_size, n),  # it must not exceed either set
        rng_seed=cfg.seed % 2**32,
        verbose=False,
        kid_degree=3,
        kid_gamma=None,
        kid_coef0=1,
        kid_kernel="poly",
    )
    isc = isc_features_to_metric(
        fake.logits, splits=max(1, min(cfg.isc_splits, len(fake))), rng_seed=cfg.seed % 2**32
    )
    prc = prc_features_to_metric(
        fake.embed,
        real.embed,
        prc_neighborhood=cfg.prc_neighborhood,
        prc_batch_size=10000,
        save_cpu_ram=True,
        verbose=False,
    )
    return {
        JUDGE_FID: fid(fake.embed, real.embed),
        JUDGE_KID: kid[KEY_METRIC_KID_MEAN],
        JUDGE_KID_STD: kid[KEY_METRIC_KID_STD],
        JUDGE_IS: isc[KEY_METRIC_ISC_MEAN],
        JUDGE_IS_STD: isc[KEY_METRIC_ISC_STD],
        PRECISION: prc[KEY_METRIC_PRECISION],
        RECALL: prc[KEY_METRIC_RECALL],
    }


def bootstrap_interval(
    stat: Callable[[torch.Tensor], float],
    n: int,
    replicates: int,
    confidence: float,
    gen: torch.Generator,
) -> tuple[float, float]:
    """A bootstrap interval of stat: the spread of stat over `replicates` resamples of range(n)
    with replacement, placed around the full-sample value t = stat(all): [t + q_lo - m, t + q_hi
    - m], with q the resamples' quantiles and m their median. A resample repeats items, which
    inflates FID by a bias larger than its spread at small n; the plain percentile interval then
    lies above t, and the basic one below it. Shifting by the median keeps the bootstrap's spread
    and removes that bias to first order, so the interval always holds t."""
    full = stat(torch.arange(n))
    values = torch.tensor(
        [stat(torch.randint(n, (n,), generator=gen)) for _ in range(replicates)],
        dtype=torch.float64,
    )
    tail = (1 - confidence) / 2
    q_lo, q_hi, mid = (float(values.quantile(q)) for q in (tail, 1 - tail, 0.5))
    return full + q_lo - mid, full + q_hi - mid


def inception_unavailable(weights: str | None) -> str | None:
    """Why Inception metrics cannot be computed (None when they can). Never downloads."""
    if weights is None:
        return "not computed: eval.inception_weights is null (no local Inception weights)"
    if not Path(weights).is_file():
        return f"not computed: eval.inception_weights file {weights} does not exist"
    return None


# torch hub's convention, which the published weights file follows
# (pt_inception-2015-12-05-6726825d.pth): the name ends in the first hex digits of its SHA-256
HUB_HASH = re.compile(r"-([0-9a-f]{8,64})\.pth?$")


def verify_inception_weights(path: Path) -> str:
    """The weights file's SHA-256, after checking it is safe for torch-fidelity, which loads it
    with `weights_only=False` (a pickle that may run code): its name's hash prefix must match
    (torch hub's check), and it must load with `weights_only=True`, so it holds only tensors and
    containers. DataError (one line, naming the file) otherwise."""
    sha = sha256_of(path)
    named = HUB_HASH.search(Path(path).name)
    if named and not sha.startswith(named.group(1)):
        raise DataError(
            f"{path}: SHA-256 {sha[:16]}... does not match the {named.group(1)} its name promises; "
            "replace it with the published file"
        )
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # an UnpicklingError for code, anything else for a broken file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path}: not a plain weights file ({first[:160]}); refused before torch-fidelity's "
            "unrestricted load"
        ) from None
    return sha


class ImageTensorDataset(torch.utils.data.Dataset):
    """uint8 (N, C, H, W) images as the Dataset torch-fidelity reads, one (C, H, W) per item."""

    def __init__(self, images: torch.Tensor, channels: int | None = None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images must be uint8 (N, C, H, W)")
        if channels == 3 and images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)  # Inception wants RGB
        self.images = images.contiguous()

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def inception_fidelity(
    fake: torch.Tensor, real: torch.Tensor, weights: Path, cfg: EvalConfig, cuda: bool
) -> dict[str, float | str]:
    """Inception-v3 FID/KID/IS from a local weights file (no precision/recall: VGG16 downloads)."""
    sha = verify_inception_weights(weights)
    import torch_fidelity

    out = torch_fidelity.calculate_metrics(
        input1=ImageTensorDataset(fake, channels=3),
        input2=ImageTensorDataset(real, channels=3),
        isc=True,
        fid=True,
        kid=True,
        prc=False,
        feature_extractor=INCEPTION_EXTRACTOR,
        feature_extractor_weights_path=str(weights),
        cuda=cuda,
        batch_size=cfg.batch_size,
        isc_splits=max(1, min(cfg.isc_splits, len(fake))),
        kid_subsets=cfg.kid_subsets,
        kid_subset_size=min(cfg.kid_subset_size, len(fake), len(real)),
        rng_seed=cfg.seed % 2**32,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    return {
        INCEPTION_FID: out[torch_fidelity.KEY_METRIC_FID],
        INCEPTION_KID: out[torch_fidelity.KEY_METRIC_KID_MEAN],
        INCEPTION_IS: out[torch_fidelity.KEY_METRIC_ISC_MEAN],
        INCEPTION_IS_STD: out[torch_fidelity.KEY_METRIC_ISC_STD],
        INCEPTION_WEIGHTS_SHA256: sha,
    }


# ----------------------------------------------------------------- judge probabilities


def discriminability(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """AC-GAN's discriminability: share of samples the judge assigns to their intended class."""
    return float((probs.argmax(1) == labels).double().mean())


def interpolation(probs: torch.Tensor, targets: torch.Tensor) -> dict[str, float | None]:
    """For samples made for lambda e_i + (1 - lambda) e_j: the mean |p(i) / (p(i) + p(j)) -
    lambda| (0: the judge's relative belief follows the mixing weight), the same for a constant
    answer 0.5 (chance), and the judge's mass p(i) + p(j) on the two classes (1: the sample looks
    like one of them at all). None when there is no two-class soft target."""
    rows, i, j, lam = two_class_mixtures(targets)
    if len(rows) == 0:
        keys = (INTERPOLATION_ERROR, INTERPOLATION_LO, INTERPOLATION_HI, INTERPOLATION_CHANCE)
        return dict.fromkeys((*keys, PAIR_MASS))
    p = probs[rows].double()
    p_i, p_j = p.gather(1, i[:, None])[:, 0], p.gather(1, j[:, None])[:, 0]
    relative = p_i / (p_i + p_j).clamp_min(1e-300)
    lam = lam.double()
    errors = (relative - lam).abs()
    half = NORMAL_95 * float(errors.std()) / math.sqrt(len(errors)) if len(errors) > 1 else math.nan
    return {
        INTERPOLATION_ERROR: float(errors.mean()),
        INTERPOLATION_LO: float(errors.mean()) - half,
        INTERPOLATION_HI: float(errors.mean()) + half,
        INTERPOLATION_CHANCE: float((0.5 - lam).abs().mean()),
        PAIR_MASS: float((p_i + p_j).mean()),
    }


# ----------------------------------------------------------------- memorisation


def nearest_distances(a: torch.Tensor, b: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """(N,) Euclidean distance from each row of `a` (N, D) to its nearest row of `b` (M, D)."""
    b = b.double()
    out = [torch.cdist(a[i : i + batch_size].double(), b).min(1).values
           for i in range(0, len(a), batch_size)]  # fmt: skip
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def nearest_index(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) index of each row of `a`'s nearest row of `b`."""
    return torch.cdist(a.double(), b.double()).argmin(1)


def memorisation(
    sample: torch.Tensor, held_out: torch.Tensor, train: torch.Tensor
) -> tuple[float | None, float | None]:
    """(median NN distance to `train` of samples / of held-out real images, share of samples
    nearer a training image than the 5% quantile of held-out images' NN distances). Ratio < 1:
    samples sit closer to the training images than unseen real images do."""
    if len(sample) == 0:
        return None, None
    d_s = nearest_distances(sample, train)
    d_h = nearest_distances(held_out, train)
    ratio = float(d_s.median() / d_h.median().clamp_min(1e-12))
    copies = float((d_s < d_h.quantile(COPY_QUANTILE)).double().mean())
    return ratio, copies


def distinct_share(images: torch.Tensor, labels: torch.Tensor) -> float | None:
    """Share of images that are no near-copy (RMS difference < DUPLICATE_RMS in [-1, 1] units)
    of an earlier image of their class: 1 for a varied set, 1/n for one image repeated."""
    if len(images) == 0:
        return None
    x = to_float(images).flatten(1).double()
    keep = 0
    for c in torch.unique(labels).tolist():
        xc = x[labels == c]
        d = torch.cdist(xc, xc) / math.sqrt(x.shape[1])  # RMS differences
        earlier = torch.ones_like(d, dtype=torch.bool).tril(-1)
        keep += int((~((d < DUPLICATE_RMS) & earlier).any(1)).sum())
    return keep / len(images)


# ----------------------------------------------------------------- diversity (MS-SSIM)


def msssim_upsample_factor(side: int, window: int = MSSSIM_WINDOW) -> int:
    """Smallest integer factor that makes `side` pass pytorch_msssim's five-scale size check.

    Small images (16x16 digits) are upsampled bilinearly by this factor so the maintained
    implementation runs unmodified with its five scales and standard weights; with the 3-tap window
    the factor at 16 px is 3 (48 px), so the five scales' windows span about 1, 2, 4, 8 and 16
    original pixels, i.e. from one pixel to the whole image."""
    limit = (window - 1) * 2**MSSSIM_DOWNSAMPLINGS
    return 1 if side > limit else limit // side + 1


def msssim_pairs(a: torch.Tensor, b: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
    """MS-SSIM of uint8 (P, C, H, W) images `a[p]` vs `b[p]` -> (P,) float64 in [0, 1]."""
    from pytorch_msssim import ms_ssim

    factor = msssim_upsample_factor(min(a.shape[-2:]))
    out = []
    for s in range(0, len(a), batch_size):
        x, y = a[s : s + batch_size].double(), b[s : s + batch_size].double()
        if factor > 1:
            x = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
            y = F.interpolate(y, scale_factor=factor, mode="bilinear", align_corners=False)
        out.append(ms_ssim(x, y, data_range=255, size_average=False, win_size=MSSSIM_WINDOW))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def same_class_pairs(
    labels: torch.Tensor, pairs_per_class: int, generator: torch.Generator
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Random pairs of distinct same-class indices, `pairs_per_class` per class of >= 2 members."""
    out = {}
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls).flatten()
        n = len(idx)
        if n < 2:
            continue
        first = torch.randint(n, (pairs_per_class,), generator=generator)
        offset = torch.randint(1, n, (pairs_per_class,), generator=generator)  # never 0: i != j
        out[int(cls)] = (idx[first], idx[(first + offset) % n])
    return out


def class_msssim(
    images: torch.Tensor, labels: torch.Tensor, pairs_per_class: int, seed: int, batch_size: int
) -> dict[int, float]:
    """Mean MS-SSIM of random same-class pairs, per class (higher = less diverse)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        cls: float(msssim_pairs(images[a], images[b], batch_size).mean())
        for cls, (a, b) in same_class_pairs(labels, pairs_per_class, gen).items()
    }


def diversity_summary(
    per_class: dict[int, float], real_per_class: dict[int, float]
) -> dict[str, float | None]:
    """AC-GAN's summary: mean MS-SSIM over classes, and the share of classes more diverse (lower
    MS-SSIM) than the least diverse real class (the highest real per-class MS-SSIM)."""
    if not per_class or not real_per_class:
        return {DIVERSITY: None, DIVERSE_FRACTION: None, DIVERSITY_THRESHOLD: None}
    threshold = max(real_per_class.values())
    scores = list(per_class.values())
    return {
        DIVERSITY: sum(scores) / len(scores),
        DIVERSE_FRACTION: sum(s < threshold for s in scores) / len(scores),
        DIVERSITY_THRESHOLD: threshold,
    }


# ----------------------------------------------------------------- the whole evaluation


def cap(n: int, limit: int, seed: int) -> torch.Tensor:
    """Sorted indices of at most `limit` of `n` items, chosen by `seed` (all if n <= limit)."""
    if n <= limit:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values
