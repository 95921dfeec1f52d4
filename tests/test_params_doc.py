"""The parameter reference (docs/params.md) is generated from the typed configs, params.yaml and
dvc.yaml, and the committed page is what `bin/cgen params doc` writes."""

from __future__ import annotations

import copy

import yaml
from support import ROOT, real_params_dict

from pipeline.params_doc import entries, field_checks, field_comments
from pipeline.train import LossConfig, TrainConfig
from stages.cli import main
from stages.params_cmd import DOC, reference


def test_the_committed_reference_is_current():
    assert (ROOT / DOC).read_text() == reference(ROOT / "params.yaml", ROOT / "dvc.yaml"), (
        "docs/params.md is stale: run bin/cgen params doc"
    )


def test_an_entry_says_type_checks_value_readers_and_meaning():
    text = (ROOT / DOC).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `data.fit` |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[1] == "'resize' \\| 'pad'" and cells[3] == "`resize`" and cells[4] == "prepare"
    assert "fit: pad needs images of one size" in cells[2] and "zero-padded" in cells[5]


def test_comments_and_checks_come_from_the_dataclass():
    comments, checks = field_comments(TrainConfig), field_checks(TrainConfig)
    assert comments["momentum"] == "sgd only"
    assert checks["momentum"] == ["momentum: must be in [0, 1)"]
    assert "weight_decay: must be >= 0" in checks["weight_decay"]
    loss = field_comments(LossConfig)  # a comment continued on the line below its field
    assert loss["target"].endswith('"gradient ascent with respect to the class logits")')
    assert "class logit" not in loss["energy_l2"]


def test_a_changed_value_makes_the_page_stale(tmp_path, capsys):
    params = copy.deepcopy(real_params_dict())
    params["data"]["image_size"] = 32
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert main(["params", "doc", "--check", "--params", str(path)]) == 1
    assert "docs/params.md is stale: run bin/cgen params doc" in capsys.readouterr().err
    assert main(["params", "doc", "--check"]) == 0


def test_mapping_entries_are_documented_once_for_every_name():
    from pipeline.methods.stic import StiCConfig

    keys = [e.key for e in entries({"stic": StiCConfig}, {"stic": {}}, {})]
    assert "stic.rounds.<name>.prev" in keys and "stic.sampler.temperature" in keys
