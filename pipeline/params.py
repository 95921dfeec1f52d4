"""The whole parameter file, composed of the core sections and every registered method's section
(pipeline.methods.METHODS), each its own frozen dataclass.

Stages never import this: each reads only its sections (`pipeline.config.load_sections`). Only
the parameter gate (`cgen check`, the DVC stage that runs before any training) and the `cgen
params` helpers compose the whole file, so that an unknown, missing or wrong-typed key anywhere
(a typo) and every cross-field or data-dependent impossibility stops the pipeline before any
work, with the dotted key named. What the gate checks of a method it asks the method's config
(`sample_sets`, `hard_counts`, `models`, `check_data`, `round`): a new method needs no edit here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.config import from_dict, read_yaml
from pipeline.data import DataConfig, DataFacts
from pipeline.errors import ConfigError
from pipeline.methods import METHODS
from pipeline.methods.registry import CONFIGS
from pipeline.methods.stic import BASE_ROUND
from pipeline.methods.wang_torr import OWN_CLASSIFIER
from pipeline.metrics import EvalSection
from pipeline.references import ReferencesConfig
from pipeline.runtime import RuntimeConfig
from pipeline.samples import check_name
from pipeline.tracking import TrackingConfig
from pipeline.train import ClassifierConfig, JudgeConfig


@dataclass(frozen=True)
class Core:
    """The sections that are no generation method's."""

    runtime: RuntimeConfig
    data: DataConfig
    tracking: TrackingConfig
    judge: JudgeConfig  # the evaluation classifier (pipeline.metrics)
    judge_b: JudgeConfig  # a second judge of another seed and architecture (reporting)
    baseline: ClassifierConfig  # round r0: real data + mixup
    references: ReferencesConfig  # null samplers and real pixel-mixup (pipeline.references)
    eval: EvalSection  # evaluation and report (pipeline.metrics)


@dataclass(frozen=True)
class Params(Core):
    methods: dict[str, Any]  # method name -> its section's config (pipeline.methods)

    def __getattr__(self, name: str) -> Any:  # params.stic, params.jem, ...
        methods = self.__dict__.get("methods") or {}
        if name in methods:
            return methods[name]
        raise AttributeError(name)

    def sample_sets(self) -> dict[str, str]:
        """Every sample set the stages make: name -> the method (or family) that makes it."""
        sets: dict[str, str] = {}
        makers = [(m.name, self.methods[m.name].sample_sets()) for m in METHODS]
        for family, names in [*makers, ("references", self.references.names())]:
            for name in names:
                if name in sets:
                    raise ConfigError(
                        f"{family}: sample-set name '{name}' is also made by {sets[name]}; "
                        "every sample set needs its own name"
                    )
                sets[name] = family
        return sets

    def validate(self) -> None:
        synthesizers = {  # the classifiers that synthesize, which no judge may be
            "baseline.model": self.baseline.model,
            "wang_torr.classifier.model": self.methods["wang_torr"].classifier.model,
        }
        for key, judge in (("judge", self.judge), ("judge_b", self.judge_b)):
            for other, model in synthesizers.items():
                if judge.model == model:
                    raise ConfigError(
                        f"{key}.model: must differ from {other} (another arch or width), so "
                        "the judge is not a classifier that synthesizes"
                    )
        if self.judge_b.seed == self.judge.seed or self.judge_b.model == self.judge.model:
            raise ConfigError(
                "judge_b: needs another seed and another model than judge (a second opinion)"
            )
        sets = self.sample_sets()
        for name in sets:
            check_name(name, f"sample set '{name}'")
        rounds = self.methods["stic"].rounds
        for name in self.eval.methods:
            if name in rounds:
                raise ConfigError(
                    f"eval.methods: '{name}' is a STIC round; rounds are always evaluated"
                )
            if name not in sets:
                raise ConfigError(
                    f"eval.methods: '{name}' is made by no stage; sample sets: {', '.join(sets)}"
                )
        for m in METHODS:  # a method that draws on a classifier names a round of STIC's
            value = getattr(self.methods[m.name], "round", None)
            if m.name == "wang_torr" and value == OWN_CLASSIFIER:
                continue  # Wang & Torr's own classifier
            if value is not None and value not in {BASE_ROUND, *rounds}:
                raise ConfigError(f"{m.name}.round: '{value}' is neither r0 nor a round in "
                                  "stic.rounds")  # fmt: skip
        if self.methods["attentive_stic"].round == BASE_ROUND:
            raise ConfigError("attentive_stic.round: needs a STIC round (r0 has no chains)")
        for null, source in self.references.nulls.items():
            if source not in {m.sampler for m in METHODS if m.sampler == m.name}:
                raise ConfigError(
                    f"references.nulls.{null}: '{source}' is no method with a sampler of its own"
                )

    def check_data(self, facts: DataFacts) -> None:
        """What the prepared data makes impossible, known before any training."""
        size, k = facts.image_size, facts.classes
        models = {"judge.model": self.judge.model, "judge_b.model": self.judge_b.model,
                  "baseline.model": self.baseline.model}  # fmt: skip
        for m in METHODS:
            models |= {f"{m.name}.{key}": v for key, v in self.methods[m.name].models().items()}
        for key, model in models.items():
            model.check_image_size(size, key)
        n = self.eval.metrics.count(facts.test_images)
        for key, per_class in self.hard_counts().items():
            if per_class * k < n:
                raise ConfigError(
                    f"{key}: makes {per_class} hard samples per class, {per_class * k} in all, "
                    f"fewer than the {n} every set is evaluated at (min(eval.num_samples, "
                    f"{facts.test_images} test images)); raise it or lower eval.num_samples"
                )
        for m in METHODS:
            check = getattr(self.methods[m.name], "check_data", None)
            if check is not None:
                try:
                    check(facts)
                except ConfigError as exc:
                    raise ConfigError(f"{m.name}.{exc}") from None

    def hard_counts(self) -> dict[str, int]:
        """Hard samples per class of every evaluated set, by the key that sets it."""
        return {
            f"{m.name}.{key}": count
            for m in METHODS
            for key, count in self.methods[m.name].hard_counts().items()
        }


def parse_params(data: dict) -> Params:
    """The whole file, strictly: the core sections, then each registered method's section."""
    core_names = [f.name for f in fields(Core)]
    method_names = [m.name for m in METHODS]
    if not isinstance(data, dict):
        raise ConfigError("top level: expected a mapping of sections")
    unknown = sorted(set(data) - set(core_names) - set(method_names))
    if unknown:
        allowed = ", ".join(sorted(core_names + method_names))
        raise ConfigError(f"{unknown[0]}: unknown key; allowed here: {allowed}")
    for name in [*core_names, *method_names]:
        if name not in data:
            raise ConfigError(f"{name}: missing key (a section)")
    core = from_dict(Core, {k: data[k] for k in core_names})
    methods = {m.name: from_dict(CONFIGS[m.name], data[m.name], m.name) for m in METHODS}
    params = Params(**{f.name: getattr(core, f.name) for f in fields(Core)}, methods=methods)
    params.validate()
    return params


def load_params(path: Path) -> Params:
    try:
        return parse_params(read_yaml(path))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
