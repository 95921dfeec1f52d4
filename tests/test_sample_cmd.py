"""`cgen sample`: samples of chosen classes from each method's trained model, drawn with its own
sampler and settings, seeded; its refusals (another method's file, a class out of range, a missing
checkpoint, --n < 1) exit non-zero before anything is written.

The models are tiny untrained networks written here in the checkpoint format of each method's
training stage (the keys its `write_training` call stores), at the paths the real dvc.yaml's
sample stages pass, so the defaults are read from dvc.yaml as in the project."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from support import ROOT, make_image_set, md5, real_params_dict, shrink

from pipeline.chains import ChainBuffer
from pipeline.checkpoint import save_checkpoint
from pipeline.config import load_sections, read_yaml, to_dict
from pipeline.data import save_image_set
from pipeline.infer import embed_all
from pipeline.methods import acgan, regene
from pipeline.methods.jem import JEMConfig
from pipeline.methods.score import ScoreStiCConfig
from pipeline.methods.stic import StiCConfig, round_settings
from pipeline.models import ModelConfig, build_model, model_args
from pipeline.samples import load_samples
from stages.cli import main
from stages.sample_cmd import (
    GRID_COLUMNS,
    SOURCES,
    find_stage,
    grid_images,
    made_by,
    sample_targets,
    stage_path,
)

K, SHAPE = 3, (1, 8, 8)
SET_OF = {"stic": ["--round", "r1"]}  # the one method whose set must be named


def checkpoint(path: Path, model, args: dict, **extra) -> None:
    save_checkpoint(path, model, args, extra.pop("config", {}), history=[{}], metrics={}, **extra)


def write_models(root: Path, params: Path, data) -> None:
    """Each method's network, untrained, where dvc.yaml's stages put it (data/models/...)."""
    models = root / "data" / "models"
    cfg = load_sections(params, {"baseline.model": ModelConfig, "stic": StiCConfig,
                                 "jem": JEMConfig, "score_stic": ScoreStiCConfig,
                                 "acgan.model": acgan.ACGANModelConfig,
                                 "regene.decoder": regene.DecoderConfig,
                                 "wang_torr.classifier.model": ModelConfig})  # fmt: skip
    torch.manual_seed(0)
    r0_args = model_args(cfg["baseline.model"], 1, K)
    r0 = build_model(r0_args)
    checkpoint(models / "r0.pt", r0, r0_args, round="r0")
    args = model_args(cfg["wang_torr.classifier.model"], 1, K)  # as stage wang_torr_classifier
    checkpoint(models / "wang_torr.pt", build_model(args), args, round="wang_torr")
    for name in ("r1", "r2"):  # as stage stic_round writes them
        setting = round_settings(cfg["stic"], name).setting
        args = model_args(cfg["baseline.model"], 1, setting.loss.outputs(K))
        chains = ChainBuffer.new(setting.chains, K, SHAPE, setting.sampler.step_size,
                                 torch.Generator().manual_seed(0))  # fmt: skip
        config = {"round": name, "synthesis": "per_step", "setting": to_dict(setting)}
        checkpoint(models / f"{name}.pt", build_model(args), args, config=config,
                   chains=chains.state_dict(), round=name)  # fmt: skip
    jem = cfg["jem"]  # as stage jem_train
    args = model_args(jem.model, 1, jem.loss.outputs(K))
    chains = ChainBuffer.new(jem.chains, K, SHAPE, jem.sampler.step_size, torch.Generator())
    checkpoint(models / "jem.pt", build_model(args), args, chains=chains.state_dict(), method="jem")
    args = model_args(cfg["score_stic"].model, 1, K)  # as stage score_train
    checkpoint(models / "score_stic.pt", build_model(args), args, method="score_stic")
    args = acgan.model_args(K, 1, 8, cfg["acgan.model"])  # as stage acgan_train
    g, d = acgan.build(args)
    checkpoint(models / "acgan.pt", g, args, discriminator_state=d.state_dict(), method="acgan")
    latent = embed_all(r0, data.float_images()[:2]).shape[1]  # as stage regene_train
    args = regene.decoder_args(latent, 1, 8, cfg["regene.decoder"])
    decoder = regene.Decoder(**args)
    with torch.no_grad():  # untrained, it maps every latent to about the same grey
        decoder.fc[0].weight.mul_(30)
    checkpoint(models / "regene.pt", decoder, args, recon={}, method="regene")


@pytest.fixture
def project(tmp_path) -> Path:
    """A folder holding the real dvc.yaml, tiny params, prepared data and every model."""
    params = shrink(real_params_dict())
    # untrained encoder: ReGene combines every image of a class (the toy setting of that key)
    params["regene"]["combine"]["pool"] = "labelled"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    data = make_image_set(n_per_class=10, classes=K)
    save_image_set(data, tmp_path / "data" / "prepared" / "train.pt")
    write_models(tmp_path, tmp_path / "params.yaml", data)
    return tmp_path


def sample(project: Path, method: str, *args, out: str = "out") -> int:
    files = ["--params", project / "params.yaml", "--dvc-file", project / "dvc.yaml"]
    argv = ["sample", method, *SET_OF.get(method, []), *args, "--out", project / out, *files]
    return main([str(a) for a in argv])


@pytest.mark.parametrize("method", list(SOURCES))
def test_each_method_draws_the_classes_asked_and_the_same_seed_the_same_samples(project, method):
    assert sample(project, method, "--classes", 2, "--classes", 0, "--n", 3, "--seed", 5) == 0
    drawn = load_samples(project / "out" / "samples.pt")
    assert drawn.images.shape == (6, *SHAPE) and drawn.images.dtype == torch.uint8
    assert drawn.labels.tolist() == [2, 2, 2, 0, 0, 0] and bool(drawn.hard.all())
    assert drawn.class_names == ("c0", "c1", "c2")
    assert (project / "out" / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((project / "out" / "sample.json").read_text())
    assert (record["classes"], record["n"], record["seed"]) == ([2, 0], 3, 5)
    assert record["model"].startswith(str(project / "data" / "models"))  # dvc.yaml's path
    assert sample(project, method, "--classes", 2, "--classes", 0, "--n", 3, "--seed", 5,
                  out="again") == 0  # fmt: skip
    assert md5(project / "again" / "samples.pt") == md5(project / "out" / "samples.pt")
    assert sample(project, method, "--classes", 2, "--classes", 0, "--n", 3, "--seed", 6,
                  out="other") == 0  # fmt: skip
    assert not torch.equal(load_samples(project / "other" / "samples.pt").images, drawn.images)


@pytest.mark.parametrize("method", ["stic", "score_stic"])
def test_two_class_mixes(project, method):
    assert sample(project, method, "--classes", 1, "--mix", "0,2", "--n", 4) == 0
    drawn = load_samples(project / "out" / "samples.pt")
    mix = drawn.targets[4:]
    assert drawn.targets[:4].tolist() == [[0.0, 1.0, 0.0]] * 4
    assert mix[:, 1].eq(0).all() and torch.allclose(mix.sum(1), torch.ones(4))
    assert mix[:, 0].diff().ge(0).all()  # sorted by the weight of the first class
    assert not drawn.hard[4:].any()


def test_no_classes_means_every_class(project):
    assert sample(project, "acgan", "--n", 2) == 0
    assert load_samples(project / "out" / "samples.pt").labels.tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("method", ["acgan", "regene"])
def test_a_class_draws_the_same_whatever_else_is_asked(project, method):
    assert sample(project, method, "--classes", 1, "--n", 2, out="alone") == 0
    assert sample(project, method, "--classes", 0, "--classes", 1, "--n", 2, out="both") == 0
    alone = load_samples(project / "alone" / "samples.pt").images
    assert torch.equal(load_samples(project / "both" / "samples.pt").images[2:], alone)


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["jem", "--model", "data/models/r0.pt"], 1,
         "data/models/r0.pt holds a classifier trained on real data only (r0), but `sample jem` "
         "draws from the JEM classifier"),
        (["stic", "--round", "r1", "--model", "data/models/acgan.pt"], 1,
         "holds an AC-GAN generator (acgan), but `sample stic` draws from a STIC round"),
        (["wang_torr", "--model", "data/models/regene.pt"], 1,
         "holds the ReGene decoder, but `sample wang_torr` draws from a classifier (its own"),
        (["regene", "--encoder", "data/models/jem.pt"], 1,
         "holds the JEM classifier, but `sample regene` draws from a classifier round"),
        (["stic", "--round", "r2", "--model", "data/models/r1.pt"], 1,
         "holds STIC round r1, but --round/--set is r2"),
        (["acgan", "--classes", "3"], 2,
         "--classes/--mix 3: out of range; the data has 3 classes, 0 to 2 (c0, c1, c2)"),
        (["jem", "--mix", "0,7"], 2, "--classes/--mix 7: out of range"),
        (["jem", "--mix", "1,1"], 2, "--mix 1,1: needs two different classes"),
        (["jem", "--model", "data/models/none.pt"], 1,
         "data/models/none.pt: checkpoint not found"),
        (["stic", "--round", "no_mh"], 1, "data/models/no_mh.pt: checkpoint not found"),
        (["jem", "--n", "0"], 2, "--n: must be at least 1, got 0"),
        (["wang_torr", "--n", "1"], 2,
         "--n 1: wang_torr's distribution loss needs at least 2 per class"),
        (["jem", "--device", "tpu"], 2, "--device tpu: one of auto, cpu, cuda"),
        (["acgan", "--mix", "0,1"], 2, "--mix: acgan draws hard classes only"),
        (["stic", "--round", "r9"], 2, "--round/--set r9: not one of stic's sets in dvc.yaml"),
        (["stic"], 2, "--round/--set: stic draws one of r1, r2, no_mh; name one"),
        (["jem", "--set", "r1"], 2, "--set r1: jem makes one set (jem); leave it out"),
        (["vae"], 2, "vae: not a method to sample; one of stic, jem, score_stic"),
    ],
)  # fmt: skip
def test_refusals_are_one_line_and_write_nothing(project, capsys, monkeypatch, args, code, message):
    monkeypatch.chdir(project)  # the model paths above are relative, as a user types them
    argv = ["sample", *args, "--out", "out", "--params", "params.yaml", "--dvc-file", "dvc.yaml"]
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (project / "out").exists()


def test_default_paths_are_the_sample_stages_in_dvc_yaml(real_params):
    dvc = read_yaml(ROOT / "dvc.yaml")
    stic = find_stage(dvc, "stic-sample", real_params)
    assert stic.name == "stic_sample" and list(stic.sets) == list(real_params["stic"]["rounds"])
    assert stage_path(stic, "--model", "r1", real_params) == Path("data/models/r1.pt")
    assert stage_path(stic, "--train", "r1", real_params) == Path("data/prepared/train.pt")
    for method, stage_option, key in [("wang_torr", "--classifier", "wang_torr"),
                                      ("regene", "--classifier", "regene"),
                                      ("sgld", "--classifier", "sgld"),
                                      ("attentive_stic", "--model", "attentive_stic")]:  # fmt: skip
        stage = find_stage(dvc, SOURCES[method].command, real_params)
        name = next(iter(stage.sets)) if stage.sets else method
        expected = Path(f"data/models/{real_params[key]['round']}.pt")
        assert stage_path(stage, stage_option, name, real_params) == expected
    regene_stage = find_stage(dvc, "regene-sample", real_params)
    assert stage_path(regene_stage, "--decoder", "regene", real_params) == Path(
        "data/models/regene.pt"
    )
    acgan_stage = find_stage(dvc, "acgan-sample", real_params)
    assert list(acgan_stage.sets) == list(real_params["acgan"]["variants"])


def test_made_by_reads_what_each_training_stage_stores():
    assert made_by({"round": "r1", "chains": {"images": torch.zeros(1)}}) == "stic"
    assert made_by({"round": "r0"}) == "classifier"
    assert made_by({"method": "acgan_paper_lr", "discriminator_state": {}}) == "acgan"
    assert made_by({"method": "jem", "chains": {}}) == "jem"
    assert made_by({"format": 1}) == "unknown"


def test_targets_hard_rows_then_sorted_mixes():
    t = sample_targets([2, 0], [(1, 2)], 5, 3, 1.0, torch.Generator().manual_seed(0))
    assert t.shape == (15, 3)
    assert t[:10].argmax(1).tolist() == [2] * 5 + [0] * 5 and t[:10].max(1).values.eq(1).all()
    assert t[10:, 0].eq(0).all() and t[10:, 1].diff().ge(0).all()
    assert torch.allclose(t.sum(1), torch.ones(15))


def test_grid_shows_at_most_grid_columns_of_each_group_spread_over_it():
    n = GRID_COLUMNS + 4
    images = torch.arange(2 * n, dtype=torch.uint8).view(-1, 1, 1, 1)  # (2n, 1, 1, 1): its index
    shown = grid_images(images, n).flatten().tolist()
    assert len(shown) == 2 * GRID_COLUMNS
    assert shown[0] == 0 and shown[GRID_COLUMNS - 1] == n - 1 and shown[GRID_COLUMNS] == n
    assert shown == sorted(set(shown))  # no sample twice, in order
    assert grid_images(images[:6], 3).flatten().tolist() == [0, 1, 2, 3, 4, 5]  # n <= columns
