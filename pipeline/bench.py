"""A benchmark of the samplers, the training loops and evaluation against what a user would write
by hand, on the same machine in one run (`make bench`; outside the pipeline and the tests).

Every figure is a throughput at equal work (image-steps, images) and a ratio against the naive
reference; each kernel's achieved arithmetic rate is read against the machine's measured
matrix-multiply rate. The naive references are written the way a user would: a Python loop over
classes, one chain batch at a time, `loss.backward()` with the network's parameters still
requiring gradients, and the log-density recomputed at the current state of every MH step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pipeline.accel import OFF, Accel
from pipeline.chains import ChainsConfig, ChainTraining, train_against_chains
from pipeline.data import ImageSet
from pipeline.densities import classifier_density
from pipeline.loop import batches
from pipeline.samplers import CanvasConfig, SamplerConfig, fold, run_annealed, run_chains
from pipeline.train import LossConfig, TrainConfig, train_classifier

# The training loops' GPU options, each alone (on a CPU, bf16 autocast is usually slower)
GPU_PATH = (
    ("bf16 autocast", Accel("bf16", False, False)),
    ("channels-last", Accel("fp32", True, False)),
    ("torch.compile", Accel("fp32", False, True)),
)


@dataclass
class Result:
    name: str
    unit: str  # what `rate` counts per second
    rate: float
    naive_rate: float | None  # the hand-written reference at equal work
    gflops: float | None  # achieved arithmetic rate of the kernel

    @property
    def speedup(self) -> float | None:
        return None if self.naive_rate is None else self.rate / self.naive_rate


REPEAT = 5  # timed calls per figure; the best one counts


def timed(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    """Best wall time of `repeat` calls (after one warm-up call)."""
    return timed_pair(fn, None, repeat)[0]


def timed_pair(
    ours: Callable[[], object], naive: Callable[[], object] | None, repeat: int = REPEAT
) -> tuple[float, float]:
    """Best wall times of `ours` and `naive`, called in turn (after a warm-up call each), so
    that a drift in the machine's load falls on both alike."""
    fns = [ours] if naive is None else [ours, naive]
    best = [math.inf] * len(fns)
    for fn in fns:
        fn()
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best[0], best[-1] if naive is not None else math.nan


def matmul_gflops(device: torch.device, size: int = 1024, repeat: int = 5) -> float:
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)

    def run():
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()

    return 2 * size**3 / timed(run, repeat) / 1e9


def forward_flops(model: torch.nn.Module, shape: tuple[int, ...]) -> float:
    """Multiply-adds x 2 of one forward pass of one image, counted on conv and linear layers."""
    device = next(model.parameters()).device
    return call_flops(model, lambda: model(torch.zeros(1, *shape, device=device)))


def call_flops(model: torch.nn.Module, call: Callable[[], object]) -> float:
    """Multiply-adds x 2 on `model`'s conv, transposed-conv and linear layers during `call()`."""
    total = 0.0

    def conv_hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        # a transposed conv does its in_channels x kernel products per input position
        positions = inp[0][0].numel() // mod.in_channels * mod.out_channels if isinstance(
            mod, torch.nn.ConvTranspose2d) else out[0].numel()  # fmt: skip
        total += 2 * positions * k

    def linear_hook(mod, inp, out):
        nonlocal total
        total += 2 * mod.in_features * mod.out_features

    hooks = []
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, torch.nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        call()
    for h in hooks:
        h.remove()
    return total


# a forward pass with an input gradient costs about three forward passes (forward + backward)
GRAD_PASS = 3.0
# and with parameter gradients too, about three as well (the backward computes both)


def naive_mala(model, targets, x0, eps, temperature, steps, gen):
    """MALA as a user writes it: per class, one batch at a time, backward() through the
    parameters, log-density recomputed at the current state every step."""
    out = []
    for c in targets.argmax(1).unique().tolist():
        x = x0[targets.argmax(1) == c].clone()
        for _ in range(steps):
            x.requires_grad_(True)
            logp = F.log_softmax(model(x), 1)[:, c] / temperature
            logp.sum().backward()  # parameters still require grad: their .grad fill up too
            grad = x.grad.detach()
            model.zero_grad()
            xi = torch.randn(x.shape, generator=gen).to(x.device)
            prop = fold((x + eps * grad + math.sqrt(2 * eps) * xi).detach(), -1.0, 1.0)
            prop.requires_grad_(True)
            logp_new = F.log_softmax(model(prop), 1)[:, c] / temperature
            logp_new.sum().backward()
            grad_new = prop.grad.detach()
            model.zero_grad()
            fwd = -((prop - x - eps * grad) ** 2).flatten(1).sum(1) / (4 * eps)
            bwd = -((x - prop - eps * grad_new) ** 2).flatten(1).sum(1) / (4 * eps)
            ratio = (logp_new - logp + bwd - fwd).detach()
            u = torch.rand(len(x), generator=gen).to(x.device)
            keep = (torch.log(u) < ratio).view(-1, 1, 1, 1)
            x = torch.where(keep, prop.detach(), x.detach())
        out.append(x)
    return torch.cat(out)


def naive_sgld(model, targets, x0, step, noise, steps, gen):
    """JEM's SGLD as its public code writes it: per class, backward() through the parameters."""
    out = []
    for c in targets.argmax(1).unique().tolist():
        x = x0[targets.argmax(1) == c].clone()
        for _ in range(steps):
            x.requires_grad_(True)
            model(x)[:, c].sum().backward()
            g = x.grad.detach()
            model.zero_grad()
            x = x.detach() + step * g + noise * torch.randn(x.shape, generator=gen).to(x.device)
            x = x.clamp(-1, 1)
        out.append(x)
    return torch.cat(out)


def naive_train_epoch(model, data: ImageSet, cfg: TrainConfig, device) -> None:
    """A plain epoch the way a tutorial writes it (real + mixup, Adam)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x_all, y_all = data.float_images(), data.labels
    for idx in batches(len(data), cfg.batch_size, torch.randperm(len(data))):
        x, y = x_all[idx].to(device), y_all[idx].to(device)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def sampler_config(mh: bool, temperature: float, step: float) -> SamplerConfig:
    return SamplerConfig(
        temperature=temperature, step_size=step, mh=mh, box="reflect" if mh else "clamp",
        adapt=False, target_accept=0.57, adapt_rate=0.5, step_min=step, step_max=step,
        gram_weight=0.0, gram_layers=(),
    )  # fmt: skip


def run(model, data: ImageSet, device: torch.device, *, chains: int, steps: int,
        train_cfg: TrainConfig, accel: Accel = OFF,
        evaluation: bool = True) -> tuple[float, list[Result]]:  # fmt: skip
    """The whole benchmark on one classifier and one dataset; returns (matmul GFLOP/s, rows).
    `accel`: the GPU-path options the main rows train with (each option also runs alone);
    `evaluation`: the judge-feature and torch-fidelity rows too (they need torch-fidelity)."""
    model = model.to(device).eval()
    shape = data.shape
    k = data.num_classes
    peak = matmul_gflops(device)
    flops = forward_flops(model, shape)
    gen = torch.Generator().manual_seed(0)
    targets = torch.eye(k)[torch.arange(chains) % k]
    x0 = (torch.rand(chains, *shape, generator=gen) * 2 - 1).to(device)
    work = chains * steps  # image-steps
    rows: list[Result] = []

    def rate_and_flops(seconds: float, passes_per_unit: float) -> tuple[float, float]:
        return work / seconds, work * passes_per_unit * GRAD_PASS * flops / seconds / 1e9

    mala = sampler_config(True, 5e-5, 1e-7)
    fn = classifier_density(model, targets.to(device), mala, "log_softmax")
    log_eps = torch.full((chains,), math.log(mala.step_size))
    ours, naive = timed_pair(
        lambda: run_chains(fn, x0, log_eps, mala, torch.Generator().manual_seed(1), steps=steps),
        lambda: naive_mala(model, targets, x0, mala.step_size, mala.temperature, steps,
                           torch.Generator().manual_seed(1)),
    )  # fmt: skip
    rate, gf = rate_and_flops(ours, 1.0)
    rows.append(Result("GRMALA (MH, reflected box)", "image-steps/s", rate, work / naive, gf))

    sgld = sampler_config(False, 5e-5, 5e-5)
    fn = classifier_density(model, targets.to(device), sgld, "logit")
    ours, naive = timed_pair(
        lambda: run_chains(fn, x0, log_eps, sgld, torch.Generator().manual_seed(1), steps=steps),
        lambda: naive_sgld(model, targets, x0, 1.0, 0.01, steps, torch.Generator().manual_seed(1)),
    )
    rate, gf = rate_and_flops(ours, 1.0)
    rows.append(Result("SGLD (JEM's sampler)", "image-steps/s", rate, work / naive, gf))

    levels = 4
    per_level = max(1, steps // levels)
    ann = sampler_config(True, 1.0, 1e-5)
    sigmas = [1.0, 0.3, 0.1, 0.03]
    fns = {s: classifier_density(model, targets.to(device), ann, "logit") for s in sigmas}
    ours, naive = timed_pair(
        lambda: run_annealed(lambda s: fns[s], x0, sigmas, ann, torch.Generator().manual_seed(1),
                             steps_per_level=per_level),
        lambda: naive_mala(model, targets, x0, ann.step_size, 1.0, levels * per_level,
                           torch.Generator().manual_seed(1)),
    )  # fmt: skip
    ann_work = chains * levels * per_level
    rows.append(Result("annealed Langevin (Score-STIC)", "image-steps/s", ann_work / ours,
                       ann_work / naive, ann_work * GRAD_PASS * flops / ours / 1e9))  # fmt: skip

    epoch_work = len(data) // train_cfg.batch_size * train_cfg.batch_size  # the naive epoch
    plain, naive = timed_pair(
        lambda: train_classifier(
            model, data, train_cfg, device=device, seed=0, where="bench", accel=accel
        ),
        lambda: naive_train_epoch(model, data, train_cfg, device),
    )
    mix = 2 if train_cfg.mixup_alpha > 0 else 1  # the naive loop has no mixup: bench without it
    seen = train_cfg.steps * train_cfg.batch_size
    train_gf = seen * mix * GRAD_PASS * flops / plain / 1e9
    rows.append(Result("classifier training (real images)", "images/s", seen / plain,
                       epoch_work / naive, train_gf))  # fmt: skip
    for label, option in GPU_PATH:  # the same training with each option alone (pipeline.accel)
        copy_ = copy.deepcopy(model)  # channels-last changes the model's memory in place
        seconds = timed(lambda m=copy_, o=option: train_classifier(
            m, data, train_cfg, device=device, seed=0, where="bench", accel=o))  # fmt: skip
        rows.append(Result(f"classifier training, {label}", "images/s", seen / seconds, None,
                           seen * mix * GRAD_PASS * flops / seconds / 1e9))  # fmt: skip
    setting = ChainTraining(
        train_cfg,
        LossConfig("extra_class", 1.0, "class", 0.0, "matched"),
        ChainsConfig(
            size=max(train_cfg.batch_size, 256),
            batch=train_cfg.batch_size,
            steps=10,
            restart=0.05,
            canvas=CanvasConfig("noise", -1.0, 0.05),
            soft_share=0.0,
            soft_classes=2,
            soft_alpha=1.0,
            gram_momentum=0.9,
        ),  # fmt: skip
        sampler_config(True, 5e-5, 1e-7),
    )
    with_fake = copy.deepcopy(model)
    with_fake.head = torch.nn.Linear(with_fake.head.in_features, k + 1).to(device)
    synth = timed(lambda: train_against_chains(with_fake, data, setting, "per_step",
                                               device=device, seed=0, where="bench",
                                               accel=accel))  # fmt: skip
    passes = mix + (1 + setting.chains.steps) * setting.chains.batch / train_cfg.batch_size
    rows.append(
        Result(
            "training with synthesis (10 MH steps per batch)",
            "images/s",
            seen / synth,
            None,
            seen * passes * GRAD_PASS * flops / synth / 1e9,
        )
    )
    if evaluation:
        rows += evaluation_rows(model, data, device, flops)
    return peak, rows


def evaluation_rows(judge, data: ImageSet, device: torch.device, flops: float) -> list[Result]:
    """Judge features of every image (batched, no gradients) and torch-fidelity's FID, KID and
    precision/recall on them, against a loop of one image at a time."""
    from pipeline import metrics as M

    images = data.images
    n = len(images)
    ours, naive = timed_pair(
        lambda: M.judge_features(judge, images, 256, device),
        lambda: [M.judge_features(judge, images[i : i + 1], 1, device) for i in range(n)],
    )
    rows = [Result("judge features", "images/s", n / ours, n / naive, n * flops / ours / 1e9)]
    feats = M.judge_features(judge, images, 256, device)
    half = n // 2
    a, b = (
        M.JudgeFeatures(feats.embed[:half], feats.logits[:half]),
        feats.subset(torch.arange(half, n)),
    )
    cfg = M.EvalConfig(seed=0, num_samples=half, batch_size=256, judge_metrics=True,
                       kid_subsets=50, kid_subset_size=min(100, half), isc_splits=10,
                       prc_neighborhood=3, bootstrap=0, confidence=0.95, diversity=False,
                       diversity_pairs=1, neighbours=0, inception_weights=None,
                       cas_steps=0)  # fmt: skip
    t = timed(lambda: M.fidelity(a, b, cfg))
    rows.append(Result("FID + KID + IS + precision/recall (torch-fidelity)", "images/s",
                       half / t, None, None))  # fmt: skip
    return rows
