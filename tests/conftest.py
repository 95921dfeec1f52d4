"""Shared fixtures: a tiny parameter set derived from the real params.yaml, tiny data, CPU only."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.data import ImageSet
from pipeline.models import ModelConfig, build_model, model_args

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)


@pytest.fixture
def real_params() -> dict:
    """The committed params.yaml as a plain dict."""
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def tiny_params(real_params, tmp_path) -> dict:
    """params.yaml shrunk: 1 epoch, small models, tracking into tmp_path, CPU."""
    p = copy.deepcopy(real_params)
    p["runtime"]["device"] = "cpu"
    p["runtime"]["threads"] = 1
    p["tracking"]["uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    p["tracking"]["system_metrics"] = False
    p["data"]["image_size"] = 8
    for section in ("judge", "baseline"):
        p[section]["train"]["epochs"] = 1
        p[section]["model"]["width"] = 4 if section == "baseline" else 6
    # issue-5 methods: a few steps, tiny networks, 3 samples per class
    p["acgan"].update(epochs=1, width=4, z_dim=8, batch_size=20, samples_per_class=3)
    p["regene"].update(epochs=1, width=4, batch_size=20, samples_per_class=3)
    p["wang_torr"].update(steps_per_resolution=2, num_views=2, samples_per_class=3)
    p["sgld"].update(steps=2, rounds=1, buffer_per_class=4, batch_per_class=3, samples_per_class=3)
    return p


def make_image_set(
    n_per_class: int = 20, classes: int = 3, size: int = 8, channels: int = 1, seed: int = 0
) -> ImageSet:
    """Separable synthetic classes: class c is bright in horizontal band c, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    images, labels = [], []
    band = max(1, size // classes)
    for c in range(classes):
        base = torch.full((n_per_class, channels, size, size), 40.0)
        base[:, :, c * band : (c + 1) * band, :] = 210.0
        noise = torch.randn(base.shape, generator=gen) * 20
        images.append((base + noise).clamp(0, 255).to(torch.uint8))
        labels += [c] * n_per_class
    return ImageSet(torch.cat(images), torch.tensor(labels), tuple(f"c{c}" for c in range(classes)))


@pytest.fixture
def tiny_data() -> ImageSet:
    return make_image_set()


@pytest.fixture
def tiny_classifier():
    """An untrained small CNN on 1x8x8 inputs with 3 outputs, and its model args."""
    torch.manual_seed(0)
    args = model_args(ModelConfig(arch="small_cnn", width=4), in_channels=1, num_outputs=3)
    return build_model(args).eval(), args
