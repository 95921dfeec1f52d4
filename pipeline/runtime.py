"""Device choice, seeding and determinism."""

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
from pipeline.numerics import Numerics

DeviceName = Literal["auto", "cpu", "cuda"]
Determinism = Literal["strict", "fast"]


@dataclass(frozen=True)
class RuntimeConfig:
    seed: int  # master seed; every random source derives from it
    device: DeviceName
    determinism: Determinism  # strict: deterministic kernels (slower on GPU)
    threads: int  # CPU threads; fixed because float reductions depend on the thread count
    # portable: the CPU libraries pinned to kernels that give the same numbers on every x86-64
    # machine with AVX2 (pipeline.numerics; applied by cgen before torch loads); native: the
    # machine's fastest kernels, whose numbers depend on the CPU
    numerics: Numerics
    # Data parallelism (pipeline.dist): training and sampling stages launch through torchrun with
    # `processes` per node on `nodes` machines; 1 x 1 runs in this process, as always.
    processes: int
    nodes: int
    rendezvous: str | None  # host:port of the torchrun rendezvous; needed when nodes > 1
    backend: Literal["gloo", "nccl"]  # gloo: CPUs (and GPUs); nccl: GPUs only
    # The GPU path of the training loops (pipeline.accel); all off by default.
    precision: Literal["fp32", "bf16"]  # bf16: autocast of the training forward passes
    channels_last: bool  # channels-last memory for the training networks
    compile: bool  # torch.compile the training networks

    def validate(self) -> None:
        if self.threads < 1:
            raise ConfigError("threads: must be at least 1")
        if self.processes < 1 or self.nodes < 1:
            raise ConfigError("processes: and nodes must be at least 1")
        if self.nodes > 1 and not self.rendezvous:
            raise ConfigError(
                "rendezvous: several nodes need the host:port of the torchrun rendezvous "
                "(the first node's address and a free port), e.g. 10.0.0.1:29400"
            )


def resolve_device(name: DeviceName) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "runtime.device: cuda requested but CUDA is not available on this machine; "
            "set runtime.device to auto or cpu"
        )
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def set_deterministic(mode: bool, compiled: bool) -> None:
    """torch.use_deterministic_algorithms(mode), which also sets the flag in torch.compile's
    config and so imports the compiler (0.8 s of every stage's start-up here). Without compile,
    only the ATen flag it sets is needed."""
    aten_only = getattr(torch._C, "_set_deterministic_algorithms", None)
    if compiled or aten_only is None:
        torch.use_deterministic_algorithms(mode, warn_only=False)
    else:
        aten_only(mode, warn_only=False)


def configure(cfg: RuntimeConfig) -> torch.device:
    """Apply seeding, thread count and determinism; return the device to use. (The training
    loops' GPU options travel as an `Accel`, made from these settings by the stage.)"""
    device = resolve_device(cfg.device)
    torch.set_num_threads(cfg.threads)
    strict = cfg.determinism == "strict"
    if strict:
        # cuBLAS needs a fixed workspace for deterministic GEMMs (PyTorch reproducibility notes)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    set_deterministic(strict, compiled=cfg.compile)
    torch.backends.cudnn.benchmark = not strict
    seed_everything(cfg.seed)
    return device


def derive_seed(seed: int, *parts: int | str) -> int:
    """A stable sub-seed for a named purpose (e.g. derive_seed(seed, 'r3', 'sampler'))."""
    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def generator(seed: int, *parts: int | str) -> torch.Generator:
    """A CPU generator seeded with derive_seed(seed, *parts): the same draws on any device."""
    return torch.Generator().manual_seed(derive_seed(seed, *parts))


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
