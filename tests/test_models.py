"""Model registry: shapes, feature maps, linear head, head expansion, checkpoints."""

from __future__ import annotations

import pytest
import torch

from pipeline.checkpoint import CheckpointError, load_classifier, save_checkpoint
from pipeline.models import ARCHITECTURES, ModelConfig, build_model, expand_outputs, model_args


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_builds_and_exposes_features(arch):
    cfg = ModelConfig(arch=arch, width=8, depth=10, widen_factor=1)
    model = build_model(model_args(cfg, in_channels=3, num_outputs=5)).eval()
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
