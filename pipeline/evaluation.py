"""One sample set measured whole (stage `evaluate`): every metric of pipeline.metrics, family by
family, against the real training images, with the held-out test images as the second reference
and the yardstick of memorisation, from one or two judges."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.cas import classification_accuracy_score
from pipeline.data import ImageSet, to_float
from pipeline.metrics import (
    CAS,
    CAS_TEST_IMAGES,
    COPY_SHARE,
    DISCRIMINABILITY,
    DISTINCT_SHARE,
    EVAL_COUNT,
    INCEPTION_STATUS,
    JUDGE_FID_HI,
    JUDGE_FID_LO,
    JUDGE_FID_TEST,
    NN_FEATURE_RATIO,
    NN_PIXEL_RATIO,
    NUM_HARD,
    NUM_REFERENCE,
    NUM_SOFT,
    EvalConfig,
    JudgeFeatures,
    bootstrap_interval,
    cap,
    class_msssim,
    discriminability,
    distinct_share,
    diversity_summary,
    fid,
    fid_stats,
    fidelity,
    inception_fidelity,
    inception_unavailable,
    interpolation,
    judge_features,
    memorisation,
    nearest_index,
)
from pipeline.models import Classifier
from pipeline.samples import SampleSet, hard_targets


def real_as_samples(data: ImageSet, method: str = "real") -> SampleSet:
    """Real images as a SampleSet with one-hot targets: the real-data floor goes the same way."""
    return SampleSet(
        data.images, hard_targets(data.labels, data.num_classes), method, data.class_names
    )


@dataclass
class Evaluation:
    metrics: dict[str, Any]
    hard: SampleSet  # the hard samples measured
    neighbours: torch.Tensor  # (n,) index into the training set of each shown sample's nearest
    shown: torch.Tensor  # (n,) index into `hard` of the samples shown with their neighbour
    soft_probs: torch.Tensor  # (S, K) the main judge's probabilities of the soft samples
    soft: SampleSet


def evaluate_samples(
    samples: SampleSet,
    train: ImageSet,
    test: ImageSet,
    judges: Mapping[str, Classifier],
    cfg: EvalConfig,
    device: torch.device | str = "cpu",
    cas_model: Mapping[str, Any] | None = None,
    of_test: bool = False,
) -> Evaluation:
    """Every metric of `samples` against the real training images, with the held-out test
    images as the second reference and the yardstick of memorisation.

    `judges`: "judge" (every headline metric) and optionally "judge_b" (judge-FID and
    discriminability again, from a judge of another seed and architecture). Hard samples give
    fidelity, discriminability, memorisation and diversity; soft samples the interpolation
    metrics. Both parts are capped at n = cfg.count(len(test)), chosen by cfg.seed.

    `cas_model`: the args of the classifier the classification accuracy score trains on the hard
    samples (pipeline.cas; none: not computed), scored on the test images; `of_test`: the
    samples are the test images themselves, in order (the real floor, the calibration ladder),
    so the score uses the test images not among the n drawn."""
    if samples.class_names != train.class_names:
        raise ValueError(
            f"{samples.method}: classes {samples.class_names} differ from the real "
            f"data's {train.class_names}"
        )
    n = cfg.count(len(test))
    hard_idx = torch.nonzero(samples.hard).flatten()
    soft_idx = torch.nonzero(~samples.hard).flatten()
    drawn = hard_idx[cap(len(hard_idx), n, cfg.seed)]
    hard = samples.subset(drawn)
    soft = samples.subset(soft_idx[cap(len(soft_idx), n, cfg.seed + 1)])
    metrics: dict[str, Any] = {
        EVAL_COUNT: n,
        NUM_HARD: len(hard),
        NUM_SOFT: len(soft),
        NUM_REFERENCE: len(train),
    }
    judge = judges["judge"]
    features = {
        name: judge_features(judge, d.images, cfg.batch_size, device)
        for name, d in (("hard", hard), ("train", train), ("test", test), ("soft", soft))
    }
    metrics |= judge_metrics(features, hard.labels, cfg)
    pixels = {name: to_float(d.images).flatten(1) for name, d in (("hard", hard), ("train", train),
                                                                  ("test", test))}  # fmt: skip
    metrics |= memorisation_metrics(features, pixels, hard)
    shown = _spread(hard.labels, cfg.neighbours)
    neighbours = nearest_index(pixels["hard"][shown], pixels["train"]) if len(shown) else shown
    for name, other in judges.items():
        if name != "judge":
            metrics |= second_judge_metrics(name, other, hard, train, cfg, device)
    metrics |= interpolation(features["soft"].probs, soft.targets)
    if cfg.diversity:
        metrics |= diversity_metrics(hard, train, cfg)
    metrics |= inception_metrics(hard, train, cfg, device)
    rest = torch.ones(len(test), dtype=torch.bool)
    if of_test:
        rest[drawn] = False  # the held-out images the samples are not
    if cas_model is not None and cfg.cas_steps > 0 and len(hard) and rest.any():
        taught = ImageSet(hard.images, hard.labels, hard.class_names)
        metrics[CAS] = classification_accuracy_score(
            taught, test.subset(torch.nonzero(rest).flatten()), dict(cas_model), cfg.cas_steps,
            cfg.seed, device,
        )  # fmt: skip
        metrics[CAS_TEST_IMAGES] = int(rest.sum())
    clean = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in metrics.items()
    }
    return Evaluation(clean, hard, neighbours, shown, features["soft"].probs, soft)


def judge_metrics(
    features: Mapping[str, JudgeFeatures], labels: torch.Tensor, cfg: EvalConfig
) -> dict[str, Any]:
    """The main judge's numbers of the hard samples: FID/KID/IS/precision/recall against the
    training images, judge-FID's bootstrap interval, FID against the test images, and
    discriminability (the FID family needs more samples than the precision neighbourhood)."""
    f_hard, f_train, f_test = features["hard"], features["train"], features["test"]
    n = len(labels)
    out: dict[str, Any] = {}
    if cfg.judge_metrics and n > cfg.prc_neighborhood:
        out |= fidelity(f_hard, f_train, cfg)
        out |= fid_interval(f_hard.embed, f_train.embed, cfg, JUDGE_FID_LO, JUDGE_FID_HI)
        out[JUDGE_FID_TEST] = fid(f_hard.embed, f_test.embed)
    out[DISCRIMINABILITY] = discriminability(f_hard.probs, labels) if n else None
    return out


def fid_interval(
    fake: torch.Tensor, real: torch.Tensor, cfg: EvalConfig, lo_key: str, hi_key: str
) -> dict[str, float]:
    """A judge-FID's bootstrap interval over the samples ({} when eval.bootstrap is 0)."""
    if cfg.bootstrap <= 0:
        return {}
    real_stats = fid_stats(real)
    lo, hi = bootstrap_interval(
        lambda idx: fid(fake[idx], real_stats),
        len(fake),
        cfg.bootstrap,
        cfg.confidence,
        torch.Generator().manual_seed(cfg.seed),
    )
    return {lo_key: max(0.0, lo), hi_key: hi}


def memorisation_metrics(
    features: Mapping[str, JudgeFeatures], pixels: Mapping[str, torch.Tensor], hard: SampleSet
) -> dict[str, Any]:
    """Nearest-neighbour distance ratios in the judge's features and in pixels, near-copies of
    training images, and near-copies among the samples themselves."""
    ratio_f, _ = memorisation(features["hard"].embed, features["test"].embed,
                              features["train"].embed)  # fmt: skip
    ratio_p, copies = memorisation(pixels["hard"], pixels["test"], pixels["train"])
    return {
        NN_FEATURE_RATIO: ratio_f,
        NN_PIXEL_RATIO: ratio_p,
        COPY_SHARE: copies,
        DISTINCT_SHARE: distinct_share(hard.images, hard.labels),
    }


def second_judge_metrics(
    name: str,
    judge: Classifier,
    hard: SampleSet,
    train: ImageSet,
    cfg: EvalConfig,
    device: torch.device | str,
) -> dict[str, Any]:
    """Judge-FID with its bootstrap interval and discriminability again, from another judge
    (keys prefixed with `name`)."""
    f_hard = judge_features(judge, hard.images, cfg.batch_size, device)
    out: dict[str, Any] = {}
    if cfg.judge_metrics and len(hard) > cfg.prc_neighborhood:
        f_train = judge_features(judge, train.images, cfg.batch_size, device)
        out[f"{name}_fid"] = fid(f_hard.embed, f_train.embed)
        out |= fid_interval(f_hard.embed, f_train.embed, cfg, f"{name}_fid_lo", f"{name}_fid_hi")
    out[f"{name}_discriminability"] = (
        discriminability(f_hard.probs, hard.labels) if len(hard) else None
    )
    return out


def diversity_metrics(hard: SampleSet, train: ImageSet, cfg: EvalConfig) -> dict[str, Any]:
    """MS-SSIM of same-class pairs of the samples, read against the real classes' (AC-GAN)."""
    real = class_msssim(train.images, train.labels, cfg.diversity_pairs, cfg.seed, cfg.batch_size)
    scores = class_msssim(hard.images, hard.labels, cfg.diversity_pairs, cfg.seed, cfg.batch_size)
    return diversity_summary(scores, real)


def inception_metrics(
    hard: SampleSet, train: ImageSet, cfg: EvalConfig, device: torch.device | str
) -> dict[str, Any]:
    """Inception-v3 FID/KID/IS from a local weights file, or the reason they were not computed."""
    reason = inception_unavailable(cfg.inception_weights)
    if reason is None and len(hard) <= cfg.prc_neighborhood:
        reason = f"not computed: only {len(hard)} hard samples"
    if reason is not None:
        return {INCEPTION_STATUS: reason}
    cuda = torch.device(device).type == "cuda"
    out = inception_fidelity(hard.images, train.images, Path(cfg.inception_weights), cfg, cuda)
    return {**out, INCEPTION_STATUS: "computed"}


def _spread(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Up to n indices, cycling through the classes (first sample of each class, then second...)."""
    by_class = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels).tolist()]
    out, depth = [], 0
    while len(out) < n and any(depth < len(ix) for ix in by_class):
        out += [int(ix[depth]) for ix in by_class if depth < len(ix)][: n - len(out)]
        depth += 1
    return torch.tensor(out, dtype=torch.long)
