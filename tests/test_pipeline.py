"""The whole pipeline through DVC, as a user runs it: a tiny colour folder dataset made here, the
default stages at toy scale, `.venv/bin/dvc repro` from a shell whose PATH lacks .venv/bin, the
parameter gate refusing a typo, and MLflow holding every set's judge-FID afterwards."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from PIL import Image
from support import DVC, clean_env, project_copy, real_params_dict, shrink

ROOT = Path(__file__).resolve().parents[1]


def rgb_folder(root: Path, classes: int = 4, per_class: int = 24, size: int = 12) -> None:
    """Classes of coloured shapes: class c is a bar at a class-specific place and hue, noisy."""
    import random

    rng = random.Random(0)
    colours = [(230, 40, 40), (40, 200, 60), (50, 80, 230), (220, 200, 40)]
    for c in range(classes):
        folder = root / f"class_{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            img = Image.new("RGB", (size, size), tuple(rng.randrange(0, 40) for _ in range(3)))
            for y in range(size):
                for x in range(size):
                    on = abs(x - (2 + 2 * c)) <= 1 if c % 2 == 0 else abs(y - (1 + 2 * c)) <= 1
                    if on:
                        noisy = tuple(
                            max(0, min(255, v + rng.randrange(-30, 30))) for v in colours[c]
                        )
                        img.putpixel((x, y), noisy)
            img.save(folder / f"{i:02d}.png")


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(DVC), *args], cwd=repo, env=clean_env(), capture_output=True,
                          text=True, timeout=3000)  # fmt: skip


@pytest.mark.slow
def test_tiny_rgb_folder_dataset_runs_the_whole_pipeline_to_the_report(tmp_path):
    data = tmp_path / "raw"
    rgb_folder(data)
    params = shrink(real_params_dict(), tracking_uri=None)
    params["tracking"].update(enabled=True, uri=None)  # the default store at the repo root
    params["data"].update(name="folder", root=str(data), num_classes=4, channels=3)
    # ReGene combines correctly classified images of every class: on ~76 training images the
    # baseline needs more than shrink()'s few batches of 64 to leave chance (CI saw 0.25)
    params["baseline"]["train"].update(batch_size=8, steps=54)
    params["eval"]["metrics"]["num_samples"] = 200  # capped to the 20 held-out images
    per_class = 5  # every set needs n = 20 hard samples of 4 classes
    params["stic"]["eval"]["hard_per_class"] = per_class
    params["jem"]["eval"]["hard_per_class"] = per_class
    params["score_stic"]["sampling"]["hard_per_class"] = per_class
    params["attentive_stic"]["draw"]["hard_per_class"] = per_class
    params["acgan"]["sample"]["per_class"] = per_class
    params["regene"]["combine"]["per_class"] = per_class
    params["wang_torr"]["sampler"]["samples_per_class"] = per_class
    repo = project_copy(tmp_path, params)

    metrics = dict(params["eval"]["metrics"], num_sample=7)  # a typo of num_samples
    typo = dict(params, eval=dict(params["eval"], metrics=metrics))
    (repo / "params.yaml").write_text(yaml.safe_dump(typo, sort_keys=False))
    res = dvc(repo, "repro")
    assert res.returncode != 0
    assert "eval.metrics.num_sample: unknown key" in res.stdout + res.stderr
    assert not (repo / "data" / "models").exists()  # refused before any training

    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    res = dvc(repo, "repro")
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    report = (repo / "reports" / "report.md").read_text()
    assert "## Verdicts" in report and "Attentive-STIC" in report and "n = 20" in report
    summary = json.loads((repo / "reports" / "summary.json").read_text())
    assert {"stic", "jem", "acgan", "real"} <= set(summary)
    assert "data:image/png;base64," in (repo / "reports" / "report.html").read_text()
    assert (repo / "reports" / "rounds.tsv").is_file()  # the rounds as data, for dvc plots
    again = dvc(repo, "status")
    assert "up to date" in again.stdout or again.stdout.strip() == ""

    flush = subprocess.run([str(repo / "bin" / "cgen"), "track", "flush"], cwd=repo,
                           env=clean_env(), capture_output=True, text=True)  # fmt: skip
    assert flush.returncode == 0, flush.stderr
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[params["tracking"]["experiment"]],
                              filter_string="tags.evaluated != ''")  # fmt: skip
    evaluated = dict(zip(runs["tags.evaluated"], runs["metrics.judge_fid"], strict=True))
    for name in [*params["stic"]["rounds"], *params["eval"]["methods"], "real"]:
        if name != "real_mixup":  # soft samples only: no judge-FID
            assert evaluated.get(name) is not None, f"no judge-FID in MLflow for {name}"
    assert runs["tags.pipeline.id"].nunique() == 1
