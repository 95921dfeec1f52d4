"""The whole parameter file as one frozen dataclass, composed from each component's own section.

`load_params` is the only entry point: it refuses unknown, missing and wrong-typed keys (naming the
dotted key) and then runs the cross-field `Params.validate`, before a stage does any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.config import ConfigError, from_dict, read_yaml
from pipeline.data import DataConfig
from pipeline.models import ModelConfig
from pipeline.runtime import RuntimeConfig
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

    def validate(self) -> None:
        if self.judge.model.arch == self.baseline.model.arch and (
            self.judge.model.width == self.baseline.model.width
        ):
            raise ConfigError(
                "judge.model: must differ from baseline.model (another arch or width), so the "
                "judge is not the classifier that synthesizes"
            )


def parse_params(data: dict) -> Params:
    return from_dict(Params, data)


def load_params(path: Path) -> Params:
    try:
        return parse_params(read_yaml(path))
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
