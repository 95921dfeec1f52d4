"""Training loop: losses, learning, resume equals uninterrupted, NaN stops with context."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from support import fresh, tiny_train

from pipeline.chains import FixedPool
from pipeline.errors import NumericalError
from pipeline.resume import Snapshots
from pipeline.train import (
    LossConfig,
    energies,
    evaluate_classifier,
    mixup,
    soft_cross_entropy,
    train_classifier,
)

CPU = torch.device("cpu")
CFG = tiny_train(lr_schedule="cosine")


def test_soft_cross_entropy_matches_hard_ce_for_one_hot():
    logits = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    hard = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(soft_cross_entropy(logits, torch.eye(4)[y]), hard)
    # targets over K real classes are zero-padded to K+1 outputs
    padded = soft_cross_entropy(torch.cat([logits, torch.zeros(5, 1)], 1), torch.eye(4)[y])
    assert padded > hard


def test_mixup_targets_are_distributions():
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    xm, tm = mixup(x, y, 3, alpha=0.4)
    assert xm.shape == x.shape and torch.allclose(tm.sum(1), torch.ones(8))


def test_energies():
    logits = torch.tensor([[1.0, 2.0, 9.0]])  # the third output is a fake class: ignored
    assert energies(logits, torch.tensor([[0.0, 1.0]]), "class").item() == 2.0
    assert energies(logits, torch.tensor([[0.5, 0.5]]), "class").item() == 1.5
    lse = energies(logits, torch.tensor([[1.0, 0.0]]), "logsumexp").item()
    assert lse == pytest.approx(torch.logsumexp(torch.tensor([1.0, 2.0]), 0).item())


def test_training_learns_separable_data(tiny_data):
    model = fresh()
    cfg = replace(CFG, steps=24, mixup_alpha=0.2)
    before = evaluate_classifier(model, tiny_data)["accuracy"]
    train_classifier(model, tiny_data, cfg, device=CPU, seed=1, where="t")
    after = evaluate_classifier(model, tiny_data)["accuracy"]
    assert after > 0.9 and after > before


def test_same_seed_same_weights(tiny_data):
    a, b = fresh(), fresh()
    train_classifier(a, tiny_data, replace(CFG, data_noise=0.03), device=CPU, seed=5, where="a")
    train_classifier(b, tiny_data, replace(CFG, data_noise=0.03), device=CPU, seed=5, where="b")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_after_interruption_equals_uninterrupted(tiny_data, tmp_path):
    cfg = replace(CFG, steps=9, mixup_alpha=0.2)
    ref = fresh()
    train_classifier(ref, tiny_data, cfg, device=CPU, seed=2, where="ref")
    snaps = Snapshots(tmp_path / "resume.pt", "f", 1, "x")

    def crash(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt  # stands in for a kill after epoch 1's snapshot

    with pytest.raises(KeyboardInterrupt):
        train_classifier(fresh(), tiny_data, cfg, device=CPU, seed=2, where="x",
                         snapshots=snaps, on_epoch=crash)  # fmt: skip
    assert snaps.path.is_file()
    resumed = fresh(seed=99)  # different init: the resume state must override it
    history = train_classifier(resumed, tiny_data, cfg, device=CPU, seed=2, where="x",
                               snapshots=snaps)  # fmt: skip
    assert len(history) == 3 and not snaps.path.exists()
    for pa, pb in zip(ref.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_state_from_other_params_is_ignored(tiny_data, tmp_path):
    resume = tmp_path / "r.pt"
    torch.save({"fingerprint": "other", "epoch": 1}, resume)
    history = train_classifier(fresh(), tiny_data, CFG, device=CPU, seed=0, where="x",
                               snapshots=Snapshots(resume, "mine", 1, "x"))  # fmt: skip
    assert len(history) == 2


def test_nan_loss_stops_with_where_and_value(tiny_data):
    model = fresh()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(NumericalError, match=r"r7: training loss at epoch 1, step 0: non-finite"):
        train_classifier(model, tiny_data, CFG, device=CPU, seed=0, where="r7")


@pytest.mark.parametrize("mode", ["extra_class", "energy"])
def test_fake_losses_push_fakes_away(tiny_data, mode):
    k = tiny_data.num_classes
    loss = LossConfig(mode, 1.0, "class", 0.0, "matched")
    model = fresh(num_outputs=loss.outputs(k))
    fakes = torch.rand(30, 1, 8, 8) * 2 - 1
    targets = torch.eye(k)[torch.arange(30) % k]
    pool = FixedPool(fakes, targets, 16, torch.Generator().manual_seed(0))
    train_classifier(model, tiny_data, replace(CFG, steps=90), device=CPU, seed=0, where="f",
                     fakes=pool, loss=loss)  # fmt: skip
    with torch.no_grad():
        real_logits, fake_logits = model(tiny_data.float_images()), model(fakes)
    assert (real_logits[:, :k].argmax(1) == tiny_data.labels).float().mean() > 0.9
    if mode == "extra_class":
        assert (fake_logits.argmax(1) == k).float().mean() > 0.9
    else:  # real images get lower energy (a higher logit of their class) than the fakes
        real = real_logits.gather(1, tiny_data.labels[:, None]).mean()
        assert real > (targets * fake_logits).sum(1).mean()


def test_energy_l2_bounds_the_energies(tiny_data):
    k = tiny_data.num_classes
    fakes = torch.rand(30, 1, 8, 8) * 2 - 1
    targets = torch.eye(k)[torch.arange(30) % k]
    sizes = {}
    for l2 in (0.0, 1.0):
        model = fresh()
        pool = FixedPool(fakes, targets, 16, torch.Generator().manual_seed(0))
        loss = LossConfig("energy", 1.0, "class", l2, "matched")
        train_classifier(model, tiny_data, replace(CFG, steps=60, lr=0.03), device=CPU, seed=0,
                         where="e", fakes=pool, loss=loss)  # fmt: skip
        with torch.no_grad():
            sizes[l2] = model(fakes).abs().mean().item()
    assert sizes[1.0] < sizes[0.0]


def test_the_sampler_target_is_the_losss_term_unless_the_logit_is_asked():
    terms = {
        (mode, energy, target): LossConfig(mode, 1.0, energy, 0.0, target).class_term
        for mode in ("extra_class", "energy")
        for energy in ("class", "logsumexp")
        for target in ("matched", "logit")
    }
    assert terms[("extra_class", "class", "matched")] == "log_softmax"
    assert terms[("energy", "class", "matched")] == "logit"
    assert terms[("energy", "logsumexp", "matched")] == "logsumexp"
    assert {t for (_, _, target), t in terms.items() if target == "logit"} == {"logit"}


def test_a_classifier_costs_a_pass_an_image_a_step_and_one_more_with_mixup(real_params):
    from pipeline.costs import classifier_train_passes
    from pipeline.params import parse_params

    train = parse_params(real_params).baseline.train
    plain = replace(train, steps=100, batch_size=40, mixup_alpha=0.0)
    assert classifier_train_passes(plain, 1000) == 4.0  # 100 steps x 40 images / 1000
    assert classifier_train_passes(replace(plain, mixup_alpha=0.2), 1000) == 8.0
    assert classifier_train_passes(replace(plain, mixup_alpha=0.2, mixup_weight=0.0), 1000) == 4.0
