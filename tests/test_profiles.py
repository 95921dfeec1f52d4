"""Every profile in profiles/ runs end to end before anyone spends a GPU on it: tiny data written in
the profile's real on-disk format (CIFAR-10 pickles with batches.meta, MNIST idx), the profile
applied as `bin/cgen params apply` applies it, then only sizes cut (training steps, chains, sampler
steps, samples per class, rounds kept r1 and r2 and one ablation), the networks and every other
choice of the profile kept (a Wide-ResNet-28-10 and a ResNet-18 on 3x32x32 for a batch or two),
through every stage to the report, with `dvc repro`. One change of kind is forced by this machine:
the device is the CPU. A profile that names Inception weights gets a random file of their structure
(tests/support.write_random_inception), so the Inception path runs and the report's published table
appears."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from support import (
    DVC,
    ROOT,
    clean_env,
    make_image_set,
    project_copy,
    real_params_dict,
    write_random_inception,
)

from pipeline.config import merge
from pipeline.data import DATASETS
from pipeline.formats import write_cifar10, write_mnist_like

PROFILES = sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml"))


def applied(profile: str) -> dict:
    """params.yaml with the profile merged in, as `bin/cgen params apply NAME` writes it."""
    text = subprocess.run(
        [str(ROOT / "bin" / "cgen"), "params", "overrides", profile], cwd=ROOT, text=True,
        capture_output=True, env=clean_env(),
    )  # fmt: skip
    assert text.returncode == 0, text.stderr  # the profile is valid over the current params
    return merge(
        real_params_dict(), yaml.safe_load((ROOT / "profiles" / f"{profile}.yaml").read_text())
    )


def sizes_cut(params: dict) -> dict:
    """The profile at toy sizes: every count and budget cut, every network and choice kept."""
    p = copy.deepcopy(params)
    p["runtime"].update(device="cpu", threads=2)
    p["tracking"]["enabled"] = False
    for section in ("judge", "judge_b", "baseline"):
        p[section]["train"].update(steps=2)
    p["wang_torr"]["classifier"]["train"].update(steps=2)
    stic = p["stic"]
    stic["train"]["steps"] = 2
    stic["chains"].update(size=20, batch=4, steps=1)
    stic["per_round_steps"] = 1
    stic["eval"].update(hard_per_class=1, soft=2, steps=2, burn_in=1)
    ablation = next(k for k, v in stic["rounds"].items() if v.get("prev") == "r0" and k != "r1")
    stic["rounds"] = {"r1": stic["rounds"]["r1"], "r2": stic["rounds"]["r2"],
                      ablation: stic["rounds"][ablation]}  # fmt: skip
    for rnd in stic["rounds"].values():
        if "train" in rnd:
            rnd["train"] = {**rnd["train"], "steps": 1}
    p["jem"]["train"]["steps"] = 2
    p["jem"]["chains"].update(size=20, batch=4, steps=1)
    p["jem"]["eval"].update(hard_per_class=1, steps=2)
    p["score_stic"]["train"]["steps"] = 2
    p["score_stic"]["noise"]["levels"] = 2
    p["score_stic"]["sampling"].update(steps_per_level=1, hard_per_class=1, soft=2)
    p["attentive_stic"].update(round="r2")
    p["attentive_stic"]["draw"].update(glimpses=1, steps_per_glimpse=1, hard_per_class=1)
    p["acgan"]["train"]["steps"] = 2
    p["acgan"]["sample"]["per_class"] = 1
    p["acgan"]["variants"] = {"acgan": p["acgan"]["variants"].get("acgan", {})}
    p["regene"]["decoder"]["steps"] = 2
    p["regene"]["combine"].update(per_class=1, pool="labelled")  # a batch or two: a class may
    # have no correctly classified image yet
    p["wang_torr"]["sampler"].update(steps_per_resolution=1, num_views=1, samples_per_class=2)
    variants = p["wang_torr"]["variants"]
    p["wang_torr"]["variants"] = {k: variants[k] for k in ("wang_torr", "wang_torr_plain")}
    p["references"]["real_mixup"]["soft"] = 2
    p["eval"]["metrics"].update(num_samples=10, kid_subsets=2, kid_subset_size=5, bootstrap=5,
                                diversity_pairs=2, neighbours=2, isc_splits=2,
                                cas_steps=2)  # fmt: skip
    p["eval"]["ladder"] = {"blur": [1.0], "noise": [0.5], "shuffle": [1.0]}
    kept = {*p["wang_torr"]["variants"], *p["acgan"]["variants"], *p["references"]["nulls"],
            *p["attentive_stic"]["variants"], "jem", "score_stic", "sgld", "regene",
            "real_mixup"}  # fmt: skip
    p["eval"]["methods"] = [m for m in p["eval"]["methods"] if m in kept]
    return p


def write_data(params: dict, root: Path) -> None:
    """Ten separable classes in the profile's dataset format: 12 training and 4 test images each
    (one of ten classes' images, so every set's 10 hard samples are one a class)."""
    name = params["data"]["name"]
    root.mkdir(parents=True, exist_ok=True)  # prepare's dependency, whatever the dataset
    if DATASETS[name].sha256 is not None:
        return  # bundled with a pinned package: nothing to write
    if name == "cifar10":

        def pairs(n, seed):
            d = make_image_set(n_per_class=n, classes=10, size=32, channels=3, seed=seed)
            return d.images, d.labels

        write_cifar10(root / "cifar-10-batches-py", pairs(12, 0), pairs(4, 1))
    elif name == "mnist":

        def pairs(n, seed):
            d = make_image_set(n_per_class=n, classes=10, size=28, channels=1, seed=seed)
            return d.images[:, 0], d.labels

        write_mnist_like(root / "MNIST" / "raw", pairs(12, 0), pairs(4, 1))
    else:
        raise AssertionError(f"no tiny writer for data.name {name}: add one beside its reader")


# profiles whose tiny run takes too long for CI (marked `long`: `make test-long` runs them)
LONG = {"cifar10_wrn": "a 28-layer WRN at 32x32 through every stage: about 30 minutes on 2 cores"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "profile", [pytest.param(p, marks=pytest.mark.long) if p in LONG else p for p in PROFILES]
)
def test_every_profile_runs_end_to_end_on_tiny_data_in_its_format(tmp_path, profile):
    params = sizes_cut(applied(profile))
    raw = tmp_path / "raw"
    write_data(params, raw)
    params["data"]["root"] = str(raw)
    # the tiny files hold 12 a class; a bundled dataset is capped to as many
    bundled = DATASETS[params["data"]["name"]].sha256 is not None
    params["data"]["limit_per_class"] = 12 if bundled else None
    weights = params["eval"]["metrics"]["inception_weights"]
    if weights is not None:
        params["eval"]["metrics"]["inception_weights"] = str(
            write_random_inception(tmp_path / Path(weights).name)
        )
    repo = project_copy(tmp_path, params)
    res = subprocess.run([str(DVC), "repro"], cwd=repo, env=clean_env(), capture_output=True,
                         text=True, timeout=5400)  # fmt: skip
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    judge = torch.load(repo / "data" / "models" / "judge.pt", weights_only=True)
    assert judge["model_args"]["arch"] == params["judge"]["model"]["arch"]  # networks kept
    r0 = torch.load(repo / "data" / "models" / "r0.pt", weights_only=True)["model_args"]
    assert {k: r0[k] for k in ("arch", "width", "depth", "widen_factor")} == {
        k: params["baseline"]["model"].get(k) for k in ("arch", "width", "depth", "widen_factor")
    }
    report = (repo / "reports" / "report.md").read_text()
    assert "## Verdicts" in report
    summary = json.loads((repo / "reports" / "summary.json").read_text())
    assert {"stic", "jem", "real"} <= set(summary)
    real = json.loads((repo / "reports" / "eval" / "real.json").read_text())
    if weights is not None:
        assert real["inception_status"] == "computed"
        assert "Odena et al. 2017" in report  # the published numbers, beside ours
    else:
        assert real["inception_status"].startswith("not computed")


@pytest.mark.parametrize("profile", ["params.yaml", *PROFILES])
def test_the_long_round_trains_for_the_chains_total_steps(profile):
    """stic.rounds.long is the rounds' matched control (one round for r1 + r2 + ... steps): every
    profile that changes the chain's budgets must change it with them."""
    stic = (real_params_dict() if profile == "params.yaml" else applied(profile))["stic"]
    rounds = stic["rounds"]

    def steps(name: str) -> int:
        return (rounds[name].get("train") or {}).get("steps", stic["train"]["steps"])

    chain = [f"r{i}" for i in range(1, len(rounds) + 1) if f"r{i}" in rounds]
    assert steps("long") == sum(steps(r) for r in chain), (profile, chain)


@pytest.mark.parametrize("profile", ["params.yaml", *PROFILES])
def test_the_matched_acgan_trains_at_wang_and_torrs_training_cost(profile):
    """acgan.variants.acgan_matched is the control of Wang & Torr's comparison with a GAN: its
    training passes an image equal their classifier's in every profile."""
    from pipeline.costs import classifier_train_passes
    from pipeline.methods import acgan
    from pipeline.params import parse_params

    p = parse_params(real_params_dict() if profile == "params.yaml" else applied(profile))
    gan = acgan.train_passes_per_image(p.methods["acgan"].resolved("acgan_matched").train, 1000)
    own = classifier_train_passes(p.methods["wang_torr"].classifier.train, 1000)
    assert gan == pytest.approx(own, rel=0.01), profile
