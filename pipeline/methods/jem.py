"""JEM (Grathwohl et al., ICLR 2020), scaled down: the peer to beat and the STIC authors' code base.

The classifier's logits define an energy; every training batch adds JEM's contrastive term
-(mean f(x_real)[y] - mean f(x_sgld)[y']) (or its logsumexp form, p(x)) to the cross-entropy,
where x_sgld comes from a persistent class-conditional replay buffer with 5% restarts from
U(-1, 1), moved by SGLD x <- clamp(x + 1.0 grad f(x)[y'] + 0.01 xi, -1, 1) (20 steps per batch);
real images get noise of std 0.03; no BatchNorm in the net (docs/methods.md#jem).

It shares the training loop and the chain machinery with STIC (`pipeline.chains`): JEM is the
`energy` loss with the SGLD sampler (no MH, no Gram term, clamped box, eps = T = 5e-5, which is
JEM's step 1.0 and noise 0.01), hard chains only, no mixup, trained from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.chains import ChainsConfig, ChainTraining
from pipeline.errors import ConfigError
from pipeline.eval_sets import EvalChainsConfig, null_evaluation_set
from pipeline.models import ModelConfig
from pipeline.samplers import SamplerConfig
from pipeline.train import LossConfig, TrainConfig

NAME = "jem"


@dataclass(frozen=True)
class JEMConfig:
    model: ModelConfig
    train: TrainConfig
    loss: LossConfig
    chains: ChainsConfig
    sampler: SamplerConfig
    eval: EvalChainsConfig

    def validate(self) -> None:
        if self.loss.fake_mode != "energy":
            raise ConfigError("loss.fake_mode: JEM's loss is the energy term; set energy")
        if self.model.norm == "batch":
            raise ConfigError("model.norm: JEM trains without BatchNorm (docs/methods.md#jem)")

    @property
    def setting(self) -> ChainTraining:
        return ChainTraining(self.train, self.loss, self.chains, self.sampler)

    # what the parameter gate asks of every method (pipeline.methods)
    def sample_sets(self) -> list[str]:
        return [NAME]

    def hard_counts(self) -> dict[str, int]:
        return {"eval.hard_per_class": self.eval.hard_per_class}

    def models(self) -> dict:
        return {"model": self.model}

    def check_data(self, facts) -> None:
        if self.chains.size < facts.classes:
            raise ConfigError(f"chains.size: needs at least {facts.classes} chains (one a class)")


def null_set(cfg: JEMConfig, data, gen_targets, gen_chains, *, name: str, device):
    """JEM's evaluation sampler (SGLD from the canvas, jem.eval) on a flat target."""
    return null_evaluation_set(cfg.setting.drawing, cfg.eval, data, gen_targets, gen_chains,
                               name=name, device=device)  # fmt: skip
