"""Inception metrics on their real code path: with eval.metrics.inception_weights naming a local
file, evaluation computes Inception FID/KID/IS through torch-fidelity as it would with the
published weights (here a random state dict of the right structure, made offline), on 3-channel
images and on 1-channel ones (expanded to RGB); the report puts them beside the published numbers
only when the dataset is the published one."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os

import pytest
import torch
from support import make_image_set, write_random_inception

from pipeline import metrics as M
from pipeline import report as R
from pipeline.errors import DataError
from pipeline.evaluation import evaluate_samples, real_as_samples
from pipeline.metrics import EvalConfig
from pipeline.models import ModelConfig, build_model, model_args

CFG = EvalConfig(seed=0, num_samples=20, batch_size=20, judge_metrics=True, kid_subsets=3,
                 kid_subset_size=10, isc_splits=2, prc_neighborhood=3, bootstrap=0,
                 confidence=0.95, diversity=False, diversity_pairs=5, neighbours=4,
                 inception_weights=None, cas_steps=0)  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_random_inception(tmp_path_factory.mktemp("inception") / "pt_inception.pth")


@pytest.mark.slow  # Inception-v3 at 299 x 299 on a CPU: about a minute a case
@pytest.mark.parametrize("channels", [3, 1])
def test_inception_metrics_are_computed_from_a_local_weights_file(weights, channels):
    data = make_image_set(n_per_class=12, classes=3, size=16, channels=channels, seed=0)
    test = make_image_set(n_per_class=8, classes=3, size=16, channels=channels, seed=1)
    judge = build_model(model_args(ModelConfig("judge_cnn", 4, 0.0, "batch"), channels, 3)).eval()
    cfg = dataclasses.replace(CFG, inception_weights=str(weights))
    samples = real_as_samples(test, "fake")
    out = evaluate_samples(samples, data, test, {"judge": judge}, cfg).metrics
    assert out[M.INCEPTION_STATUS] == "computed"
    for key in (M.INCEPTION_FID, M.INCEPTION_KID, M.INCEPTION_IS):
        assert isinstance(out[key], float) and math.isfinite(out[key])
    assert out[M.INCEPTION_IS] >= 1.0 - 1e-6  # an Inception Score is at least 1
    # the same images against themselves: FID of a set with itself is ~0, on these features too
    same = evaluate_samples(real_as_samples(data, "copy"), data, test, {"judge": judge}, cfg)
    assert abs(same.metrics[M.INCEPTION_FID]) < 1e-3 * max(1.0, out[M.INCEPTION_FID])


def test_a_bad_weights_file_is_refused_before_anything_runs(tmp_path):
    assert "does not exist" in M.inception_unavailable(str(tmp_path / "none.pth"))


class _RunsCode:
    """An object whose unpickling runs a shell command (what a crafted weights file can hold)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_weights_file_that_would_run_code_is_refused_unloaded(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "pt_inception.pth"
    torch.save({"conv.weight": torch.zeros(1), "payload": _RunsCode(marker)}, bad)
    with pytest.raises(DataError, match="not a plain weights file") as info:
        M.verify_inception_weights(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()


def test_a_weights_file_whose_name_promises_another_hash_is_refused(tmp_path):
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"  # the published file's name
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(DataError, match="does not match the 6726825d its name promises"):
        M.verify_inception_weights(path)


def test_a_plain_weights_file_passes_with_its_hash(tmp_path):
    path = tmp_path / "pt_inception.pth"
    torch.save({"conv.weight": torch.ones(3)}, path)
    assert M.verify_inception_weights(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_inception_numbers_sit_beside_the_published_ones_only_for_the_published_dataset():
    rows = {"acgan": R.Row("acgan", "method", "AC-GAN", {M.INCEPTION_IS: 3.2}),
            "jem": R.Row("jem", "method", "JEM", {M.INCEPTION_FID: 120.0})}  # fmt: skip
    table = R.published_table("cifar10", rows)
    assert [r[0] for r in table[2]] == ["acgan", "jem"] and table[2][1][4] == "120.00"
    assert R.published_table("digits", rows) is None and R.published_table("mnist", rows) is None
