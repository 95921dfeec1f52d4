"""The whole parameter file as one frozen dataclass, composed from each component's own section.

`load_params` is the only entry point: it refuses unknown, missing and wrong-typed keys (naming the
dotted key) and then runs the cross-field `Params.validate`, before a stage does any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import ConfigError, from_dict, read_yaml
from pipeline.data import DataConfig
from pipeline.methods.acgan import ACGANConfig
from pipeline.methods.common import check_sample_set_name
from pipeline.methods.regene import ReGeneConfig
from pipeline.methods.sgld import SGLDConfig
from pipeline.methods.wang_torr import WangTorrConfig, WangTorrOverride, apply_override
from pipeline.metrics import EvalConfig
from pipeline.models import ModelConfig
from pipeline.runtime import RuntimeConfig
from pipeline.stic import RoundConfig, StiCConfig, validate_rounds
from pipeline.tracking import TrackingConfig
from pipeline.train import TrainConfig


@dataclass(frozen=True)
class ClassifierConfig:
    """A classifier to train: architecture + training recipe."""

    model: ModelConfig
    train: TrainConfig


@dataclass(frozen=True)
class JudgeConfig(ClassifierConfig):
    seed: int  # the judge's own seed, apart from runtime.seed: it must not share the synthesizer's


@dataclass(frozen=True)
class Params:
    runtime: RuntimeConfig
    data: DataConfig
    tracking: TrackingConfig
    judge: JudgeConfig
    baseline: ClassifierConfig
    stic: StiCConfig
    rounds: dict[str, RoundConfig]  # the STIC chain: {r1: {prev: r0}, r2: {prev: r1}, ...}
    eval: EvalConfig  # evaluation and report (pipeline.metrics)
    acgan: ACGANConfig  # AC-GAN baseline (pipeline.methods.acgan)
    regene: ReGeneConfig  # ReGene decoder + convex combinations (pipeline.methods.regene)
    wang_torr: WangTorrConfig  # Wang & Torr input optimisation: the settings every variant shares
    # sample set name -> overrides of `wang_torr` (an empty mapping = the full method)
    wang_torr_variants: dict[str, WangTorrOverride]  # type: ignore[valid-type]
    sgld: SGLDConfig  # classifier + JEM-style SGLD control (pipeline.methods.sgld)

    def validate(self) -> None:
        if self.judge.model.arch == self.baseline.model.arch and (
            self.judge.model.width == self.baseline.model.width
        ):
            raise ConfigError(
                "judge.model: must differ from baseline.model (another arch or width), so the "
                "judge is not the classifier that synthesizes"
            )
        validate_rounds(self.rounds, self.stic.sampler)
        clash = sorted(set(self.eval.methods) & ({"r0"} | set(self.rounds)))
        if clash:
            raise ConfigError(f"eval.methods: '{clash[0]}' is a round name; methods need their own")
        self._validate_methods()

    def _validate_methods(self) -> None:
        """Wang & Torr variants: valid, distinct sample-set names whose overrides validate."""
        if not self.wang_torr_variants:
            raise ConfigError("wang_torr_variants: list at least one variant (e.g. wang_torr: {})")
        taken = {"r0", "acgan", "regene", "sgld", *self.rounds}
        for name, override in self.wang_torr_variants.items():
            check_sample_set_name(name, f"wang_torr_variants.{name}")
            if name in taken:
                raise ConfigError(f"wang_torr_variants.{name}: name taken by another sample set")
            try:
                apply_override(self.wang_torr, override)
            except ConfigError as exc:
                raise ConfigError(f"wang_torr_variants.{name}.{exc}") from None


def parse_params(data: dict) -> Params:
    return from_dict(Params, data)


def load_params(path: Path) -> Params:
    try:
        return parse_params(read_yaml(path))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
