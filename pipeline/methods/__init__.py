"""The generation methods, each declared once (`METHODS`): what the CLI, the parameter gate, the
report, the null samplers, the claims and the test shrinker know of a method.

A method is a module here (its config dataclass beside its models, samplers and training loops,
all taking their parameters as arguments and never reading params.yaml or paths), its stage
modules in `stages/`, one `params.yaml` section and its `dvc.yaml` stages. Adding one is those
four and an entry below. Its config dataclass answers what the gate asks of every method:
`sample_sets()` (the sets it makes), `hard_counts()` (hard samples per class, by the key that sets
them), `models()` (its networks, whose image size the gate checks) and, for a method that draws on
a STIC round, `round`. Its module may define `claims(chain, r)` (the papers' claims about it,
pipeline.claims) and, for a method with an evaluation sampler of its own, `null_set(...)` (that
sampler on a flat target, pipeline.nulls).

Nothing here imports torch: `cgen --help` lists the commands without loading a method.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    module: str  # its library module (config, claims, null sampler)
    config: str  # the section's dataclass in that module
    label: str  # the report's label of its main set
    commands: Mapping[str, Command]
    # the method whose evaluation sampler draws its sets: where its null sampler comes from
    # (None: no sampler of its own, e.g. a GAN; its sets are read against the strictest null)
    sampler: str | None
    labels: Mapping[str, str] = field(default_factory=dict)  # its other sets' report labels
    tiny: Mapping[str, Any] = field(default_factory=dict)  # dotted overrides: a toy (the tests)

    def load(self) -> Any:
        return importlib.import_module(self.module)

    def config_class(self) -> type:
        return getattr(self.load(), self.config)

    def hook(self, name: str) -> Callable | None:
        """A function of its module (`claims`, `null_set`), None when it has none."""
        return getattr(self.load(), name, None)


METHODS: tuple[Method, ...] = (
    Method(
        "stic", "pipeline.methods.stic", "StiCConfig", "STIC",
        {
            "stic-round": Command("stages.stic_round",
                                  "train STIC round rK against its own GRMALA chains", True),
            "stic-sample": Command("stages.stic_sample",
                                   "draw a STIC round's evaluation set (fresh chains)", True),
        },
        sampler="stic",
        tiny={"train.epochs": 1, "chains.size": 40, "chains.batch": 16, "chains.steps": 2,
              "per_round_steps": 2, "eval.hard_per_class": 3, "eval.soft": 6, "eval.steps": 3,
              "eval.burn_in": 1,
              "rounds": {"r1": {"prev": "r0"}, "r2": {"prev": "r1"},
                         "no_mh": {"prev": "r0", "sampler": {"mh": False, "adapt": False}}}},
    ),
    Method(
        "jem", "pipeline.methods.jem", "JEMConfig", "JEM",
        {
            "jem-train": Command("stages.jem_train",
                                 "train the JEM classifier against its SGLD replay buffer", True),
            "jem-sample": Command("stages.jem_sample",
                                  "draw JEM's evaluation set (fresh chains)", True),
        },
        sampler="jem",
        tiny={"train.epochs": 1, "model.width": 4, "chains.size": 40, "chains.batch": 16,
              "chains.steps": 2, "eval.hard_per_class": 3, "eval.steps": 3},
    ),
    Method(
        "score_stic", "pipeline.methods.score", "ScoreStiCConfig", "Score-STIC",
        {
            "score-train": Command("stages.score_train",
                                   "train Score-STIC's noise-conditional classifier", True),
            "score-sample": Command("stages.score_sample",
                                    "draw Score-STIC's set by annealed Langevin", True),
        },
        sampler="score_stic",
        tiny={"train.epochs": 1, "model.width": 4, "noise.levels": 2,
              "sampling.steps_per_level": 2, "sampling.hard_per_class": 3, "sampling.soft": 6},
    ),
    Method(
        "attentive_stic", "pipeline.methods.attentive", "AttentiveMethodConfig", "Attentive-STIC",
        {"attentive": Command("stages.attentive", "draw an Attentive-STIC set in glimpses")},
        sampler="stic",
        labels={"attentive_random": "Attentive-STIC, random windows (exact)",
                "attentive_full": "full-image GRMALA, same pixel budget"},
        tiny={"round": "r2", "draw.glimpses": 2, "draw.steps_per_glimpse": 2, "draw.window": 4,
              "draw.hard_per_class": 3},
    ),
    Method(
        "sgld", "pipeline.methods.sgld", "SGLDControlConfig", "classifier + SGLD (control)",
        {"sgld": Command("stages.sgld",
                         "the control: JEM's sampler on a classifier without generative training",
                         True)},
        sampler="jem",  # it draws exactly as JEM's evaluation does
    ),
    Method(
        "regene", "pipeline.methods.regene", "ReGeneConfig", "ReGene",
        {
            "regene-train": Command("stages.regene_train",
                                    "train ReGene's decoder on frozen classifier latents", True),
            "regene-sample": Command("stages.regene_sample",
                                     "decode convex combinations of same-class latents"),
        },
        sampler=None,
        tiny={"decoder.epochs": 1, "decoder.width": 4, "decoder.batch_size": 20,
              "combine.per_class": 3},
    ),
    Method(
        "acgan", "pipeline.methods.acgan", "ACGANConfig", "AC-GAN",
        {
            "acgan-train": Command("stages.acgan_train", "train an AC-GAN variant", True),
            "acgan-sample": Command("stages.acgan_sample", "sample an AC-GAN variant"),
        },
        sampler=None,
        labels={"acgan_paper_lr": "AC-GAN, paper lr 2e-4"},
        tiny={"model.width": 4, "model.z_dim": 8, "train.epochs": 1, "train.batch_size": 20,
              "sample.per_class": 3, "variants": {"acgan": {}}},
    ),
    Method(
        "wang_torr", "pipeline.methods.wang_torr", "WangTorrMethodConfig", "Wang & Torr",
        {"wang-torr": Command("stages.wang_torr", "Wang & Torr input optimisation, one variant")},
        sampler=None,
        labels={"wang_torr_plain": "Wang & Torr, all off (plain)"},
        tiny={"sampler.steps_per_resolution": 2, "sampler.num_views": 2,
              "sampler.samples_per_class": 3,
              "variants": {"wang_torr": {},
                           "wang_torr_plain": {"views": False, "distance_weight": 0.0,
                                               "distribution_weight": 0.0,
                                               "progressive": False}}},
    ),
)  # fmt: skip
BY_NAME: dict[str, Method] = {m.name: m for m in METHODS}
# methods with an evaluation sampler of their own: the sources a null sampler can copy
SAMPLER_SOURCES: tuple[str, ...] = tuple(m.name for m in METHODS if m.sampler == m.name)


def label(name: str) -> str | None:
    """The report label of a sample set some method makes under this name, None if none does."""
    for m in METHODS:
        if name == m.name:
            return m.label
        if name in m.labels:
            return m.labels[name]
    return None


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


def claims(chain: Sequence[str], rows: Mapping[str, str] | None = None) -> list:
    """Every method's claims (its module's `claims(chain, role)`, pipeline.claims), in the
    registry's order. `chain`: the main STIC chain r1..rN; `rows`: role -> sample-set name, where
    a run's set has another name than the role's own (absent roles keep their names)."""
    rows = rows or {}
    out = []
    for m in METHODS:
        make = m.hook("claims")
        if make is not None:
            out += make(chain, lambda key, default: rows.get(key, default))
    return out
