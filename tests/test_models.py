"""Model registry: shapes, feature maps, linear head, head expansion, checkpoints."""

from __future__ import annotations

import pytest
import torch

from pipeline.checkpoint import load_classifier, save_checkpoint
from pipeline.errors import CheckpointError, ConfigError
from pipeline.models import ARCHITECTURES, ModelConfig, build_model, expand_outputs, model_args


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_builds_and_exposes_features(arch):
    wrn = arch == "wrn"
    cfg = ModelConfig(arch=arch, width=8, dropout=0.0, norm="none",
                      depth=10 if wrn else None, widen_factor=1 if wrn else None)  # fmt: skip
    model = build_model(model_args(cfg, in_channels=3, num_outputs=5)).eval()
    if arch == "score_cnn":
        model = model.at(0.5)
    x = torch.randn(2, 3, 16, 16)
    latent, maps = model.forward_features(x)
    assert model(x).shape == (2, 5)
    assert latent.shape == (2, model.head.in_features)
    assert set(maps) == set(model.map_names)
    assert torch.allclose(model.head(latent), model(x), atol=1e-5)


def test_expand_outputs_keeps_real_class_logits(tiny_classifier):
    model, args = tiny_classifier
    bigger, new_args = expand_outputs(model, args, 4)
    x = torch.randn(3, 1, 8, 8)
    assert new_args["num_outputs"] == 4
    assert torch.allclose(bigger.eval()(x)[:, :3], model(x), atol=1e-6)
    assert torch.all(bigger(x)[:, 3] == 0)


def test_flat_cnn_keeps_layout_and_its_latent_size_at_any_image_size():
    cfg = ModelConfig(arch="flat_cnn", width=8, dropout=0.0, norm="none")
    model = build_model(model_args(cfg, in_channels=1, num_outputs=11)).eval()
    for size in (16, 32):
        latent, maps = model.forward_features(torch.randn(2, 1, size, size))
        assert latent.shape == (2, 32) and maps["block2"].shape == (2, 16, size // 4, size // 4)
    # unlike global pooling, moving a stroke moves the logits: the head sees positions
    x = torch.zeros(1, 1, 16, 16)
    x[..., 2:6, 2:6] = 1.0
    moved = torch.roll(x, shifts=(8, 8), dims=(2, 3))
    assert not torch.allclose(model(x), model(moved), atol=1e-4)


def test_flat_cnn_checkpoint_round_trip(tmp_path):
    cfg = ModelConfig(arch="flat_cnn", width=4, dropout=0.0, norm="none")
    args = model_args(cfg, in_channels=1, num_outputs=11)
    model = build_model(args).eval()
    save_checkpoint(tmp_path / "f.pt", model, args, {})
    back, payload = load_classifier(tmp_path / "f.pt", expected_args=args)
    x = torch.randn(3, 1, 16, 16)
    assert torch.equal(back(x), model(x)) and payload["model_args"]["arch"] == "flat_cnn"


def test_expand_outputs_random_rows_are_seeded_and_keep_the_old_rows(tiny_classifier):
    model, args = tiny_classifier
    rows = []
    for _ in range(2):
        torch.manual_seed(7)
        bigger, _ = expand_outputs(model, args, 4, "random")
        rows.append(bigger.head.weight.detach()[3].clone())
        assert torch.equal(bigger.head.weight[:3], model.head.weight)
        assert torch.equal(bigger.head.bias[:3], model.head.bias)
    assert torch.equal(rows[0], rows[1]) and rows[0].abs().sum() > 0
    bound = 1 / model.head.in_features**0.5  # nn.Linear's initialisation: U(-bound, bound)
    assert rows[0].abs().max() <= bound


def test_checkpoint_round_trip_and_mismatch(tmp_path, tiny_classifier):
    model, args = tiny_classifier
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, args, {"baseline": {"seed": 0}})
    back, payload = load_classifier(path, expected_args=args)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(back(x), model(x)) and payload["config"] == {"baseline": {"seed": 0}}
    with pytest.raises(CheckpointError, match="made with width=4 but the parameters say width=8"):
        load_classifier(path, expected_args={**args, "width": 8})


def test_unreadable_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_classifier(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "none.pt")


class Payload:
    """Not a tensor/container: a weights_only load must refuse to unpickle it."""


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "model_args": {}, "state_dict": {}, "config": Payload()}, path)
    with pytest.raises(CheckpointError, match="unreadable checkpoint"):
        load_classifier(path)


def test_wrn_only_settings_are_refused_elsewhere():
    with pytest.raises(ConfigError, match="wrn-only"):
        ModelConfig(arch="small_cnn", width=8, dropout=0.0, norm="none", depth=28).validate()
    with pytest.raises(ConfigError, match="6n \\+ 4"):
        ModelConfig(
            arch="wrn", width=8, dropout=0.0, norm="none", depth=27, widen_factor=2
        ).validate()


def test_score_network_depends_on_the_noise_level():
    cfg = ModelConfig(arch="score_cnn", width=4, dropout=0.0, norm="none")
    model = build_model(model_args(cfg, in_channels=1, num_outputs=3)).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        a, b = model.at(0.1)(x), model.at(1.0)(x)
        sigma = torch.tensor([0.1, 1.0])
        both = model.head(model.features_at(x, sigma)[0])
    assert not torch.allclose(a, b)
    assert torch.allclose(both[0], a[0], atol=1e-6) and torch.allclose(both[1], b[1], atol=1e-6)
    with pytest.raises(ValueError, match="noise level"):
        model(x)
