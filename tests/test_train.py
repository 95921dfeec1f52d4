"""Training loop: losses, learning, resume equals uninterrupted, NaN stops with context."""

from __future__ import annotations

import pytest
import torch

from pipeline.models import ModelConfig, build_model, model_args
from pipeline.train import (
    FakeLoss,
    Fakes,
    NumericalError,
    TrainConfig,
    evaluate_classifier,
    mixup,
    soft_cross_entropy,
    train_classifier,
)

CPU = torch.device("cpu")


def fresh(num_outputs=3, seed=0):
    torch.manual_seed(seed)
    args = model_args(ModelConfig(arch="small_cnn", width=4), 1, num_outputs)
    return build_model(args)


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


def test_training_learns_separable_data(tiny_data):
    model = fresh()
    cfg = TrainConfig(epochs=8, batch_size=16, lr=0.01, mixup_alpha=0.2)
    before = evaluate_classifier(model, tiny_data, CPU)["accuracy"]
    train_classifier(model, tiny_data, cfg, device=CPU, seed=1, where="t")
    after = evaluate_classifier(model, tiny_data, CPU)["accuracy"]
    assert after > 0.9 and after > before


def test_same_seed_same_weights(tiny_data):
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01)
    a, b = fresh(), fresh()
    train_classifier(a, tiny_data, cfg, device=CPU, seed=5, where="a")
    train_classifier(b, tiny_data, cfg, device=CPU, seed=5, where="b")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_after_interruption_equals_uninterrupted(tiny_data, tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.01, checkpoint_every=1)
    ref = fresh()
    train_classifier(ref, tiny_data, cfg, device=CPU, seed=2, where="ref")

    resume = tmp_path / "resume.pt"

    def crash(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt  # stands in for a kill after epoch 1's checkpoint

    with pytest.raises(KeyboardInterrupt):
        train_classifier(
            fresh(),
            tiny_data,
            cfg,
            device=CPU,
            seed=2,
            where="x",
            resume_path=resume,
            fingerprint="f",
            on_epoch=crash,
        )
    assert resume.is_file()
    resumed = fresh(seed=99)  # different init: the resume state must override it
    history = train_classifier(
        resumed, tiny_data, cfg, device=CPU, seed=2, where="x", resume_path=resume, fingerprint="f"
    )
    assert len(history) == 3 and not resume.exists()
    for pa, pb in zip(ref.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_resume_state_from_other_params_is_ignored(tiny_data, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.01)
    resume = tmp_path / "r.pt"
    torch.save({"fingerprint": "other", "epoch": 1}, resume)
    history = train_classifier(
        fresh(),
        tiny_data,
        cfg,
        device=CPU,
        seed=0,
        where="x",
        resume_path=resume,
        fingerprint="mine",
    )
    assert len(history) == 2


def test_nan_loss_stops_with_where_and_value(tiny_data):
    model = fresh()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.01)
    with pytest.raises(
        NumericalError, match=r"r7: training loss at epoch 1, step 0: non-finite value nan"
    ):
        train_classifier(model, tiny_data, cfg, device=CPU, seed=0, where="r7")


@pytest.mark.parametrize("mode", ["extra_class", "energy"])
def test_fake_losses_run_and_push_fakes_away(tiny_data, mode):
    k = tiny_data.num_classes
    model = fresh(num_outputs=k + 1 if mode == "extra_class" else k)
    fakes = Fakes(torch.rand(30, 1, 8, 8) * 2 - 1, torch.tensor([True, False] * 15))
    cfg = TrainConfig(epochs=30, batch_size=16, lr=0.01, mixup_alpha=0.0)
    train_classifier(
        model,
        tiny_data,
        cfg,
        device=CPU,
        seed=0,
        where="f",
        fakes=fakes,
        fake_loss=FakeLoss(mode, 1.0, k),
    )
    with torch.no_grad():
        real_logits, fake_logits = model(tiny_data.float_images()), model(fakes.images)
    if mode == "extra_class":
        assert (fake_logits.argmax(1) == k).float().mean() > 0.9
        assert (real_logits[:, :k].argmax(1) == tiny_data.labels).float().mean() > 0.9
    else:  # real images get lower energy (higher logsumexp) than the fakes
        assert torch.logsumexp(real_logits, 1).mean() > torch.logsumexp(fake_logits, 1).mean()
