"""STIC (docs/methods.md#stic): a classifier that synthesizes with GRMALA and is retrained on its
own hard and soft fakes, round after round.

The rounds form a tree declared in params (`stic.rounds`): every entry names the round it starts
from (`prev`; r0 is the baseline classifier) and may override any of the shared sections
(`synthesis`, `train`, `loss`, `chains`, `sampler`) for itself only. The main chain is r1, r2, ...
(r1 from r0, r2 from r1, ...); an entry with another name branching off the chain is an ablation,
measured at the budget of the chain round at the same depth (e.g. `no_gram: {prev: r0, ...}`
beside r1). Round rK starts from round prev's weights and chains and trains against its own
sampler (`pipeline.chains.train_against_chains`); its generator is then evaluated on fresh chains.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pipeline.chains import ChainsConfig, ChainTraining, Synthesis
from pipeline.config import Overrides, apply_overrides
from pipeline.errors import ConfigError
from pipeline.eval_sets import EvalChainsConfig, null_evaluation_set
from pipeline.models import NewRows
from pipeline.samplers import SamplerConfig
from pipeline.train import LossConfig, TrainConfig

CHAIN_ROUND = re.compile(r"^r[1-9][0-9]*$")
BASE_ROUND = "r0"  # the baseline classifier (stage `baseline`)
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


Init = Literal["prev", "scratch"]


@dataclass(frozen=True)
class RoundConfig:
    prev: str  # the round this one starts from (r0 = the baseline)
    init: Init | None = None  # override of stic.init for this round only
    fake_output: NewRows | None = None  # ... of stic.fake_output
    synthesis: Synthesis | None = None  # ... of stic.synthesis
    train: Overrides | None = None  # ... of stic.train
    loss: Overrides | None = None  # ... of stic.loss
    chains: Overrides | None = None  # ... of stic.chains
    sampler: Overrides | None = None  # ... of stic.sampler


@dataclass(frozen=True)
class StiCShared:
    """The sections every round shares (each round may override them for itself)."""

    init: Init  # prev: a round starts from its predecessor's weights; scratch: from a new network
    # the fake class's output row when a round adds it (K -> K+1): zero (the fake logit starts
    # at 0, the real-class predictions unchanged) or random (nn.Linear's initialisation)
    fake_output: NewRows
    synthesis: Synthesis  # per_step: fakes drawn at every batch; per_round: once per round
    train: TrainConfig
    loss: LossConfig
    chains: ChainsConfig
    sampler: SamplerConfig  # GRMALA
    per_round_steps: int  # per_round synthesis: sampler steps of every chain before the round

    def validate(self) -> None:
        if self.per_round_steps < 1:
            raise ConfigError("per_round_steps: must be at least 1")


@dataclass(frozen=True)
class StiCConfig(StiCShared):
    eval: EvalChainsConfig  # how each round's generator is evaluated
    rounds: dict[str, RoundConfig]

    def validate(self) -> None:
        super().validate()
        validate_rounds(self)
        if not chain_rounds(self.rounds):
            raise ConfigError("rounds: the main chain needs r1 (r1: {prev: r0})")

    # what the parameter gate asks of every method (pipeline.methods)
    def sample_sets(self) -> list[str]:
        return list(self.rounds)

    def hard_counts(self) -> dict[str, int]:
        return {"eval.hard_per_class": self.eval.hard_per_class}

    def models(self) -> dict:
        return {}  # the rounds are the baseline's network (baseline.model)

    def check_data(self, facts) -> None:
        if self.chains.size < facts.classes:
            raise ConfigError(f"chains.size: needs at least {facts.classes} chains (one a class)")
        if self.chains.soft_classes > facts.classes:
            raise ConfigError(
                f"chains.soft_classes: {self.chains.soft_classes} classes to mix but the data "
                f"has {facts.classes}"
            )


@dataclass(frozen=True)
class RoundSettings:
    """Round `name`'s resolved settings: the shared sections with its overrides applied."""

    name: str
    prev: str
    init: Init
    fake_output: NewRows
    synthesis: Synthesis
    setting: ChainTraining


def round_settings(cfg: StiCConfig, name: str) -> RoundSettings:
    if name not in cfg.rounds:
        raise ConfigError(f"stic.rounds.{name}: not a listed round ({', '.join(cfg.rounds)})")
    return resolve_round(cfg, name, cfg.rounds[name])


def resolve_round(cfg: StiCShared, name: str, rnd: RoundConfig) -> RoundSettings:
    """Round `name`'s settings: the shared sections with the round's overrides applied."""
    key = f"stic.rounds.{name}"
    setting = ChainTraining(
        train=apply_overrides(TrainConfig, cfg.train, rnd.train, f"{key}.train"),
        loss=apply_overrides(LossConfig, cfg.loss, rnd.loss, f"{key}.loss"),
        chains=apply_overrides(ChainsConfig, cfg.chains, rnd.chains, f"{key}.chains"),
        sampler=apply_overrides(SamplerConfig, cfg.sampler, rnd.sampler, f"{key}.sampler"),
    )
    return RoundSettings(
        name,
        rnd.prev,
        rnd.init or cfg.init,
        rnd.fake_output or cfg.fake_output,
        rnd.synthesis or cfg.synthesis,
        setting,
    )


def depth(rounds: Mapping[str, RoundConfig], name: str) -> int:
    """Rounds between `name` and r0 (r1 and its branches: 1); the budget an entry is compared at."""
    n = 0
    while name != BASE_ROUND:
        name, n = rounds[name].prev, n + 1
    return n


def validate_rounds(cfg: StiCConfig) -> None:
    """Refuse a broken tree: bad names, a missing predecessor, a cycle, bad overrides, a chain
    round off the chain, an output count that does not match its predecessor's."""
    rounds = cfg.rounds
    if not rounds:
        raise ConfigError("rounds: needs at least one round, e.g. {r1: {prev: r0}}")
    for key, rnd in rounds.items():
        if not NAME.match(key) or key == BASE_ROUND:
            raise ConfigError(
                f"rounds.{key}: names are lower-case letters, digits and '_' (r0 is the baseline)"
            )
        if rnd.prev != BASE_ROUND and rnd.prev not in rounds:
            raise ConfigError(f"rounds.{key}.prev: '{rnd.prev}' is neither r0 nor a listed round")
    for key in rounds:
        seen = [key]
        while seen[-1] != BASE_ROUND:
            nxt = rounds[seen[-1]].prev
            if nxt in seen:
                chain = " -> ".join([*seen[seen.index(nxt) :], nxt])
                raise ConfigError(f"rounds.{key}.prev: cycle {chain}; every round must reach r0")
            seen.append(nxt)
        if CHAIN_ROUND.match(key) and rounds[key].prev != f"r{int(key[1:]) - 1}":
            raise ConfigError(
                f"rounds.{key}.prev: chain round {key} must start from r{int(key[1:]) - 1}; "
                "give a branch another name (e.g. {key}_variant)"
            )
        try:
            settings = round_settings(cfg, key)
        except ConfigError as exc:
            raise ConfigError(str(exc).removeprefix("stic.")) from None
        prev_mode = (
            None if rounds[key].prev == BASE_ROUND else round_settings(cfg, rounds[key].prev)
        )
        if prev_mode is not None and (
            prev_mode.setting.loss.fake_mode != settings.setting.loss.fake_mode
        ):
            raise ConfigError(
                f"rounds.{key}.loss.fake_mode: differs from its predecessor's; a round continues "
                "the previous round's classifier, whose outputs depend on the mode"
            )


def chain_rounds(rounds: Mapping[str, RoundConfig]) -> list[str]:
    """The main chain in order: r1, r2, ... as long as they are listed."""
    out, i = [], 1
    while f"r{i}" in rounds:
        out.append(f"r{i}")
        i += 1
    return out


def chain(n: int, old: Mapping[str, Mapping] | None = None) -> dict[str, dict]:
    """A chain of n rounds {r1: {prev: r0}, ..., rn: {prev: r(n-1)}}, keeping the overrides of
    chain rounds that stay and every branch whose predecessor stays."""
    if n < 1:
        raise ConfigError("rounds: needs at least one round")
    old = dict(old or {})
    out: dict[str, dict] = {}
    for i in range(1, n + 1):
        entry = {k: v for k, v in (old.get(f"r{i}") or {}).items() if k != "prev"}
        out[f"r{i}"] = {"prev": f"r{i - 1}", **entry}
    branches = {k: dict(v or {}) for k, v in old.items() if not CHAIN_ROUND.match(k)}
    while True:  # a branch may start from another branch: keep adding until nothing changes
        keep = {
            k: v
            for k, v in branches.items()
            if k not in out and v.get("prev") in {BASE_ROUND, *out}
        }
        if not keep:
            return out
        out.update(keep)


def null_set(cfg: StiCConfig, data, gen_targets, gen_chains, *, name: str, device):
    """STIC's evaluation sampler (the shared sections' drawing and stic.eval) on a flat target."""
    drawing = ChainTraining(cfg.train, cfg.loss, cfg.chains, cfg.sampler).drawing
    return null_evaluation_set(drawing, cfg.eval, data, gen_targets, gen_chains, name=name,
                               device=device)  # fmt: skip
