"""Device choice, seeding and determinism switches."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from pipeline.config import ConfigError

DeviceName = Literal["auto", "cpu", "cuda"]
Determinism = Literal["strict", "fast"]


@dataclass(frozen=True)
class RuntimeConfig:
    seed: int  # master seed; every random source derives from it
    device: DeviceName = "auto"
    determinism: Determinism = "strict"  # strict: deterministic kernels (slower on GPU)
    threads: int = 2  # CPU threads; fixed because float reductions depend on the thread count


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


def configure(cfg: RuntimeConfig) -> torch.device:
    """Apply seeding, thread count and determinism; return the device to use."""
    device = resolve_device(cfg.device)
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
    import hashlib

    text = ":".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")
