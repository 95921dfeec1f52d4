"""Device choice, seeding, determinism and the GPU speed switches (all off on the CPU default)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from pipeline.errors import ConfigError

DeviceName = Literal["auto", "cpu", "cuda"]
Determinism = Literal["strict", "fast"]
Precision = Literal["fp32", "bf16"]


@dataclass(frozen=True)
class RuntimeConfig:
    seed: int  # master seed; every random source derives from it
    device: DeviceName
    determinism: Determinism  # strict: deterministic kernels (slower on GPU)
    threads: int  # CPU threads; fixed because float reductions depend on the thread count
    precision: Precision  # bf16: autocast matrix work to bfloat16 (CUDA only)
    channels_last: bool  # NHWC memory layout for convolutions (pays on tensor-core GPUs)
    compile: bool  # torch.compile the networks that train and sample (pays on long GPU runs)

    def validate(self) -> None:
        if self.threads < 1:
            raise ConfigError("threads: must be at least 1")


def resolve_device(name: DeviceName) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "runtime.device: cuda requested but CUDA is not available on this machine; "
            "set runtime.device to auto or cpu"
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_speed_switches(cfg: RuntimeConfig, device: torch.device) -> None:
    """bf16 autocast is a GPU option: refuse it on the CPU, where it is slow and changes results."""
    if cfg.precision == "bf16" and device.type != "cuda":
        raise ConfigError(
            "runtime.precision: bf16 needs a CUDA device (here: cpu); set runtime.precision: fp32"
        )


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure(cfg: RuntimeConfig) -> torch.device:
    """Apply seeding, thread count and determinism; return the device to use."""
    device = resolve_device(cfg.device)
    check_speed_switches(cfg, device)
    torch.set_num_threads(cfg.threads)
    if cfg.determinism == "strict":
        # cuBLAS needs a fixed workspace for deterministic GEMMs (PyTorch reproducibility notes)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = True
    seed_everything(cfg.seed)
    return device


def derive_seed(seed: int, *parts: int | str) -> int:
    """A stable sub-seed for a named purpose (e.g. derive_seed(seed, 'r3', 'sampler'))."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def generator(seed: int, *parts: int | str) -> torch.Generator:
    """A CPU generator seeded with derive_seed(seed, *parts): the same draws on any device."""
    return torch.Generator().manual_seed(derive_seed(seed, *parts))


def autocast(cfg: RuntimeConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast when runtime.precision asks for it, else a no-op."""
    if cfg.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_module(module: torch.nn.Module, cfg: RuntimeConfig, device: torch.device):
    """Move to `device` with the configured memory layout; compiled when runtime.compile is on.

    Returns the module to call (the compiled wrapper shares the parameters of `module`)."""
    module = module.to(device)
    if cfg.channels_last:
        module = module.to(memory_format=torch.channels_last)
    return torch.compile(module) if cfg.compile else module


@contextlib.contextmanager
def timer() -> Iterator[dict[str, float]]:
    """Wall seconds of a block, as {'seconds': ...} once it ends (for MLflow and benchmarks)."""
    import time

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["seconds"] = time.perf_counter() - t0
