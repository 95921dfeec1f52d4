"""Shared fixtures: a tiny parameter set derived from the real params.yaml, tiny data, CPU only."""

from __future__ import annotations

import os

from pipeline import numerics

# In-process tests compute like the stages: the portable pins, set before torch and numpy load
numerics.apply("portable")

import pytest
import torch
from support import make_image_set, real_params_dict, shrink, small_cnn

from pipeline.data import ImageSet

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


@pytest.fixture
def real_params() -> dict:
    """The committed params.yaml as a plain dict."""
    return real_params_dict()


@pytest.fixture
def tiny_params(real_params, tmp_path) -> dict:
    return shrink(real_params, f"sqlite:///{tmp_path / 'mlflow.db'}")


@pytest.fixture
def tiny_data() -> ImageSet:
    return make_image_set()


@pytest.fixture
def tiny_classifier():
    """An untrained small CNN on 1x8x8 inputs with 3 outputs, and its model args."""
    return small_cnn()
