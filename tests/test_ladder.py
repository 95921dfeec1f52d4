"""The calibration ladder's degradations and the classification accuracy score."""

from __future__ import annotations

import pytest
import torch

from pipeline.cas import classification_accuracy_score
from pipeline.data import ImageSet
from pipeline.errors import ConfigError
from pipeline.ladder import LadderConfig, degrade, gaussian_blur
from pipeline.models import ModelConfig, model_args


def digits_like(n: int = 40, size: int = 8) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(n, 1, size, size, generator=gen) * 255).round().to(torch.uint8)


def test_rungs_are_named_by_kind_and_strength_and_checked():
    cfg = LadderConfig(blur=(0.5, 2.0), noise=(0.3,), shuffle=(0.25, 1.0))
    cfg.validate()
    assert [r[0] for r in cfg.rungs()] == ["blur_0.5", "blur_2", "noise_0.3", "shuffle_0.25",
                                          "shuffle_1"]  # fmt: skip
    for bad, match in (({"blur": (2.0, 1.0)}, "rise"), ({"noise": (0.0,)}, "positive"),
                       ({"shuffle": (1.5,)}, "at most 1")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            LadderConfig(**{"blur": (1.0,), "noise": (0.5,), "shuffle": (0.5,), **bad}).validate()


def test_each_degradation_does_what_it_says():
    images = digits_like()
    shuffled = degrade(images, "shuffle", 1.0, seed=1)
    # a shuffle keeps every image's pixel values, only their places change
    assert torch.equal(shuffled.flatten(1).sort(1).values, images.flatten(1).sort(1).values)
    assert not torch.equal(shuffled, images)
    assert torch.equal(degrade(images, "shuffle", 1.0, seed=1), shuffled)  # seeded
    # a blur keeps a constant image and smooths a random one
    flat = torch.full((1, 1, 8, 8), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat, atol=1e-6)
    blurred = degrade(images, "blur", 1.5, seed=0).float()
    assert blurred.std() < images.float().std() / 2
    # noise moves pixels by about its standard deviation (pixel range 2 = 255 levels)
    noisy = degrade(images, "noise", 0.1, seed=0).float()
    moved = (noisy - images.float()).abs().mean() / 127.5
    assert 0.04 < moved < 0.12


def test_cas_learns_from_images_that_carry_their_class_and_not_from_noise():
    gen = torch.Generator().manual_seed(0)

    def two_classes(n: int, noise_only: bool = False) -> ImageSet:
        labels = torch.arange(n) % 2
        x = torch.full((n, 1, 8, 8), -0.8)
        if not noise_only:
            x[labels == 0, :, :, :4] = 0.8  # class 0: left half lit, class 1: right half
            x[labels == 1, :, :, 4:] = 0.8
        x = (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(-1, 1)
        return ImageSet(((x + 1) * 127.5).round().to(torch.uint8), labels, ("left", "right"))

    args = model_args(ModelConfig("small_cnn", 8, 0.0, "none"), 1, 2)
    test = two_classes(100)
    assert classification_accuracy_score(two_classes(40), test, args, 60, 0, "cpu") > 0.95
    noise = classification_accuracy_score(two_classes(40, True), test, args, 60, 0, "cpu")
    assert noise < 0.75
