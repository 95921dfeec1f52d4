"""The generation methods (`METHODS`): the names every stage knows of a method (its params.yaml
section, its `cgen` commands, whose evaluation sampler draws its sets).

A method is a module here (its config dataclass beside its models, samplers and training loops,
all taking their parameters as arguments and never reading params.yaml or paths), its stage
modules in `stages/`, one `params.yaml` section and its `dvc.yaml` stages. Adding one is those
four, an entry below, its section's dataclass in `pipeline.methods.registry`, its labels and
claim rows in `pipeline.claim_rows` and, for a method with an evaluation sampler of its own, its
`null_set(...)` (that sampler on a flat target) in `pipeline.nulls`. Its config dataclass answers
what the gate asks of every method: `sample_sets()` (the sets it makes), `hard_counts()` (hard
samples per class, by the key that sets them), `models()` (its networks, whose image size the
gate checks) and, for a method that draws on a STIC round, `round`.

This module is imported by every stage (the dispatcher reads its commands): it holds names only,
no labels, claims or test sizes, and imports nothing heavy, so `cgen --help` stays light and no
stage depends on text here that it does not run. Nothing loads a method module by name: the stage
graph follows imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Command:
    """A `cgen` command (a dvc.yaml stage command) and the stage module that runs it."""

    module: str
    summary: str
    parallel: bool = False  # runs data-parallel under torchrun when runtime asks for processes


@dataclass(frozen=True)
class Method:
    name: str  # its params.yaml section, and the name of its main sample set
    commands: Mapping[str, Command]
    # the method whose evaluation sampler draws its sets: where its null sampler comes from
    # (None: no sampler of its own, e.g. a GAN; its sets are read against the strictest null)
    sampler: str | None


METHODS: tuple[Method, ...] = (
    Method(
        "stic",
        {
            "stic-round": Command("stages.stic_round",
                                  "train STIC round rK against its own GRMALA chains", True),
            "stic-sample": Command("stages.stic_sample",
                                   "draw a STIC round's evaluation set (fresh chains)", True),
        },
        sampler="stic",
    ),
    Method(
        "jem",
        {
            "jem-train": Command("stages.jem_train",
                                 "train the JEM classifier against its SGLD replay buffer", True),
            "jem-sample": Command("stages.jem_sample",
                                  "draw JEM's evaluation set (fresh chains)", True),
        },
        sampler="jem",
    ),
    Method(
        "score_stic",
        {
            "score-train": Command("stages.score_train",
                                   "train Score-STIC's noise-conditional classifier", True),
            "score-sample": Command("stages.score_sample",
                                    "draw Score-STIC's set by annealed Langevin", True),
        },
        sampler="score_stic",
    ),
    Method(
        "attentive_stic",
        {"attentive": Command("stages.attentive", "draw an Attentive-STIC set in glimpses")},
        sampler="stic",
    ),
    Method(
        "sgld",
        {"sgld": Command("stages.sgld",
                         "the control: JEM's sampler on a classifier without generative training",
                         True)},
        sampler="jem",  # it draws exactly as JEM's evaluation does
    ),
    Method(
        "regene",
        {
            "regene-train": Command("stages.regene_train",
                                    "train ReGene's decoder on frozen classifier latents", True),
            "regene-sample": Command("stages.regene_sample",
                                     "decode convex combinations of same-class latents"),
        },
        sampler=None,
    ),
    Method(
        "acgan",
        {
            "acgan-train": Command("stages.acgan_train", "train an AC-GAN variant", True),
            "acgan-sample": Command("stages.acgan_sample", "sample an AC-GAN variant"),
        },
        sampler=None,
    ),
    Method(
        "wang_torr",
        {"wang-torr": Command("stages.wang_torr", "Wang & Torr input optimisation, one variant")},
        sampler=None,
    ),
)  # fmt: skip
BY_NAME: dict[str, Method] = {m.name: m for m in METHODS}
# methods with an evaluation sampler of their own: the sources a null sampler can copy
SAMPLER_SOURCES: tuple[str, ...] = tuple(m.name for m in METHODS if m.sampler == m.name)


def makers(configs: Mapping[str, Any]) -> dict[str, str]:
    """Sample-set name -> the method that makes it, from each method's parsed section
    (`configs`: method name -> its config)."""
    return {s: m.name for m in METHODS if m.name in configs for s in configs[m.name].sample_sets()}


def null_of(name: str, made_by: Mapping[str, str], nulls: Mapping[str, str]) -> str | None:
    """The null sampler set of sample set `name`: the null (references.nulls: set -> source)
    whose source draws as `name`'s method does; None for a method with no sampler of its own."""
    method = made_by.get(name, name)
    sampler = BY_NAME[method].sampler if method in BY_NAME else None
    return next((null for null, src in nulls.items() if src == sampler), None) if sampler else None
