"""Shared fixtures: a tiny parameter set derived from the real params.yaml, tiny data, CPU only."""

from __future__ import annotations

import copy
import os
from pathlib import Path

from pipeline import numerics

# In-process tests compute like the stages: the portable pins, set before torch and numpy load
numerics.apply("portable")

import pytest
import torch
import yaml

from pipeline.data import ImageSet
from pipeline.models import ModelConfig, build_model, model_args

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# The flushers the end-to-end tests start leave soon after their runs (each holds MLflow, ~230 MB)
os.environ.setdefault("CGEN_FLUSH_LINGER", "2")


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


def real_params_dict() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.fixture
def real_params() -> dict:
    """The committed params.yaml as a plain dict."""
    return real_params_dict()


def shrink(params: dict, tracking_uri: str | None = None) -> dict:
    """params.yaml at toy scale: 8x8 images, 1-epoch tiny networks, few steps, 3 samples per class,
    one chain round and one ablation, tracking into `tracking_uri` (off when None)."""
    p = copy.deepcopy(params)
    p["runtime"].update(device="cpu", threads=1)
    p["tracking"].update(uri=tracking_uri, enabled=tracking_uri is not None, system_metrics=False)
    p["data"]["image_size"] = 8
    for section in ("judge", "judge_b", "jem", "score_stic"):
        p[section]["train"]["epochs"] = 1
    # ReGene needs correctly classified images of every class: r0 must learn something
    p["baseline"]["train"].update(epochs=3, lr=0.02)
    p["judge"]["model"]["width"] = 6
    p["judge_b"]["model"]["width"] = 4
    p["baseline"]["model"]["width"] = 4
    p["jem"]["model"]["width"] = 4
    p["score_stic"]["model"]["width"] = 4
    stic = p["stic"]
    stic["train"]["epochs"] = 1
    stic["chains"].update(size=40, batch=16, steps=2)
    stic["per_round_steps"] = 2
    stic["eval"].update(hard_per_class=3, soft=6, steps=3, burn_in=1)
    stic["rounds"] = {"r1": {"prev": "r0"}, "r2": {"prev": "r1"}, "no_mh": stic["rounds"]["no_mh"]}
    p["jem"]["chains"].update(size=40, batch=16, steps=2)
    p["jem"]["eval"].update(hard_per_class=3, steps=3)
    p["score_stic"]["noise"]["levels"] = 2
    p["score_stic"]["sampling"].update(steps_per_level=2, hard_per_class=3, soft=6)
    p["attentive_stic"].update(round="r2")
    p["attentive_stic"]["draw"].update(glimpses=2, steps_per_glimpse=2, window=4, hard_per_class=3)
    p["sgld"]["eval"].update(hard_per_class=3, steps=3)
    p["acgan"]["model"].update(width=4, z_dim=8)
    p["acgan"]["train"].update(epochs=1, batch_size=20)
    p["acgan"]["sample"]["per_class"] = 3
    p["acgan"]["variants"] = {"acgan": {}}
    p["regene"]["decoder"].update(epochs=1, width=4, batch_size=20)
    p["regene"]["combine"]["per_class"] = 3
    p["wang_torr"]["sampler"].update(steps_per_resolution=2, num_views=2, samples_per_class=3)
    p["wang_torr"]["variants"] = {
        "wang_torr": {},
        "wang_torr_plain": p["wang_torr"]["variants"]["wang_torr_plain"],
    }
    p["references"]["real_mixup"]["soft"] = 6
    m = p["eval"]["metrics"]
    m.update(
        num_samples=30,
        kid_subsets=5,
        kid_subset_size=10,
        bootstrap=20,
        diversity_pairs=5,
        neighbours=4,
    )
    p["eval"]["methods"] = [
        "jem", "score_stic", "attentive_stic", "attentive_full", "sgld", "acgan", "regene",
        "wang_torr", "wang_torr_plain", "null_stic", "null_score", "real_mixup",
    ]  # fmt: skip
    return p


@pytest.fixture
def tiny_params(real_params, tmp_path) -> dict:
    return shrink(real_params, f"sqlite:///{tmp_path / 'mlflow.db'}")


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


def small_cnn(outputs: int = 3, width: int = 4, channels: int = 1):
    """An untrained small CNN and its model args."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="small_cnn", width=width, dropout=0.0, norm="none")
    args = model_args(cfg, in_channels=channels, num_outputs=outputs)
    return build_model(args).eval(), args


@pytest.fixture
def tiny_classifier():
    """An untrained small CNN on 1x8x8 inputs with 3 outputs, and its model args."""
    return small_cnn()
