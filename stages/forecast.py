"""`cgen forecast PROFILE`: what a profile costs on one GPU before anyone runs it
(pipeline.forecast): each stage's network passes, the FLOPs of one pass of its network counted on
this CPU, and GPU hours at a stated achieved throughput; written to reports/forecast_PROFILE.md.

The throughput assumption: NVIDIA's DeepLearningExamples (PyTorch ResNet-50 v1.5) trains at
2,470 images/s on one A100 80GB with mixed precision and 938 images/s in TF32. A ResNet-50
training step is about 3 x 8.2 GFLOP an image (forward 4.1 G multiply-adds), so those are 61 and
23 TFLOP/s: 20% of the A100's dense bf16 peak (312 TFLOP/s) and 15% of its TF32 peak (156). The
forecast applies the same fractions to an H100/H200-class GPU (dense bf16 989, TF32 495 TFLOP/s).
Small sampler batches (64 chains) may run below that: read the hours as a lower bound.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stages.skeleton import PARAMS_DEFAULT, Params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
PEAKS = {"bf16": 989.0, "tf32": 495.0}  # H100/H200 SXM dense peaks, TFLOP/s
ACHIEVED = {"bf16": 0.20, "tf32": 0.15}  # fractions of peak measured on ResNet-50 (docstring)
JEM_EPOCH_MINUTES = 42  # JEM's reported time per CIFAR-10 epoch on one GPU (Grathwohl et al.)


def network_gflops(cfg, kind: str, channels: int, size: int, classes: int) -> float:
    """One forward pass of one image through the network, in GFLOP, counted on this CPU."""
    import torch

    from pipeline.bench import call_flops, forward_flops

    if kind == "acgan":
        from pipeline.methods import acgan

        g, d = (m.eval() for m in acgan.build(acgan.model_args(classes, channels, size, cfg)))
        z = torch.zeros(1, cfg.z_dim)
        y = torch.zeros(1, dtype=torch.long)
        return (call_flops(g, lambda: g(z, y)) + forward_flops(d, (channels, size, size))) / 1e9
    if kind == "decoder":
        return 0.0  # counted with its latent size by the caller (`decoder_gflops`)
    from pipeline.models import build_model, model_args

    model = build_model(model_args(cfg, channels, classes + 1)).eval()
    if kind == "score":
        model = model.at(1.0)
    return forward_flops(model, (channels, size, size)) / 1e9


@app.command()
def main(
    profile: Annotated[str, typer.Argument(help="a profile in profiles/, e.g. cifar10_wrn")],
    out: Annotated[Path | None, typer.Option("--out", help="Markdown to write")] = None,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Forecast a profile's GPU hours."""
    import torch

    from pipeline.config import merge, read_yaml
    from pipeline.data import split_sizes
    from pipeline.forecast import profile_costs
    from pipeline.io import atomic_write_text
    from pipeline.methods.regene import Decoder
    from pipeline.models import build_model, model_args
    from pipeline.params import parse_params

    torch.set_num_threads(2)
    p = parse_params(merge(read_yaml(params), read_yaml(Path("profiles") / f"{profile}.yaml")))
    c, size, k = p.data.channels or 1, p.data.image_size, p.data.num_classes
    n_train, n_test = split_sizes(p.data)
    if p.data.limit_per_class:
        n_train = min(n_train, p.data.limit_per_class * k)
    cache: dict = {}

    def gflops(cfg, kind: str) -> float:
        key = (repr(cfg), kind)
        if key not in cache:
            if kind == "decoder":  # on the latent of the round it decodes (the baseline's)
                from pipeline.bench import call_flops

                base = build_model(model_args(p.baseline.model, c, k))
                dim = base.head.in_features
                dec = Decoder(dim, c, size, cfg.width)
                z = torch.zeros(1, dim)
                cache[key] = call_flops(dec, lambda: dec(z)) / 1e9
            else:
                cache[key] = network_gflops(cfg, kind, c, size, k)
        return cache[key]

    costs = profile_costs(p, n_train, n_test, gflops)
    rates = {k_: PEAKS[k_] * ACHIEVED[k_] for k_ in PEAKS}
    lines = [
        f"# Forecast: profile {profile} on one H100/H200-class GPU",
        "",
        f"Written by `bin/cgen forecast {profile}` (stages/forecast.py: the assumptions). Data: "
        f"{p.data.name}, {n_train:,} training and {n_test:,} test images of {c}x{size}x{size}. A "
        "pass is one image forward and backward through the stage's network (3x the forward "
        "FLOPs counted here on the CPU); hours at an achieved "
        f"{rates['tf32']:.0f} TFLOP/s (fp32 with TF32 convolutions, the profile's precision) "
        f"and {rates['bf16']:.0f} TFLOP/s (runtime.precision: bf16).",
        "",
        "| stage | network | passes (M) | GFLOP / pass | PFLOP | hours, TF32 | hours, bf16 |",
        "|---|---|---|---|---|---|---|",
    ]
    for cost in costs:
        hours = " | ".join(f"{cost.hours(rates[kind]):,.2f}" for kind in ("tf32", "bf16"))
        lines.append(f"| {cost.stage} | {cost.network} | {cost.passes / 1e6:,.2f} | "
                     f"{cost.gflops_per_pass:,.2f} | {cost.pflops:,.1f} | {hours} |")  # fmt: skip
    total = {k_: sum(c_.hours(r) for c_ in costs) for k_, r in rates.items()}
    lines.append(f"| **total** | | {sum(c_.passes for c_ in costs) / 1e6:,.0f} | | "
                 f"{sum(c_.pflops for c_ in costs):,.0f} | **{total['tf32']:,.0f}** | "
                 f"**{total['bf16']:,.0f}** |")  # fmt: skip
    jem = next(c_ for c_ in costs if c_.stage == "jem_train")
    t = p.jem.train
    per_epoch = jem.hours(rates["tf32"]) * 60 / (t.steps * t.batch_size / n_train)
    lines += [
        "",
        f"That is {total['tf32'] / 24:,.1f} GPU-days in TF32 ({total['bf16'] / 24:,.1f} in bf16). "
        f"Check against a published time: this forecast puts a JEM epoch (WRN-28-10, "
        f"{p.jem.chains.steps} SGLD steps a batch) at {per_epoch:,.0f} minutes in TF32; JEM "
        f"reports about {JEM_EPOCH_MINUTES} minutes per CIFAR-10 epoch on one (older) GPU.",
    ]
    text = "\n".join(lines) + "\n"
    path = out or Path("reports") / f"forecast_{profile}.md"
    atomic_write_text(path, text)
    typer.echo(text)
