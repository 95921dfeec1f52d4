"""Score-STIC: denoising score matching on the class logit, training, annealed sampling."""

from __future__ import annotations

import torch
import torch.nn as nn

from pipeline.methods.score import Levels, dsm_loss, sample, train_score_classifier
from pipeline.models import ModelConfig, build_model, model_args


class ExactScore(nn.Module):
    """g(x, sigma)[y] = -||x - mu_y||^2 / (2 sigma): its gradient / sigma is the exact score of
    N(mu_y, sigma^2), the noised density of a class whose images all equal mu_y (a mixture of
    point masses, one per class, blurred by the noise). `scale` != 1 breaks it."""

    def __init__(self, mu: torch.Tensor, scale: float = 1.0):
        super().__init__()
        self.mu, self.scale = mu, scale  # (K, C, H, W)
        self.head = nn.Linear(len(mu), len(mu), bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(len(mu)))
        self.map_names = ()

    def features_at(self, x, sigma):
        d = (x[:, None] - self.mu[None]).pow(2).flatten(2).sum(2)  # (B, K)
        return -self.scale * d / (2 * sigma[:, None]), {}


def test_dsm_loss_is_zero_for_the_true_score():
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 1, 4, 4, generator=gen)
    y = torch.tensor([0, 1, 2, 1, 0])
    x = mu[y]
    sigma = torch.tensor([0.5, 0.1, 1.0, 0.3, 0.05])
    xi = torch.randn(x.shape, generator=gen)
    exact, _ = dsm_loss(Levels(ExactScore(mu)), x, y, sigma, xi)
    assert torch.allclose(exact, torch.zeros(5), atol=1e-4)
    wrong, _ = dsm_loss(Levels(ExactScore(mu, scale=0.5)), x, y, sigma, xi)
    assert (wrong > 1.0).all()


def test_dsm_loss_trains_the_network_by_double_backward():
    cfg = ModelConfig(arch="score_cnn", width=4, dropout=0.0, norm="none")
    model = build_model(model_args(cfg, 1, 3)).train()
    x, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0])
    loss, logits = dsm_loss(Levels(model), x, y, torch.full((4,), 0.3), torch.randn(4, 1, 8, 8))
    loss.mean().backward()
    assert logits.shape == (4, 3)
    assert all(p.grad is not None for p in model.film.parameters())  # reached through d/dx


def test_score_classifier_learns_and_samples_in_the_box(tiny_data, real_params):
    from dataclasses import replace

    from pipeline.config import from_dict
    from pipeline.methods.score import ScoreStiCConfig

    cfg = from_dict(ScoreStiCConfig, real_params["score_stic"], "score_stic")
    cfg = replace(cfg, model=replace(cfg.model, width=4),
                  train=replace(cfg.train, steps=90, batch_size=16, lr=0.01),
                  noise=replace(cfg.noise, levels=3),
                  sampling=replace(cfg.sampling, steps_per_level=2))  # fmt: skip
    torch.manual_seed(0)
    model = build_model(model_args(cfg.model, 1, 3))
    history = train_score_classifier(model, tiny_data, cfg.training(), device=torch.device("cpu"),
                                     seed=0, test=tiny_data)  # fmt: skip
    assert history[-1]["train_dsm"] < history[0]["train_dsm"]
    assert history[-1]["test_accuracy"] > 0.6
    targets = torch.eye(3)[[0, 1, 2, 0]]
    run = sample(model, targets, cfg, torch.Generator().manual_seed(0), shape=(1, 8, 8),
                 real=tiny_data, device=torch.device("cpu"))  # fmt: skip
    assert run.x.shape == (4, 1, 8, 8) and run.x.min() >= -1 and run.x.max() <= 1
    assert len(run.trace.acceptance) == 3 * 2


def test_the_null_sampler_draws_exactly_as_score_stic_does(tiny_data, real_params):
    """On a network whose input gradient is zero, Score-STIC's evaluation draw is its null
    sampler's, bit for bit: the same canvas, targets, noise and steps."""
    from dataclasses import replace

    from support import flatten_network

    from pipeline.config import from_dict
    from pipeline.methods.score import ScoreStiCConfig, evaluation_draw

    cfg = from_dict(ScoreStiCConfig, real_params["score_stic"], "score_stic")
    cfg = replace(cfg, model=replace(cfg.model, width=4), noise=replace(cfg.noise, levels=3),
                  sampling=replace(cfg.sampling, steps_per_level=2, hard_per_class=2,
                                   soft=2))  # fmt: skip
    flat = flatten_network(build_model(model_args(cfg.model, 1, 3)))

    def draw(model):
        g = (torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
        return evaluation_draw(model, cfg, tiny_data, *g, device=torch.device("cpu"))

    (t_flat, run_flat), (t_null, run_null) = draw(flat), draw(None)
    assert torch.equal(t_flat, t_null) and torch.equal(run_flat.x, run_null.x)
    assert not torch.equal(run_null.x, draw(build_model(model_args(cfg.model, 1, 3)))[1].x)
