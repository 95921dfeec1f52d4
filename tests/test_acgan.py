"""AC-GAN: the paper's losses on a hand-computed case, architectures, training, sampling."""

from __future__ import annotations

import math

import pytest
import torch
from support import tiny_section

from pipeline.errors import ConfigError
from pipeline.methods import acgan

LOG3 = math.log(3.0)
MODEL = acgan.ACGANModelConfig(arch="small", z_dim=8, width=4, dropout=0.5)
TRAIN = tiny_section("acgan.train", acgan.ACGANTrainConfig, steps=6, batch_size=20)


def test_discriminator_loss_hand_computed():
    # P(S=real|x_real) = sigmoid(0) = 1/2; P(S=fake|x_fake) = 1 - sigmoid(0) = 1/2
    # P(C=0|x_real) = softmax([0, 0])_0 = 1/2; P(C=0|x_fake) = softmax([log 3, 0])_0 = 3/4
    src_real, src_fake = torch.tensor([0.0]), torch.tensor([0.0])
    cls_real, cls_fake = torch.tensor([[0.0, 0.0]]), torch.tensor([[LOG3, 0.0]])
    y = torch.tensor([0])
    loss, terms = acgan.discriminator_loss(src_real, cls_real, y, src_fake, cls_fake, y)
    l_s = math.log(0.5) + math.log(0.5)
    l_c = math.log(0.5) + math.log(0.75)
    assert terms["d_L_S"] == pytest.approx(l_s)
    assert terms["d_L_C"] == pytest.approx(l_c)
    assert float(loss) == pytest.approx(-(l_s + l_c))  # D maximises L_S + L_C


def test_generator_loss_hand_computed():
    # sigmoid(log 3) = 3/4 = P(S=real|x_fake); P(C=0|x_fake) = 3/4
    src_fake, cls_fake, y = torch.tensor([LOG3]), torch.tensor([[LOG3, 0.0]]), torch.tensor([0])
    ns = acgan.generator_loss(src_fake, cls_fake, y, "non_saturating")
    mm = acgan.generator_loss(src_fake, cls_fake, y, "minimax")
    assert float(ns) == pytest.approx(-(math.log(0.75) + math.log(0.75)))
    # minimax: G maximises L_C - L_S = log 3/4 - log P(S=fake|x_fake) = log 3/4 - log 1/4
    assert float(mm) == pytest.approx(-(math.log(0.75) - math.log(0.25)))


def test_generator_loss_rewards_fooling_the_source_head():
    cls_fake, y = torch.tensor([[1.0, 0.0]]), torch.tensor([0])
    for mode in ("non_saturating", "minimax"):
        fooled = acgan.generator_loss(torch.tensor([3.0]), cls_fake, y, mode)
        caught = acgan.generator_loss(torch.tensor([-3.0]), cls_fake, y, mode)
        assert fooled < caught


@pytest.mark.parametrize(
    "arch,channels,size", [("small", 1, 8), ("small", 1, 16), ("paper", 3, 32)]
)
def test_shapes(arch, channels, size):
    cfg = acgan.ACGANModelConfig(arch=arch, width=4, z_dim=10, dropout=0.5)
    g, d = acgan.build(acgan.model_args(10, channels, size, cfg))
    x = g(torch.randn(2, 10), torch.tensor([0, 9]))
    assert x.shape == (2, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    src, cls = d(x)
    assert src.shape == (2,) and cls.shape == (2, 10)


def test_paper_arch_matches_the_paper():
    cfg = acgan.ACGANModelConfig(arch="paper", z_dim=100, width=4, dropout=0.5)
    g, d = acgan.build(acgan.model_args(10, 3, 32, cfg))
    assert g.fc[0].in_features == 110  # 100 noise + 10 one-hot
    convs = [m for m in d.trunk if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [16, 32, 64, 128, 256, 512]
    assert [m.stride[0] for m in convs] == [2, 1, 2, 1, 2, 1]


def test_refuses_image_size_it_cannot_build():
    with pytest.raises(ConfigError, match="image size 12"):
        acgan.build(acgan.model_args(3, 1, 12, MODEL))
    with pytest.raises(ConfigError, match="acgan.model.arch: small needs an image size of 4"):
        MODEL.check_image_size(12, "acgan.model")


def _train_and_sample(data, seed):
    torch.manual_seed(seed)
    g, d = acgan.build(acgan.model_args(3, 1, 8, MODEL))
    history = acgan.train(
        g, d, data.float_images(), data.labels, TRAIN, torch.Generator().manual_seed(seed)
    )
    x, y = acgan.sample(g, 4, torch.Generator().manual_seed(seed))
    return history, x, y


def test_train_and_sample(tiny_data):
    history, x, y = _train_and_sample(tiny_data, 0)
    assert len(history) == 2
    assert all(math.isfinite(v) for row in history for v in row.values())
    assert x.shape == (12, 1, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert y.tolist() == [0] * 4 + [1] * 4 + [2] * 4


def test_same_seed_same_samples(tiny_data):
    h1, x1, _ = _train_and_sample(tiny_data, 3)
    h2, x2, _ = _train_and_sample(tiny_data, 3)
    assert h1 == h2 and torch.equal(x1, x2)


def test_variants_override_only_what_they_set(real_params):
    from pipeline.params import parse_params

    real_params["acgan"]["variants"]["acgan_paper_lr"] = {"train": {"lr": 0.0002, "steps": 2100}}
    cfg = parse_params(real_params).acgan
    paper = cfg.resolved("acgan_paper_lr")
    assert paper.train.lr == 0.0002 and paper.model == cfg.model and paper.sample == cfg.sample
    assert cfg.resolved("acgan").train == cfg.train
    with pytest.raises(ConfigError, match="not a listed variant"):
        cfg.resolved("nope")
