"""Persistent chains: targets, the buffer's state and resume, training against chains (per step
and per round), Gram moving averages, and fresh evaluation chains."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from support import tiny_train

from pipeline.chains import (
    ChainBuffer,
    ChainsConfig,
    ChainTraining,
    GramMeans,
    chain_targets,
    class_mean_grams,
    train_against_chains,
    train_passes,
)
from pipeline.eval_sets import EvalChainsConfig, eval_start_log_eps, evaluation_set
from pipeline.models import ModelConfig, build_model, model_args
from pipeline.resume import Snapshots
from pipeline.samplers import CanvasConfig, SamplerConfig
from pipeline.train import LossConfig, train_classifier

CPU = torch.device("cpu")
SETTING = ChainTraining(
    train=tiny_train(lr_schedule="constant", mixup_alpha=0.2, data_noise=0.03),
    loss=LossConfig("extra_class", 1.0, "class", 0.0, "matched"),
    chains=ChainsConfig(
        size=40,
        batch=16,
        steps=3,
        restart=0.1,
        canvas=CanvasConfig("noise", -1.0, 0.05),
        soft_share=0.25,
        soft_classes=2,
        soft_alpha=1.0,
        gram_momentum=0.9,
    ),
    sampler=SamplerConfig(
        temperature=0.01,
        step_size=1e-3,
        mh=True,
        box="reflect",
        adapt=True,
        target_accept=0.57,
        adapt_rate=0.5,
        step_min=1e-7,
        step_max=0.1,
        gram_weight=0.1,
        gram_layers=("block1", "block2"),
    ),
)


def fresh(outputs=4, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="small_cnn", width=4, dropout=0.0, norm="none")
    return build_model(model_args(cfg, 1, outputs))


def test_chain_targets_hard_then_soft():
    t = chain_targets(10, 3, 0.3, 2, 1.0, torch.Generator().manual_seed(0))
    assert t.shape == (10, 3) and torch.allclose(t.sum(1), torch.ones(10))
    hard = t.max(1).values == 1
    assert hard[:7].all() and not hard[7:].any()
    assert t[:7].argmax(1).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert ((t[7:] > 0).sum(1) == 2).all()  # each soft target mixes two classes


def test_buffer_state_round_trip():
    buf = ChainBuffer.new(SETTING.chains, 3, (1, 8, 8), 1e-3, torch.Generator().manual_seed(0))
    back = ChainBuffer(**buf.state_dict())
    for k, v in buf.state_dict().items():
        assert torch.equal(v, back.state_dict()[k])
    assert buf.learned_log_eps().shape == (3,)
    assert torch.allclose(buf.learned_log_eps(), torch.full((3,), math.log(1e-3)))


def test_gram_moving_average():
    grams = GramMeans(("a",), 2, momentum=0.5)
    maps = {"a": torch.ones(2, 1, 2, 2)}
    grams.update(maps, torch.tensor([0, 0]))
    assert torch.allclose(grams.means["a"][0], torch.ones(1, 1))
    grams.update({"a": torch.zeros(2, 1, 2, 2)}, torch.tensor([0, 0]))
    assert torch.allclose(grams.means["a"][0], torch.full((1, 1), 0.5))


def test_class_mean_grams_match_a_direct_computation(tiny_classifier, tiny_data):
    model, _ = tiny_classifier
    x, y = tiny_data.float_images(), tiny_data.labels
    means = class_mean_grams(model, x, y, 3, ("block1",))
    with torch.no_grad():
        _, maps = model.forward_features(x[y == 2])
    from pipeline.densities import gram

    assert torch.allclose(means["block1"][2], gram(maps["block1"]).mean(0), atol=1e-5)


def test_per_step_training_moves_the_chains_and_adapts_their_steps(tiny_data):
    model = fresh()
    history, buf = train_against_chains(model, tiny_data, SETTING, "per_step", device=CPU,
                                        seed=0, where="t")  # fmt: skip
    assert len(history) == 2 and 0 < history[-1]["train_chain_acceptance"] <= 1
    assert buf.age.sum() > 0 and not torch.allclose(buf.log_eps, torch.full((40,), math.log(1e-3)))
    assert buf.images.min() >= -1 and buf.images.max() <= 1


def test_persistent_chains_survive_a_resume_bit_for_bit(tiny_data, tmp_path):
    ref_model = fresh()
    _, ref_buf = train_against_chains(ref_model, tiny_data, replace(SETTING, train=replace(
        SETTING.train, steps=9)), "per_step", device=CPU, seed=1, where="ref")  # fmt: skip
    setting = replace(SETTING, train=replace(SETTING.train, steps=9))
    snaps = Snapshots(tmp_path / "resume.pt", "f", 1, "x")

    def crash(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt  # a kill after epoch 2's snapshot

    with pytest.raises(KeyboardInterrupt):
        train_against_chains(fresh(), tiny_data, setting, "per_step", device=CPU, seed=1,
                             where="x", snapshots=snaps, on_epoch=crash)  # fmt: skip
    model = fresh(seed=5)
    _, buf = train_against_chains(model, tiny_data, setting, "per_step", device=CPU, seed=1,
                                  where="x", snapshots=snaps)  # fmt: skip
    for key, value in ref_buf.state_dict().items():
        assert torch.equal(value, buf.state_dict()[key]), key
    for a, b in zip(ref_model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fake_weight_zero_trains_exactly_like_the_baseline_loop(tiny_data):
    """The chains still run (their own generator, eval mode), but nothing they do reaches the
    classifier: the weights equal the plain loop's bit for bit."""
    setting = replace(SETTING, loss=replace(SETTING.loss, fake_weight=0.0))
    with_chains = fresh()
    _, buf = train_against_chains(with_chains, tiny_data, setting, "per_step", device=CPU,
                                  seed=3, where="w")  # fmt: skip
    assert buf.age.sum() > 0  # the chains did run
    plain = fresh()
    from pipeline.runtime import derive_seed

    train_classifier(plain, tiny_data, setting.train, device=CPU, seed=derive_seed(3, "train"),
                     where="p")  # fmt: skip
    for a, b in zip(with_chains.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


def test_per_round_trains_on_fixed_fakes(tiny_data):
    model = fresh()
    before = ChainBuffer.new(SETTING.chains, 3, (1, 8, 8), 1e-3, torch.Generator().manual_seed(9))
    start = before.images.clone()
    _, buf = train_against_chains(model, tiny_data, SETTING, "per_round", device=CPU, seed=0,
                                  where="r", buffer=before, per_round_steps=4)  # fmt: skip
    assert (buf.age == 4).all()  # every chain ran the per-round steps once, none during training
    assert not torch.equal(buf.images, start)


def test_evaluation_set_uses_fresh_chains(tiny_data):
    model = fresh()
    _, buf = train_against_chains(model, tiny_data, SETTING, "per_step", device=CPU, seed=0,
                                  where="t")  # fmt: skip
    ev = EvalChainsConfig(hard_per_class=4, soft=3, steps=5, burn_in=2, eps_start="learned")
    gens = (torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    samples, metrics, trace = evaluation_set(
        model, tiny_data, SETTING.drawing, ev, buf.learned_log_eps(), *gens,
        method="r1", device=CPU, where="eval",
    )  # fmt: skip
    assert len(samples) == 3 * 4 + 3 and samples.hard.sum() == 12
    assert samples.labels[:12].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert len(trace.acceptance) == 5 and metrics["passes_per_sample"] == 6
    assert 0 <= metrics["p_fake"] <= 1
    from pipeline.data import to_uint8

    training = {bytes(img.numpy()) for img in to_uint8(buf.images)}
    assert not any(bytes(img.numpy()) in training for img in samples.images)
    again, _, _ = evaluation_set(
        model, tiny_data, SETTING.drawing, ev, buf.learned_log_eps(),
        torch.Generator().manual_seed(1), torch.Generator().manual_seed(3),
        method="r1", device=CPU, where="eval",
    )  # fmt: skip
    assert not torch.equal(again.images, samples.images)  # another seed, other images


def test_train_passes_count_every_forward_pass():
    t = replace(SETTING.train, steps=20, batch_size=10, mixup_alpha=0.2)
    s = replace(SETTING, train=t, chains=replace(SETTING.chains, batch=10, steps=5))
    # 20 steps, each 10 real + 10 mixup + 10 fakes * (1 + 5 steps), over 100 images
    assert train_passes(s, 100, "per_step", 0) == 20 * (10 + 10 + 60) / 100
    assert train_passes(s, 100, "per_round", 7) == (20 * 30 + 40 * 7) / 100
    assert train_passes(s, 1000, "per_step", 0) == train_passes(s, 100, "per_step", 0) / 10


def test_evaluation_chains_start_where_eps_start_says():
    buf = ChainBuffer.new(SETTING.chains, 3, (1, 8, 8), 1e-3, torch.Generator().manual_seed(0))
    buf.log_eps = torch.linspace(-12, -6, len(buf))  # as if the chains had adapted
    ev = EvalChainsConfig(hard_per_class=2, soft=0, steps=4, burn_in=4, eps_start="learned")
    learned = eval_start_log_eps(ev, buf, SETTING.sampler)
    assert torch.equal(learned, buf.learned_log_eps()) and learned.unique().numel() == 3
    initial = eval_start_log_eps(replace(ev, eps_start="initial"), buf, SETTING.sampler)
    assert torch.allclose(initial, torch.full((3,), math.log(SETTING.sampler.step_size)))


def test_working_regime_keeps_acceptance_near_its_target(tiny_data):
    """STIC's working regime in miniature (flat_cnn, the random fake output, MH at JEM's
    temperature, each chain's eps adapted toward 0.57): a seeded run keeps the training chains'
    acceptance near the target, and its evaluation chains, started at the initial eps and
    adapting at every step, too."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="flat_cnn", width=4, dropout=0.0, norm="none")
    model = build_model(model_args(cfg, 1, 4))
    setting = replace(
        SETTING,
        train=replace(SETTING.train, steps=9, mixup_alpha=0.0, lr=1e-3),
        chains=replace(SETTING.chains, steps=10, soft_share=0.0, restart=0.05),
        sampler=replace(
            SETTING.sampler,
            temperature=5e-5,
            step_size=5e-5,
            step_min=1e-8,
            step_max=1.0,
            gram_weight=0.0,
        ),  # fmt: skip
    )
    history, buf = train_against_chains(model, tiny_data, setting, "per_step", device=CPU,
                                        seed=0, where="regime")  # fmt: skip
    assert 0.4 < history[-1]["train_chain_acceptance"] < 0.75
    ev = EvalChainsConfig(hard_per_class=4, soft=0, steps=80, burn_in=80, eps_start="initial")
    gens = (torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
    _, metrics, trace = evaluation_set(
        model, tiny_data, setting.drawing, ev, eval_start_log_eps(ev, buf, setting.sampler),
        *gens, method="r1", device=CPU, where="eval",
    )  # fmt: skip
    late = trace.acceptance[40:]  # once eps has climbed from its start
    assert 0.35 < sum(late) / len(late) < 0.8 and metrics["stuck_share"] == 0.0


def test_the_null_sampler_draws_exactly_as_a_chain_trained_classifier_does(tiny_data):
    """On a classifier whose input gradient is zero, the evaluation set is the null sampler's,
    bit for bit (both start at the initial eps): what the null reference claims to be."""
    from support import flatten_network

    ev = EvalChainsConfig(hard_per_class=2, soft=2, steps=4, burn_in=2, eps_start="initial")
    # a low temperature, so an ordinary network's gradient moves pixels by whole grey levels
    sampler = replace(SETTING.sampler, gram_weight=0.0, temperature=1e-6)
    drawing = replace(SETTING.drawing, sampler=sampler)
    start = torch.full((3,), math.log(drawing.sampler.step_size))

    def draw(model):
        g = (torch.Generator().manual_seed(1), torch.Generator().manual_seed(2))
        return evaluation_set(model, tiny_data, drawing, ev, start, *g, method="x", device=CPU,
                              where="t")[0]  # fmt: skip

    assert torch.equal(draw(flatten_network(fresh())).images, draw(None).images)
    assert not torch.equal(draw(fresh()).images, draw(None).images)
