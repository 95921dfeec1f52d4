"""What a profile costs before anyone runs it: per stage, the network passes of its training and
sampling, the FLOPs of one pass of its own network (counted on this CPU), and the GPU hours those
make at an assumed achieved throughput.

A "pass" is one image through a network, forward and backward: training steps and sampler steps
alike (a sampler step needs the gradient with respect to the image, about the cost of a training
step's backward). Its FLOPs are three times the forward pass's (pipeline.bench.GRAD_PASS). Each
method's passes come from its own module, the same functions its stages log and the report
compares (pipeline.chains.train_passes and each method's train_passes_per_image /
passes_per_sample); a chain sample is one pass a step and one at its start, as the evaluation
sets log it. The forecast is FLOPs / (achieved rate): the rate is an assumption, stated beside the
table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.bench import GRAD_PASS
from pipeline.chains import train_passes
from pipeline.costs import classifier_train_passes
from pipeline.methods import acgan, regene, score, wang_torr


def chain_sample_passes(steps: int) -> int:
    """A chain sample's passes: one a sampler step, one at its start (as
    pipeline.eval_sets.evaluation_set logs them)."""
    return steps + 1


INCEPTION_FORWARD_GFLOPS = 11.5  # Inception-v3 at 299 x 299: 5.7 G multiply-adds, forward only


@dataclass(frozen=True)
class Cost:
    stage: str
    network: str
    passes: float  # images through the network, forward and backward, over the whole stage
    gflops_per_pass: float  # of this network at the profile's image size (forward x GRAD_PASS)

    @property
    def pflops(self) -> float:
        return self.passes * self.gflops_per_pass / 1e6

    def hours(self, tflops: float) -> float:
        """GPU hours at an achieved rate of `tflops` TFLOP/s."""
        return self.pflops * 1e3 / tflops / 3600


def profile_costs(
    p,  # pipeline.params.Params of the profile
    n_train: int,
    n_test: int,
    forward_gflops: Callable[[object, str], float],
) -> list[Cost]:
    """Every stage's cost for the profile `p` on a training split of `n_train` images.
    `forward_gflops(model_config, kind)` is one forward pass of that network (kind: 'classifier',
    'score', 'acgan', 'decoder'), measured by the caller."""
    k = p.data.num_classes
    out: list[Cost] = []

    def classifier(stage: str, section) -> None:
        f = forward_gflops(section.model, "classifier") * GRAD_PASS
        passes = classifier_train_passes(section.train, n_train) * n_train
        out.append(Cost(stage, section.model.arch, passes, f))

    classifier("judge", p.judge)
    classifier("judge_b", p.judge_b)
    classifier("baseline (r0)", p.baseline)
    base = forward_gflops(p.baseline.model, "classifier") * GRAD_PASS
    from pipeline.methods.stic import round_settings

    for name in p.stic.rounds:
        rnd = round_settings(p.stic, name)
        passes = train_passes(rnd.setting, n_train, rnd.synthesis, p.stic.per_round_steps)
        out.append(Cost(f"stic_round@{name}", p.baseline.model.arch, passes * n_train, base))
        ev = p.stic.eval
        out.append(Cost(f"stic_sample@{name}", p.baseline.model.arch,
                        (ev.hard_per_class * k + ev.soft) * chain_sample_passes(ev.steps),
                        base))  # fmt: skip
    jem = forward_gflops(p.jem.model, "classifier") * GRAD_PASS
    passes = train_passes(p.jem.setting, n_train, "per_step", 0) * n_train
    out.append(Cost("jem_train", p.jem.model.arch, passes, jem))
    jem_draws = p.jem.eval.hard_per_class * k * chain_sample_passes(p.jem.eval.steps)
    out.append(Cost("jem_sample", p.jem.model.arch, jem_draws, jem))
    out.append(Cost("sgld", p.baseline.model.arch, jem_draws, base))
    s = p.score_stic
    g_score = forward_gflops(s.model, "score") * GRAD_PASS
    out.append(Cost("score_train", s.model.arch,
                    score.train_passes_per_image(s.train, n_train) * n_train, g_score))  # fmt: skip
    out.append(Cost("score_sample", s.model.arch,
                    (s.sampling.hard_per_class * k + s.sampling.soft) * score.passes_per_sample(s),
                    g_score))  # fmt: skip
    for name in p.acgan.variants:
        v = p.acgan.resolved(name)
        g = forward_gflops(v.model, "acgan") * GRAD_PASS
        out.append(Cost(f"acgan_train@{name}", f"acgan {v.model.arch}",
                        acgan.train_passes_per_image(v.train, n_train) * n_train, g))  # fmt: skip
    d = p.regene.decoder
    decoder_passes = regene.decoder_passes_per_image(d, n_train) * n_train
    out.append(Cost("regene_train", "decoder", decoder_passes,
                    forward_gflops(d, "decoder") * GRAD_PASS))  # fmt: skip
    classifier("wang_torr_classifier", p.wang_torr.classifier)  # its stage runs in every profile
    own = p.wang_torr.round == wang_torr.OWN_CLASSIFIER  # else it inverts r0 or a STIC round
    inverted = p.wang_torr.classifier.model if own else p.baseline.model
    g_inverted = forward_gflops(inverted, "classifier") * GRAD_PASS
    for name in p.wang_torr.variants:
        v = p.wang_torr.variant(name)
        per_sample = wang_torr.passes_per_sample(v, p.data.image_size)
        out.append(Cost(f"wang_torr@{name}", inverted.arch,
                        v.samples_per_class * k * per_sample, g_inverted))  # fmt: skip
    sets = len(p.stic.rounds) + len(p.eval.methods) + 1
    per_set = p.eval.metrics.count(n_test) + n_train  # every set is measured against train
    if p.eval.metrics.inception_weights is not None:
        out.append(Cost("evaluate: Inception (all sets)", "inception_v3", sets * per_set,
                        INCEPTION_FORWARD_GFLOPS))  # fmt: skip
    return out
