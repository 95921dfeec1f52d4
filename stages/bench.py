"""`cgen bench` (`make bench`): the samplers, training and evaluation against naive references,
on this machine, in one run (pipeline.bench); writes reports/bench.md and reports/bench.json.
Not a DVC stage: its numbers are wall-clock times of one machine."""

from __future__ import annotations

import json
import platform
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import torch
import typer

from pipeline.accel import Accel
from pipeline.config import load_sections
from pipeline.data import load_image_set
from pipeline.io import atomic_write_text
from pipeline.models import ModelConfig, build_model, model_args
from pipeline.runtime import RuntimeConfig, configure
from pipeline.train import TrainConfig
from stages.skeleton import PARAMS_DEFAULT, Params

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def main(
    train: Annotated[Path, typer.Option("--train")] = Path("data/prepared/train.pt"),
    md: Annotated[Path, typer.Option("--md")] = Path("reports/bench.md"),
    json_out: Annotated[Path, typer.Option("--json")] = Path("reports/bench.json"),
    chains: Annotated[int, typer.Option("--chains", help="chains per sampler run")] = 200,
    steps: Annotated[int, typer.Option("--steps", help="sampler steps per run")] = 20,
    params: Params = PARAMS_DEFAULT,
) -> None:
    """Run the benchmark with the baseline's architecture on the prepared training split."""
    from pipeline import bench

    cfg = load_sections(params, {"runtime": RuntimeConfig, "baseline.model": ModelConfig,
                                 "baseline.train": TrainConfig})  # fmt: skip
    device = configure(cfg["runtime"])
    data = load_image_set(train)
    torch.manual_seed(0)
    model = build_model(model_args(cfg["baseline.model"], data.shape[0], data.num_classes))
    one_pass = max(1, len(data) // cfg["baseline.train"].batch_size)
    train_cfg = replace(cfg["baseline.train"], steps=one_pass, mixup_alpha=0.0)
    r = cfg["runtime"]
    peak, rows = bench.run(model, data, device, chains=chains, steps=steps, train_cfg=train_cfg,
                           accel=Accel(r.precision, r.channels_last, r.compile))  # fmt: skip
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    if device.type == "cuda":
        machine = torch.cuda.get_device_name(device)
    lines = [
        "# Benchmark",
        "",
        f"Machine: {machine} ({device.type}); torch {torch.__version__}; {chains} chains x "
        f"{steps} steps per sampler run; the baseline's {cfg['baseline.model'].arch} of width "
        f"{cfg['baseline.model'].width} on {len(data)} images of {data.shape}. Measured matrix "
        f"multiply: {peak:.1f} GFLOP/s (fp32, 1024 x 1024).",
        "",
        "| kernel | ours | naive reference | speed-up | achieved GFLOP/s | of matmul |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        naive = "–" if r.naive_rate is None else f"{r.naive_rate:,.0f}"
        speed = "–" if r.speedup is None else f"{r.speedup:.2f}x"
        gf = "–" if r.gflops is None else f"{r.gflops:.1f}"
        share = "–" if r.gflops is None else f"{r.gflops / peak:.0%}"
        ours = f"{r.rate:,.0f} {r.unit}"
        lines.append(f"| {r.name} | {ours} | {naive} | {speed} | {gf} | {share} |")
    atomic_write_text(md, "\n".join(lines) + "\n")
    result = {
        "machine": machine,
        "device": device.type,
        "matmul_gflops": peak,
        "rows": [r.__dict__ | {"speedup": r.speedup} for r in rows],
    }
    atomic_write_text(json_out, json.dumps(result, indent=2) + "\n")
    typer.echo("\n".join(lines))
