"""What several test modules share (no test module imports another): the real parameters and
a tiny set derived from them, tiny data and networks, a tiny training recipe from params.yaml, the
environment of a new shell, and the real stage commands."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml

from pipeline.config import from_dict
from pipeline.data import DataConfig, ImageSet
from pipeline.models import ModelConfig, build_model, model_args
from pipeline.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DVC = ROOT / ".venv" / "bin" / "dvc"
# what a clone of the project holds (besides params.yaml), for tests that run DVC in a copy
TRACKED = ["bin", "pipeline", "stages", "profiles", "dvc.yaml", "pyproject.toml", ".dvcignore"]


def real_params_dict() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


# method -> dotted overrides of its params.yaml section that make it a toy (every method has one)
TINY: dict[str, dict[str, Any]] = {
    "stic": {"train.steps": 22, "chains.size": 40, "chains.batch": 16, "chains.steps": 2,
             "per_round_steps": 2, "eval.hard_per_class": 3, "eval.soft": 6, "eval.steps": 3,
             "eval.burn_in": 1,
             "rounds": {"r1": {"prev": "r0"}, "r2": {"prev": "r1"},
                        "no_mh": {"prev": "r0", "sampler": {"mh": False, "adapt": False}}}},
    "jem": {"train.steps": 22, "model.width": 4, "chains.size": 40, "chains.batch": 16,
            "chains.steps": 2, "eval.hard_per_class": 3, "eval.steps": 3},
    "score_stic": {"train.steps": 22, "model.width": 4, "noise.levels": 2,
                   "sampling.steps_per_level": 2, "sampling.hard_per_class": 3,
                   "sampling.soft": 6},
    "attentive_stic": {"round": "r2", "draw.glimpses": 2, "draw.steps_per_glimpse": 2,
                       "draw.window": 4, "draw.hard_per_class": 3},
    "sgld": {},  # it draws as JEM's evaluation does, cut above
    "regene": {"decoder.steps": 22, "decoder.width": 4, "decoder.batch_size": 20,
               "combine.per_class": 3},
    "acgan": {"model.width": 4, "model.z_dim": 8, "train.steps": 22, "train.batch_size": 20,
              "sample.per_class": 3, "variants": {"acgan": {}}},
    "wang_torr": {"classifier.train.steps": 22, "classifier.model.width": 4,
                  "sampler.steps_per_resolution": 2, "sampler.num_views": 2,
                  "sampler.samples_per_class": 3,
                  "variants": {"wang_torr": {},
                               "wang_torr_plain": {"views": False, "distance_weight": 0.0,
                                                   "distribution_weight": 0.0,
                                                   "progressive": False}}},
}  # fmt: skip


def shrink(params: dict, tracking_uri: str | None = None) -> dict:
    """params.yaml at toy scale: the 8x8 digits, tiny networks trained about one pass (22 steps),
    few sampler steps, 3 samples per class,
    tracking into `tracking_uri` (off when None). The core sections are cut here; every method is
    cut by its `TINY` overrides below; a test checks every method has an entry."""

    p = copy.deepcopy(params)
    p["runtime"].update(device="cpu", threads=1)
    p["tracking"].update(uri=tracking_uri, enabled=tracking_uri is not None, system_metrics=False)
    p["data"].update(name="digits", image_size=8)
    for section in ("judge", "judge_b"):
        p[section]["train"]["steps"] = 22
    # ReGene needs correctly classified images of every class: r0 must learn something
    p["baseline"]["train"].update(steps=66, lr=0.02)
    p["judge"]["model"]["width"] = 6
    p["judge_b"]["model"]["width"] = 4
    p["baseline"]["model"]["width"] = 4
    for method, overrides in TINY.items():
        for dotted, value in overrides.items():
            *parents, last = dotted.split(".")
            node = p[method]
            for part in parents:
                node = node[part]
            node[last] = copy.deepcopy(value)
    p["references"]["real_mixup"]["soft"] = 6
    m = p["eval"]["metrics"]
    m.update(
        num_samples=30,
        kid_subsets=5,
        kid_subset_size=10,
        bootstrap=20,
        diversity_pairs=5,
        neighbours=4,
        cas_steps=5,
    )
    p["eval"]["ladder"] = {"blur": [1.0], "noise": [0.5], "shuffle": [1.0]}
    p["eval"]["methods"] = [
        "jem", "score_stic", "attentive_stic", "attentive_full", "sgld", "acgan", "regene",
        "wang_torr", "wang_torr_plain", "null_stic", "null_score", "real_mixup",
    ]  # fmt: skip
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


def small_cnn(outputs: int = 3, width: int = 4, channels: int = 1):
    """An untrained small CNN and its model args."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="small_cnn", width=width, dropout=0.0, norm="none")
    args = model_args(cfg, in_channels=channels, num_outputs=outputs)
    return build_model(args).eval(), args


def tiny_section(key: str, cls: type, **overrides):
    """params.yaml's section `key` (dotted) as `cls`, with `overrides`: the real recipe at toy
    scale, so a test's settings drift with the real ones instead of being written out again."""
    node = real_params_dict()
    for part in key.split("."):
        node = node[part]
    return dataclasses.replace(from_dict(cls, node, key), **overrides)


def tiny_train(**overrides) -> TrainConfig:
    """The baseline's training recipe at toy scale: 6 steps of 16-image batches (2 passes over
    `tiny_data`) at lr 0.01, no mixup and no data noise unless `overrides` say otherwise."""
    base = {"steps": 6, "batch_size": 16, "lr": 0.01, "mixup_alpha": 0.0, "data_noise": 0.0}
    return tiny_section("baseline.train", TrainConfig, **(base | overrides))


def fresh(num_outputs: int = 3, seed: int = 0, width: int = 4):
    """A new small CNN on 1-channel images (its model args aside), seeded."""
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="small_cnn", width=width, dropout=0.0, norm="none")
    return build_model(model_args(cfg, 1, num_outputs))


def clean_env() -> dict:
    """The environment of a new shell that never activated .venv: no .venv/bin on PATH."""
    path = ":".join(p for p in os.environ["PATH"].split(":") if ".venv" not in p)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return env | {"PATH": path, "DVC_NO_ANALYTICS": "1", "MLFLOW_DISABLE_TELEMETRY": "true"}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cgen(*args, check: bool = True, root: Path | None = None,
         timeout: int = 600) -> subprocess.CompletedProcess:  # fmt: skip
    """bin/cgen exactly as dvc.yaml calls it (a new process, the project's Python); `root`: where
    its tracking spool lives (DVC_ROOT), when not the project's."""
    env = {**os.environ, **({"DVC_ROOT": str(root)} if root else {})}
    res = subprocess.run([str(ROOT / "bin" / "cgen"), *map(str, args)], cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip
    if check:
        assert res.returncode == 0, f"cgen {args[0]} failed: {res.stderr[-3000:]}"
    return res


def chain(d: Path, params: Path) -> None:
    """prepare -> baseline -> STIC round r1 -> its evaluation set, into folder d."""
    cgen("prepare", "--train-out", d / "train.pt", "--test-out", d / "test.pt",
         "--metrics", d / "data.json", "--params", params)  # fmt: skip
    cgen("classifier", "--section", "baseline", "--train", d / "train.pt", "--test", d / "test.pt",
         "--model-out", d / "r0.pt", "--metrics", d / "r0.json", "--figure", d / "r0.png",
         "--history", d / "r0.tsv", "--params", params)  # fmt: skip
    cgen("stic-round", "--round", "r1", "--prev", d / "r0.pt", "--train", d / "train.pt",
         "--test", d / "test.pt", "--model-out", d / "r1.pt", "--metrics", d / "r1.json",
         "--figure", d / "r1_train.png", "--history", d / "r1.tsv", "--params", params)  # fmt: skip
    cgen("stic-sample", "--round", "r1", "--model", d / "r1.pt", "--train", d / "train.pt",
         "--samples-out", d / "r1_samples.pt", "--metrics", d / "r1_sampling.json",
         "--figure", d / "r1_samples.png", "--params", params)  # fmt: skip


def flatten_network(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with every weight zero and the head's bias kept: its outputs no longer depend on
    the input, so its input gradient is zero: what a null sampler draws on."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not name.startswith("head.bias"):
                p.zero_()
    return model


def write_random_inception(path: Path) -> Path:
    """An Inception-v3 state dict of the structure torch-fidelity loads (its
    FeatureExtractorInceptionV3), with random values: made offline, so the Inception code path
    runs exactly as with the published weights file, on numbers that mean nothing."""
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with (
        mock.patch.object(fe, "load_state_dict_from_url", return_value={}),
        mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None),
    ):
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("random-inception", ["2048", "logits_unbiased"])
    torch.save(net.state_dict(), path)
    return path


def project_copy(tmp_path: Path, params: dict) -> Path:
    """A fresh repository holding the project's code and `params`, as a clone would."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in TRACKED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, repo / name)
    (repo / ".venv").symlink_to(ROOT / ".venv")
    (repo / ".gitignore").write_text(".venv\n.tracking/\nmlflow.db*\nmlartifacts/\ndata/resume/\n")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = clean_env()
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"],
                [str(DVC), "init", "-q"]):  # fmt: skip
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    return repo


def data_config(**overrides) -> DataConfig:
    """A DataConfig for reader tests: no class count or cap, `overrides` for the rest."""
    base = dict(name="digits", root="unused", loader="builtin", image_size=16, fit="resize",
                test_fraction=0.2, split_seed=0, download=False, channels=None,
                num_classes=None, limit_per_class=None)  # fmt: skip
    return DataConfig(**{**base, **overrides})


def stop_server(proc: subprocess.Popen, log) -> None:
    """Stop a server started in its own process group (SIGTERM, then SIGKILL), close its log."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
