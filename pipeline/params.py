"""The whole parameter file as one frozen dataclass, composed of every component's own section.

Stages never import this: each reads only its sections (`pipeline.config.load_sections`). Only
the parameter gate (`cgen check`, the DVC stage that runs before any training) and the `cgen
params` helpers compose the whole file, so that an unknown, missing or wrong-typed key anywhere
(a typo) and every cross-field or data-dependent impossibility stops the pipeline before any
work, with the dotted key named.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import from_dict, read_yaml
from pipeline.data import DataConfig, DataFacts
from pipeline.errors import ConfigError
from pipeline.methods.acgan import ACGANConfig
from pipeline.methods.attentive import AttentiveMethodConfig
from pipeline.methods.jem import JEMConfig
from pipeline.methods.regene import ReGeneConfig
from pipeline.methods.score import ScoreStiCConfig
from pipeline.methods.sgld import SGLDControlConfig
from pipeline.methods.stic import BASE_ROUND, StiCConfig, chain_rounds
from pipeline.methods.wang_torr import WangTorrMethodConfig
from pipeline.metrics import EvalSection
from pipeline.references import ReferencesConfig
from pipeline.runtime import RuntimeConfig
from pipeline.samples import check_name
from pipeline.tracking import TrackingConfig
from pipeline.train import ClassifierConfig, JudgeConfig


@dataclass(frozen=True)
class Params:
    runtime: RuntimeConfig
    data: DataConfig
    tracking: TrackingConfig
    judge: JudgeConfig  # the evaluation classifier (pipeline.metrics)
    judge_b: JudgeConfig  # a second judge of another seed and architecture (reporting)
    baseline: ClassifierConfig  # round r0: real data + mixup
    stic: StiCConfig  # STIC rounds and ablations (pipeline.methods.stic)
    jem: JEMConfig  # JEM, the peer (pipeline.methods.jem)
    score_stic: ScoreStiCConfig  # Score-STIC (pipeline.methods.score)
    attentive_stic: AttentiveMethodConfig  # Attentive-STIC (pipeline.methods.attentive)
    sgld: SGLDControlConfig  # classifier + SGLD control (pipeline.methods.sgld)
    acgan: ACGANConfig  # AC-GAN baseline (pipeline.methods.acgan)
    regene: ReGeneConfig  # ReGene (pipeline.methods.regene)
    wang_torr: WangTorrMethodConfig  # Wang & Torr (pipeline.methods.wang_torr)
    references: ReferencesConfig  # null samplers and real pixel-mixup (pipeline.references)
    eval: EvalSection  # evaluation and report (pipeline.metrics)

    def sample_sets(self) -> dict[str, str]:
        """Every sample set the stages make: name -> the stage family that makes it."""
        sets: dict[str, str] = {name: "stic" for name in self.stic.rounds}
        sets |= {"jem": "jem", "score_stic": "score_stic", "sgld": "sgld", "regene": "regene"}
        for family, names in (
            ("attentive_stic", self.attentive_stic.variants),
            ("acgan", self.acgan.variants),
            ("wang_torr", self.wang_torr.variants),
            ("references", self.references.names()),
        ):
            for name in names:
                if name in sets:
                    raise ConfigError(
                        f"{family}: sample-set name '{name}' is also made by {sets[name]}; "
                        "every sample set needs its own name"
                    )
                sets[name] = family
        return sets

    def validate(self) -> None:
        for key, judge in (("judge", self.judge), ("judge_b", self.judge_b)):
            if judge.model == self.baseline.model:
                raise ConfigError(
                    f"{key}.model: must differ from baseline.model (another arch or width), so "
                    "the judge is not the classifier that synthesizes"
                )
        if self.judge_b.seed == self.judge.seed or self.judge_b.model == self.judge.model:
            raise ConfigError(
                "judge_b: needs another seed and another model than judge (a second opinion)"
            )
        sets = self.sample_sets()
        for name in sets:
            check_name(name, f"sample set '{name}'")
        for name in self.eval.methods:
            if name in self.stic.rounds:
                raise ConfigError(
                    f"eval.methods: '{name}' is a STIC round; rounds are always evaluated"
                )
            if name not in sets:
                raise ConfigError(
                    f"eval.methods: '{name}' is made by no stage; sample sets: {', '.join(sets)}"
                )
        rounds = {BASE_ROUND, *self.stic.rounds}
        for key, value in (
            ("attentive_stic.round", self.attentive_stic.round),
            ("regene.round", self.regene.round),
            ("wang_torr.round", self.wang_torr.round),
            ("sgld.round", self.sgld.round),
        ):
            if value not in rounds:
                raise ConfigError(f"{key}: '{value}' is neither r0 nor a round in stic.rounds")
        if self.attentive_stic.round == BASE_ROUND:
            raise ConfigError("attentive_stic.round: needs a STIC round (r0 has no chains)")
        if not chain_rounds(self.stic.rounds):
            raise ConfigError("stic.rounds: the main chain needs r1 (r1: {prev: r0})")

    def check_data(self, facts: DataFacts) -> None:
        """What the prepared data makes impossible, known before any training."""
        size, k = facts.image_size, facts.classes
        for key, model in (
            ("judge.model", self.judge.model),
            ("judge_b.model", self.judge_b.model),
            ("baseline.model", self.baseline.model),
            ("jem.model", self.jem.model),
            ("score_stic.model", self.score_stic.model),
        ):
            model.check_image_size(size, key)
        for name in self.acgan.variants:
            self.acgan.resolved(name).model.check_image_size(size, f"acgan.variants.{name}.model")
        for name in self.wang_torr.variants:
            if self.wang_torr.variant(name).start_resolution > size:
                raise ConfigError(
                    f"wang_torr.variants.{name}.start_resolution: above data.image_size ({size})"
                )
        n = self.eval.metrics.count(facts.test_images)
        for name, per_class in self.hard_counts().items():
            if per_class * k < n:
                raise ConfigError(
                    f"{name}: makes {per_class} hard samples per class, {per_class * k} in all, "
                    f"fewer than the {n} every set is evaluated at (min(eval.num_samples, "
                    f"{facts.test_images} test images)); raise it or lower eval.num_samples"
                )
        soft_classes = [
            ("stic.chains.soft_classes", self.stic.chains.soft_classes),
            ("references.real_mixup.classes", 2),
        ]
        for key, m in soft_classes:
            if m > k:
                raise ConfigError(f"{key}: {m} classes to mix but the data has {k}")
        smallest = min(facts.train_per_class)
        if self.regene.combine.k > smallest:
            raise ConfigError(
                f"regene.combine.k: {self.regene.combine.k} latents per combination but the "
                f"smallest class has {smallest} training images"
            )
        if self.stic.chains.size < k or self.jem.chains.size < k:
            raise ConfigError(f"stic.chains.size: and jem.chains.size need at least {k} chains")

    def hard_counts(self) -> dict[str, int]:
        """Hard samples per class of every evaluated set, by the key that sets it."""
        out = {
            "stic.eval.hard_per_class": self.stic.eval.hard_per_class,
            "jem.eval.hard_per_class": self.jem.eval.hard_per_class,
            "score_stic.sampling.hard_per_class": self.score_stic.sampling.hard_per_class,
            "sgld.eval.hard_per_class": self.sgld.eval.hard_per_class,
            "regene.combine.per_class": self.regene.combine.per_class,
        }
        for name in self.attentive_stic.variants:
            out[f"attentive_stic.variants.{name}.hard_per_class"] = self.attentive_stic.variant(
                name
            ).hard_per_class
        for name in self.acgan.variants:
            out[f"acgan.variants.{name}.sample.per_class"] = self.acgan.resolved(
                name
            ).sample.per_class
        for name in self.wang_torr.variants:
            out[f"wang_torr.variants.{name}.samples_per_class"] = self.wang_torr.variant(
                name
            ).samples_per_class
        return out


def parse_params(data: dict) -> Params:
    return from_dict(Params, data)


def load_params(path: Path) -> Params:
    try:
        return parse_params(read_yaml(path))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
