"""The GPU check of the paper profile (profiles/cifar10_wrn.yaml), on one CUDA GPU, in minutes,
with torch alone (no dvc, mlflow or torch-fidelity: a bare GPU machine may lack them):

1. the benchmark of pipeline.bench (samplers, training, each GPU-path option alone) with the
   profile's baseline network (WRN-28-10), bf16 autocast, channels-last and torch.compile each on
   and off;
2. one epoch of the profile's baseline on synthetic data in CIFAR-10's format (read back through
   the project's reader): images/s and peak GPU memory, with the options off and all on;
3. a STIC round's training with the profile's STIC settings for a number of batches (its chains
   advanced every batch): images/s and peak memory;
4. determinism: the baseline epoch twice with the options off and runtime.determinism strict:
   are the weights the same bytes?

Writes reports/gpu.md and reports/gpu.json.

    scripts/gpu_check.sh                     # on a machine with a CUDA GPU (about 5-10 minutes)
    .venv/bin/python scripts/gpu_check.py --cpu-smoke --out /tmp/gpu   # the test: tiny, CPU

With --cpu-smoke (no CUDA here) every step runs on the CPU at toy sizes, so the script is tested;
its numbers then describe the CPU and say so.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import numerics  # noqa: E402  (pins before torch loads, as cgen does)

numerics.apply("portable")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS

import torch  # noqa: E402
import yaml  # noqa: E402

from pipeline.accel import OFF, Accel  # noqa: E402
from pipeline.config import from_dict, merge  # noqa: E402
from pipeline.data import DataConfig, prepare  # noqa: E402
from pipeline.formats import write_cifar10  # noqa: E402
from pipeline.methods.stic import StiCConfig, round_settings  # noqa: E402
from pipeline.models import ModelConfig, build_model, expand_outputs, model_args  # noqa: E402
from pipeline.runtime import set_deterministic  # noqa: E402
from pipeline.train import TrainConfig, train_classifier  # noqa: E402

ALL_ON = Accel("bf16", True, True)


def profile_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return merge(params, yaml.safe_load((ROOT / "profiles" / "cifar10_wrn.yaml").read_text()))


def synthetic_cifar(root: Path, n_train: int, n_test: int):
    """Random images in CIFAR-10's on-disk format, read back by the project's reader."""
    gen = torch.Generator().manual_seed(0)

    def pairs(n):
        return (torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8),
                torch.arange(n) % 10)  # fmt: skip

    write_cifar10(root / "cifar-10-batches-py", pairs(n_train), pairs(n_test))
    cfg = DataConfig(name="cifar10", root=str(root), loader="builtin", image_size=32,
                     fit="resize", test_fraction=0.2, split_seed=0, download=False, channels=3,
                     num_classes=10, limit_per_class=None)  # fmt: skip
    return prepare(cfg)


def timed(device: torch.device, fn):
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return out, time.perf_counter() - t0, peak


def weights_md5(model: torch.nn.Module) -> str:
    h = hashlib.md5()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "reports")
    ap.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (the test)")
    ap.add_argument("--train-images", type=int, default=50_000, help="one CIFAR-10 epoch")
    ap.add_argument("--stic-batches", type=int, default=40, help="STIC batches timed")
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.cpu_smoke
    if not cuda and not args.cpu_smoke:
        sys.exit("gpu_check: no CUDA GPU here; run with --cpu-smoke to test the script")
    device = torch.device("cuda" if cuda else "cpu")
    p = profile_params()
    base_model = from_dict(ModelConfig, p["baseline"]["model"], "baseline.model")
    base_train = from_dict(TrainConfig, p["baseline"]["train"], "baseline.train")
    stic = from_dict(StiCConfig, p["stic"], "stic")
    n_train = args.train_images if cuda else 64
    if args.cpu_smoke:  # the same kinds of computation, at toy sizes
        base_model = dataclasses.replace(base_model, depth=10, widen_factor=1)
    torch.set_num_threads(2)
    set_deterministic(True, compiled=False)
    torch.backends.cudnn.benchmark = False
    report: dict = {
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.machine()})",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "smoke": args.cpu_smoke,
        "network": f"{base_model.arch}-{base_model.depth}-{base_model.widen_factor}",
    }
    with tempfile.TemporaryDirectory() as tmp:
        train, _ = synthetic_cifar(Path(tmp), n_train, max(10, n_train // 5))
    k, shape = train.num_classes, train.shape
    epoch = dataclasses.replace(base_train, steps=max(1, len(train) // base_train.batch_size))

    def baseline_epoch(accel: Accel):
        torch.manual_seed(0)
        model = build_model(model_args(base_model, shape[0], k))
        train_classifier(model, train, epoch, device=device, seed=0, where="gpu_check",
                         accel=accel)  # fmt: skip
        return model

    rows = []
    for label, accel in (("options off", OFF), ("bf16 + channels-last + compile", ALL_ON)):
        if accel.compile and not cuda:
            continue  # compiling for the CPU in the smoke test is slow and not what is checked
        model, seconds, peak = timed(device, lambda a=accel: baseline_epoch(a))
        rows.append({"run": f"baseline epoch, {label}", "images_per_s": len(train) / seconds,
                     "seconds": seconds, "peak_gib": peak})  # fmt: skip
    again, seconds, _ = timed(device, lambda: baseline_epoch(OFF))
    first = baseline_epoch(OFF)
    report["deterministic"] = weights_md5(first) == weights_md5(again)

    from pipeline.chains import train_against_chains

    rnd = round_settings(stic, "r1")
    setting = rnd.setting
    batches = args.stic_batches if cuda else 2
    setting = dataclasses.replace(
        setting, train=dataclasses.replace(setting.train, steps=batches),
        chains=dataclasses.replace(setting.chains, size=max(setting.chains.batch * batches, 256)
                                   if cuda else 16, batch=setting.chains.batch if cuda else 4,
                                   steps=setting.chains.steps if cuda else 1),
    )  # fmt: skip
    subset = train.subset(torch.arange(min(len(train), batches * setting.train.batch_size)))
    torch.manual_seed(0)
    model = build_model(model_args(base_model, shape[0], k))
    model, margs = expand_outputs(model, model_args(base_model, shape[0], k), k + 1, "random")
    _, seconds, peak = timed(device, lambda: train_against_chains(
        model, subset, setting, "per_step", device=device, seed=0, where="gpu_check"))  # fmt: skip
    rows.append({"run": f"STIC round r1, {batches} batches ({setting.chains.steps} sampler "
                        f"steps on {setting.chains.batch} chains a batch)",
                 "images_per_s": len(subset) / seconds, "seconds": seconds,
                 "peak_gib": peak})  # fmt: skip
    report["rows"] = rows

    bench_rows = []
    if cuda:  # the benchmark rows (pipeline.bench), each option alone among them
        import importlib.util

        from pipeline import bench

        small = train.subset(torch.arange(min(len(train), 2048)))
        torch.manual_seed(0)
        net = build_model(model_args(base_model, shape[0], k)).to(device)
        peak_gflops, results = bench.run(
            net, small, device, chains=64, steps=10, train_cfg=epoch,
            evaluation=importlib.util.find_spec("torch_fidelity") is not None)  # fmt: skip
        report["matmul_gflops"] = peak_gflops
        bench_rows = [r.__dict__ | {"speedup": r.speedup} for r in results]
    report["bench"] = bench_rows
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "gpu.md").write_text(render(report))
    print(render(report))


def render(report: dict) -> str:
    kind = "a CPU smoke run at toy sizes (no CUDA): not GPU numbers" if report["smoke"] else "GPU"
    lines = [
        "# GPU check of the paper profile (cifar10_wrn)",
        "",
        f"Written by scripts/gpu_check.py: {kind}. Device: {report['device']}; torch "
        f"{report['torch']} (CUDA {report['cuda']}); network {report['network']}. "
        f"Options off, the baseline epoch twice gives the same weights: "
        f"{'yes' if report['deterministic'] else 'NO'}.",
        "",
        "| run | images/s | seconds | peak GPU memory (GiB) |",
        "|---|---|---|---|",
    ]
    for r in report["rows"]:
        peak = "–" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        lines.append(f"| {r['run']} | {r['images_per_s']:,.0f} | {r['seconds']:.1f} | {peak} |")
    if report["bench"]:
        matmul = f"{report['matmul_gflops']:,.0f}"
        lines += [
            "",
            f"Benchmark (pipeline.bench; matmul {matmul} GFLOP/s):",
            "",
            "| kernel | rate | speed-up over the naive reference |",
            "|---|---|---|",
        ]
        for r in report["bench"]:
            speed = "–" if r["speedup"] is None else f"{r['speedup']:.2f}x"
            lines.append(f"| {r['name']} | {r['rate']:,.0f} {r['unit']} | {speed} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
