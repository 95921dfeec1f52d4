"""The pinned stack works together (a broken torch/torchvision pair fails here at once)."""

import torch


def test_torchvision_ops_registered():
    import torchvision  # noqa: F401 - registers torchvision::nms

    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 6.0, 6.0]])
    keep = torch.ops.torchvision.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]


def test_torch_fidelity_imports():
    import torch_fidelity

    assert hasattr(torch_fidelity, "calculate_metrics")
