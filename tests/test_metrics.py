"""pipeline.metrics: judge-based FID/KID/IS/PR via torch-fidelity, bootstrap, memorisation,
discriminability, diversity, interpolation. Offline: network connections are refused here."""

from __future__ import annotations

import math
import socket
from dataclasses import replace

import pytest
import torch
import torch_fidelity
from support import make_image_set, small_cnn, tiny_train

from pipeline import evaluation as E
from pipeline import metrics as M
from pipeline.checkpoint import save_checkpoint
from pipeline.errors import ConfigError
from pipeline.models import ModelConfig, build_model, model_args
from pipeline.params import parse_params
from pipeline.samples import SampleSet, hard_targets, two_class_mixtures
from pipeline.train import train_classifier


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    connect = socket.socket.connect

    def refuse(sock, address, *args, **kwargs):
        if sock.family in (socket.AF_INET, socket.AF_INET6):  # local IPC sockets stay allowed
            raise RuntimeError(f"network access to {address} attempted in an offline test")
        return connect(sock, address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def data():
    return make_image_set(n_per_class=20, classes=3, size=8, seed=0)


@pytest.fixture(scope="module")
def reference():
    return make_image_set(n_per_class=30, classes=3, size=8, seed=1)


def _judge(data, epochs: int):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="judge_cnn", width=6, dropout=0.0, norm="batch")
    args = model_args(cfg, in_channels=1, num_outputs=3)
    model = build_model(args)
    cfg = tiny_train(steps=4 * max(1, epochs), batch_size=20, lr_schedule="cosine")
    if epochs:
        train_classifier(model, data, cfg, device=torch.device("cpu"), seed=0, where="test")
    return model.eval(), args


@pytest.fixture(scope="module")
def judge_path(tmp_path_factory, data):
    """A judge trained to near-perfect accuracy on the separable synthetic classes."""
    model, args = _judge(data, epochs=15)
    path = tmp_path_factory.mktemp("judge") / "judge.pt"
    save_checkpoint(path, model, args, {})
    return path


CFG = M.EvalConfig(
    seed=0,
    num_samples=1000,
    batch_size=16,
    judge_metrics=True,
    kid_subsets=10,
    kid_subset_size=20,
    isc_splits=1,
    prc_neighborhood=3,
    bootstrap=50,
    confidence=0.95,
    diversity=True,
    diversity_pairs=10,
    neighbours=4,
    inception_weights=None,
    cas_steps=0,
)


def features(path, images, batch_size=16):
    from pipeline.checkpoint import load_classifier

    return M.judge_features(load_classifier(path)[0], images, batch_size)


def _with_head(path, tmp_path, scale: float):
    """A copy of the judge checkpoint with head weights and bias multiplied by `scale`."""
    payload = torch.load(path, weights_only=True)
    model = build_model(payload["model_args"])
    model.load_state_dict(payload["state_dict"])
    with torch.no_grad():
        model.head.weight.mul_(scale)
        model.head.bias.mul_(scale)
    out = tmp_path / f"judge_x{scale}.pt"
    save_checkpoint(out, model, payload["model_args"], {})
    return out, model.eval()


# ----------------------------------------------------------------- FID / KID / IS / PR


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift(judge_path, data):
    f = features(judge_path, data.images)
    same = M.fidelity(f, f, CFG)
    assert abs(same[M.JUDGE_FID]) < 1e-3
    assert same[M.PRECISION] == 1.0 and same[M.RECALL] == 1.0
    shifted = (data.images.int() + 60).clamp(0, 255).to(torch.uint8)
    moved = M.fidelity(features(judge_path, shifted), f, CFG)
    assert moved[M.JUDGE_FID] > 0.05
    assert moved[M.JUDGE_FID] > 100 * abs(same[M.JUDGE_FID])
    assert moved[M.JUDGE_KID] > same[M.JUDGE_KID]


def test_inception_score_is_one_for_uniform_predictions(judge_path, data, tmp_path):
    uniform_path, _ = _with_head(judge_path, tmp_path, 0.0)  # all logits 0: uniform softmax
    f = features(uniform_path, data.images)
    assert M.fidelity(f, f, CFG)[M.JUDGE_IS] == pytest.approx(1.0, abs=1e-9)


def test_inception_score_is_about_k_for_confident_balanced_predictions(judge_path, data, tmp_path):
    sharp_path, _ = _with_head(judge_path, tmp_path, 50.0)
    f = features(sharp_path, data.images)
    assert M.discriminability(f.probs, data.labels) == 1.0  # balanced classes, all right
    assert f.probs.max(1).values.min() > 0.999  # confident
    assert M.fidelity(f, f, CFG)[M.JUDGE_IS] == pytest.approx(3.0, abs=0.01)


def test_judge_fid_equals_a_direct_torch_fidelity_call(judge_path, data, reference):
    """Our features through torch-fidelity's metric functions give torch-fidelity's own FID
    through its registered-extractor entry point."""
    ours = M.fidelity(features(judge_path, data.images), features(judge_path, reference.images),
                      CFG)  # fmt: skip
    direct = torch_fidelity.calculate_metrics(
        input1=M.ImageTensorDataset(data.images),
        input2=M.ImageTensorDataset(reference.images),
        fid=True,
        feature_extractor=M.register_judge_extractor(),
        feature_extractor_weights_path=str(judge_path),
        cuda=False,
        cache=False,
        verbose=False,
        save_cpu_ram=True,
    )
    assert ours[M.JUDGE_FID] == pytest.approx(direct[torch_fidelity.KEY_METRIC_FID], rel=1e-4)
    assert ours[M.JUDGE_FID] > 0


def test_features_do_not_depend_on_batch_size(judge_path, data):
    a, b = features(judge_path, data.images, 7), features(judge_path, data.images, 64)
    assert torch.allclose(a.embed, b.embed, atol=1e-5) and torch.allclose(
        a.logits, b.logits, atol=1e-5
    )


def test_kid_subset_size_is_clipped_to_the_sample_count(judge_path, data, reference):
    few = features(judge_path, data.images[::6])  # 10 images, kid_subset_size 20
    ref = features(judge_path, reference.images)
    out = M.fidelity(few, ref, CFG)
    clipped = M.fidelity(few, ref, replace(CFG, kid_subset_size=len(few.embed)))
    assert CFG.kid_subset_size > len(few.embed)
    assert math.isfinite(out[M.JUDGE_KID]) and out[M.JUDGE_KID] == clipped[M.JUDGE_KID]


# ----------------------------------------------------------------- memorisation


def test_nearest_distance_of_a_training_image_to_the_training_set_is_zero(data):
    x = data.float_images().flatten(1)
    assert torch.equal(M.nearest_distances(x[:10], x), torch.zeros(10, dtype=torch.float64))
    assert (M.nearest_distances(x[:10] + 0.5, x) > 0).all()


def test_memorisation_flags_copies_and_not_held_out_images(data, reference):
    train = data.float_images().flatten(1)
    held_out = reference.float_images().flatten(1)
    ratio, copies = M.memorisation(train[:30], held_out, train)  # copies of training images
    assert ratio == 0.0 and copies == 1.0
    ratio, copies = M.memorisation(held_out[:40], held_out, train)
    assert 0.7 < ratio < 1.3 and copies < 0.2


def test_distinct_share_counts_near_copies_within_a_class(data):
    labels = torch.zeros(6, dtype=torch.long)
    one = data.images[:1].repeat(6, 1, 1, 1)
    assert M.distinct_share(one, labels) == pytest.approx(1 / 6)
    assert M.distinct_share(data.images[:20], data.labels[:20]) == 1.0


# ----------------------------------------------------------------- discriminability, interpolation


def test_discriminability_counts_intended_classes():
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    assert M.discriminability(probs, torch.tensor([0, 1, 1, 1])) == 0.75


def test_interpolation_is_exact_when_the_judge_follows_lambda_and_has_a_chance_reference():
    targets = torch.tensor(
        [[0.3, 0.7, 0.0], [0.0, 0.25, 0.75], [0.5, 0.0, 0.5], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]
    )  # one hard, one 3-class: ignored
    rows, i, j, lam = two_class_mixtures(targets)
    assert rows.tolist() == [0, 1, 2] and i.tolist() == [0, 1, 0] and j.tolist() == [1, 2, 2]
    assert lam.tolist() == pytest.approx([0.3, 0.25, 0.5])
    # probabilities proportional to the target (times 0.8, with 0.2 on a third class)
    follows = torch.tensor(
        [[0.24, 0.56, 0.2], [0.2, 0.2, 0.6], [0.4, 0.2, 0.4], [1.0, 0.0, 0.0], [0.3, 0.3, 0.4]],
        dtype=torch.float64,
    )
    out = M.interpolation(follows, targets)
    assert out[M.INTERPOLATION_ERROR] == pytest.approx(0.0, abs=1e-6)
    assert out[M.INTERPOLATION_CHANCE] == pytest.approx((0.2 + 0.25 + 0.0) / 3)
    assert out[M.PAIR_MASS] == pytest.approx((0.8 + 0.8 + 0.8) / 3)
    hard = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1, 0, 0], [1, 0, 0]],
        dtype=torch.float64,
    )  # the judge always picks class i fully
    out = M.interpolation(hard, targets)
    assert out[M.INTERPOLATION_ERROR] == pytest.approx((0.7 + 0.75 + 0.5) / 3)
    assert out[M.INTERPOLATION_LO] < out[M.INTERPOLATION_ERROR] < out[M.INTERPOLATION_HI]
    assert (
        M.interpolation(hard, hard_targets(torch.tensor([0, 1]), 3))[M.INTERPOLATION_ERROR] is None
    )


# ----------------------------------------------------------------- diversity


def test_msssim_of_an_image_with_itself_is_one_and_lower_for_other_images(data):
    for size in (8, 16, 32):
        imgs = make_image_set(n_per_class=4, classes=2, size=size, seed=3).images
        same = M.msssim_pairs(imgs, imgs)
        assert same.tolist() == pytest.approx([1.0] * len(imgs), abs=1e-6)
        other = M.msssim_pairs(imgs, imgs.flip(0))
        assert (other < 0.999).all()


def test_msssim_upsampling_makes_small_images_valid_for_pytorch_msssim():
    limit = (M.MSSSIM_WINDOW - 1) * 2**M.MSSSIM_DOWNSAMPLINGS
    for side in (4, 8, 16, 32, 64, 200):
        factor = M.msssim_upsample_factor(side)
        assert side * factor > limit
        assert factor == 1 or side * (factor - 1) <= limit  # the smallest such factor
    assert M.msssim_upsample_factor(16) == 3


def test_msssim_pairs_do_not_depend_on_batch_size(data):
    a, b = data.images[:30], data.images[30:]
    assert M.msssim_pairs(a, b, 4).tolist() == pytest.approx(
        M.msssim_pairs(a, b, 64).tolist(), abs=1e-9
    )


def test_same_class_pairs_are_distinct_and_same_class():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])  # class 2 has one member: no pairs
    pairs = M.same_class_pairs(labels, 20, torch.Generator().manual_seed(0))
    assert set(pairs) == {0, 1}
    for cls, (a, b) in pairs.items():
        assert (a != b).all() and (labels[a] == cls).all() and (labels[b] == cls).all()


def test_diversity_summary_uses_the_least_diverse_real_class_as_threshold():
    out = M.diversity_summary({0: 0.2, 1: 0.5, 2: 0.7}, {0: 0.3, 1: 0.6})
    assert out[M.DIVERSITY_THRESHOLD] == 0.6
    assert out[M.DIVERSITY] == pytest.approx(1.4 / 3)
    assert out[M.DIVERSE_FRACTION] == pytest.approx(2 / 3)
    assert M.diversity_summary({}, {0: 0.3})[M.DIVERSITY] is None


# ----------------------------------------------------------------- the whole evaluation


def _soft_samples(data, n: int, seed: int) -> SampleSet:
    gen = torch.Generator().manual_seed(seed)
    lam = torch.rand(n, generator=gen)
    i = torch.randint(0, 3, (n,), generator=gen)
    j = (i + 1) % 3
    targets = torch.zeros(n, 3)
    targets[torch.arange(n), i] = lam
    targets[torch.arange(n), j] = 1 - lam
    imgs = data.images[torch.randint(0, len(data), (n,), generator=gen)]
    return SampleSet(imgs, targets, "test", data.class_names)


def test_evaluate_samples_measures_everything_at_the_same_count(judge_path, data, reference):
    from pipeline.checkpoint import load_classifier

    judge, _ = load_classifier(judge_path)
    hard = E.real_as_samples(data, "test")
    soft = _soft_samples(data, 12, 0)
    both = SampleSet(torch.cat([hard.images, soft.images]), torch.cat([hard.targets, soft.targets]),
                     "test", data.class_names)  # fmt: skip
    judges = {"judge": judge, "judge_b": judge}
    out = E.evaluate_samples(both, data, reference, judges, CFG)
    m = out.metrics
    assert m[M.EVAL_COUNT] == len(reference) and m[M.NUM_HARD] == 60 and m[M.NUM_SOFT] == 12
    assert m[M.DISCRIMINABILITY] == pytest.approx(1.0)
    assert m["judge_b_discriminability"] == m[M.DISCRIMINABILITY]
    assert m[M.JUDGE_FID] == pytest.approx(0.0, abs=1e-3)  # the training images themselves
    assert m[M.JUDGE_FID_LO] <= m[M.JUDGE_FID] <= m[M.JUDGE_FID_HI]
    assert m[M.NN_PIXEL_RATIO] == 0.0 and m[M.COPY_SHARE] == 1.0  # memorised: they are copies
    assert 0.0 <= m[M.INTERPOLATION_ERROR] <= 1.0
    assert 0.0 < m[M.DIVERSITY] < 1.0 and m[M.DIVERSE_FRACTION] is not None
    assert M.INCEPTION_FID not in m and m[M.INCEPTION_STATUS].startswith("not computed")
    assert len(out.shown) == 4 and torch.equal(data.images[out.neighbours],
                                                out.hard.images[out.shown])  # fmt: skip
    small = {**CFG.__dict__, "num_samples": 10}
    capped = E.evaluate_samples(both, data, reference, judges, M.EvalConfig(**small))
    assert capped.metrics[M.NUM_HARD] == 10 and capped.metrics[M.NUM_SOFT] == 10
    again = E.evaluate_samples(both, data, reference, judges, M.EvalConfig(**small))
    assert again.metrics == capped.metrics  # same seed, same subset, same numbers
    # the classification accuracy score: taught by the samples, scored on the held-out images;
    # samples that are the held-out images themselves leave the drawn ones out of the scoring
    with_cas = M.EvalConfig(**{**small, "cas_steps": 20})
    _, args = small_cnn(data.num_classes)
    scored = E.evaluate_samples(both, data, reference, judges, with_cas, cas_model=args)
    assert 0 <= scored.metrics[M.CAS] <= 1 and scored.metrics[M.CAS_TEST_IMAGES] == len(reference)
    real = E.real_as_samples(reference)
    own = E.evaluate_samples(real, data, reference, judges, with_cas, cas_model=args, of_test=True)
    assert own.metrics[M.CAS_TEST_IMAGES] == len(reference) - 10
    every = M.EvalConfig(**{**small, "num_samples": len(reference), "cas_steps": 20})
    none_left = E.evaluate_samples(real, data, reference, judges, every, cas_model=args,
                                   of_test=True)  # fmt: skip
    assert M.CAS not in none_left.metrics  # every held-out image drawn: nothing to score on


def test_inception_is_not_computed_without_a_local_weights_file(tmp_path):
    assert "null" in M.inception_unavailable(None)
    assert "does not exist" in M.inception_unavailable(str(tmp_path / "missing.pth"))
    (tmp_path / "w.pth").write_bytes(b"x")
    assert M.inception_unavailable(str(tmp_path / "w.pth")) is None


def test_cap_is_deterministic_sorted_and_complete_below_the_limit():
    assert M.cap(5, 10, 0).tolist() == [0, 1, 2, 3, 4]
    a, b = M.cap(100, 10, 3), M.cap(100, 10, 3)
    assert a.tolist() == b.tolist() == sorted(a.tolist()) and len(set(a.tolist())) == 10


def test_the_count_is_capped_by_the_held_out_split():
    assert (
        CFG.count(359) == 359
        and M.EvalConfig(**{**CFG.__dict__, "num_samples": 200}).count(72) == 72
    )


# ----------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("section", "bad"),
    [
        ("metrics", {"num_samples": 1}),
        ("metrics", {"kid_subset_size": 1}),
        ("metrics", {"confidence": 1.5}),
        ("metrics", {"prc_neighborhood": 0}),
        (None, {"methods": ["jem", "jem"]}),
        (None, {"methods": ["real"]}),
    ],
)
def test_bad_eval_params_are_refused(real_params, section, bad):
    import copy

    p = copy.deepcopy(real_params)
    (p["eval"][section] if section else p["eval"]).update(bad)
    with pytest.raises(ConfigError, match="eval"):
        parse_params(p)
