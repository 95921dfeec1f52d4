"""Portable numerics: CPU results that do not depend on which x86-64 machine computes them.

The same code and inputs give other floats on another CPU because the libraries choose their
kernels at run time from the CPU's instruction sets and vendor, and those kernels sum in other
orders or use other approximations. Measured on one AMD EPYC (AVX2) and, under `qemu-x86_64`, on
an emulated Intel Haswell (`scripts/cross_machine.py`): ATen's vectorised kernels (AVX2 or
AVX-512), oneDNN's convolutions (same), MKL's GEMM and vector maths (`exp`, `log`), whose AVX2
branch is Intel-only (on AMD, `MKL_CBWR=AVX2` falls back to the automatic branch), and the
OpenBLAS of numpy and scipy (the matrix square root of FID).

In the portable mode (`runtime.numerics: portable`, the default) the project pins each of them to
a branch that every x86-64 CPU with AVX2 runs the same way, through the libraries' own
environment variables, before they load (`apply`, which `cgen` calls before anything imports
torch or numpy). `native` leaves the libraries free to pick the machine's fastest kernels.

Two things no variable pins, and the code avoids instead:
- MKL's vector square root (what `torch.sqrt` runs on the CPU) is not correctly rounded and
  differs between CPUs even in MKL's compatible branch: code that needs a square root of a
  tensor uses `sqrt` below (IEEE division and square root instructions, the same everywhere),
  and Adam runs fused (`adam`: its own kernel, with the IEEE instruction).
- the thread count changes how reductions are split: `runtime.threads` fixes it.

This module imports nothing heavy: `apply` must run before torch is imported.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Literal

Numerics = Literal["portable", "native"]

# variable -> value, each with why (the library reads it when it loads or first runs)
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's kernels: the AVX2 ones, also where AVX-512 exists
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (convolutions): at most the AVX2 kernels
    "MKL_CBWR": "COMPATIBLE",  # MKL's vendor-neutral branch (its AVX2 branch is Intel-only)
    "OPENBLAS_CORETYPE": "Haswell",  # numpy/scipy's OpenBLAS: the AVX2 kernels on every CPU
    "OPENBLAS_NUM_THREADS": "1",  # its thread count is the CPU count otherwise
}
# What ATen must report in the portable mode (torch.backends.cpu.get_cpu_capability())
PORTABLE_CAPABILITY = "AVX2"
# MKL's branch codes (mkl_cbwr.h), for the fingerprint
MKL_BRANCHES = {1: "off", 2: "auto", 3: "compatible", 4: "sse2", 6: "ssse3", 7: "sse4_1",
                8: "sse4_2", 9: "avx", 10: "avx2", 12: "avx512"}  # fmt: skip
# Fingerprint keys that decide the numbers (the rest describes the machine for a reader)
NUMERIC_KEYS = (
    "numerics", "arch", "aten_capability", "mkl_branch", "onednn_max_isa", "openblas_core",
    "threads", "torch", "numpy", "scipy", "torch_fidelity",
)  # fmt: skip


def apply(mode: Numerics, env: dict[str, str] | None = None) -> None:
    """Set the pins of `mode` in `env` (os.environ by default), overriding the caller's shell:
    the portable mode is the project's, not the user's. `native` leaves `env` as it is."""
    target = os.environ if env is None else env
    if mode == "portable":
        target.update(PORTABLE_ENV)


def sqrt(x):
    """Element-wise square root of a tensor that is the same on every CPU: 1 / rsqrt(x) (ATen's
    own kernel: IEEE square root and division; sqrt(0) = 1 / inf = 0). `torch.sqrt` on the CPU
    runs MKL's vector square root, which is off by one ulp for about a sixth of float32 inputs,
    differently on different CPUs."""
    import torch

    return torch.rsqrt(x).reciprocal()


def adam(params, lr: float, **kwargs):
    """torch.optim.Adam with its fused kernel (CPU and CUDA), whose square root is the IEEE
    instruction; the default for-each Adam calls MKL's vector square root (see `sqrt`)."""
    import torch

    return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)


def mkl_branch() -> str:
    """The branch MKL runs (its conditional numerical reproducibility setting), or 'unknown'."""
    import ctypes

    import torch

    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        code = int(lib.mkl_serv_cbwr_get(1))  # MKL_CBWR_BRANCH
    except (OSError, AttributeError):
        return "unknown"
    return MKL_BRANCHES.get(code, str(code))


def openblas_core() -> str:
    """The kernel set numpy's OpenBLAS runs, or 'unknown'."""
    try:
        import numpy  # noqa: F401  (loads OpenBLAS, so threadpoolctl can find it)
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown"
    info = threadpool_info()
    cores = [i.get("architecture") for i in info if i.get("internal_api") == "openblas"]
    return ",".join(sorted({str(c) for c in cores})) or "none"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def cpu_description() -> dict[str, str]:
    """The CPU as a reader knows it: model, vendor and the widest vector instructions it has."""
    info: dict[str, str] = {}
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("model name", "vendor_id", "flags") and key not in info:
                info[key] = value.strip()
    except OSError:
        pass
    flags = set(info.get("flags", "").split())
    widest = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "other")
    return {
        "cpu": info.get("model name", platform.processor() or "unknown"),
        "vendor": info.get("vendor_id", "unknown"),
        "widest_vector_isa": widest,
    }


def fingerprint(mode: Numerics, threads: int) -> dict[str, str]:
    """What decides this process's CPU numbers (NUMERIC_KEYS) plus the CPU's description.
    Call after torch is imported and `runtime.threads` applied."""
    import torch

    return {
        "numerics": mode,
        "arch": platform.machine(),
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_branch": mkl_branch(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
        "openblas_core": openblas_core(),
        "threads": str(threads),
        "torch": torch.__version__,
        "numpy": version("numpy"),
        "scipy": version("scipy"),
        "torch_fidelity": version("torch-fidelity"),
        **cpu_description(),
    }


def problems(print_: dict[str, str]) -> list[str]:
    """Why a portable-mode fingerprint will not give the numbers other machines give (empty
    when the pins took effect). A machine without AVX2, or not x86-64, cannot run the kernels
    the pins name; the libraries then fall back to others."""
    if print_["numerics"] != "portable":
        return []
    out = []
    if print_["arch"] != "x86_64":
        out.append(f"the CPU is {print_['arch']}, not x86-64: the pins name x86 kernels")
    if print_["aten_capability"] != PORTABLE_CAPABILITY:
        out.append(f"ATen runs its {print_['aten_capability']} kernels, not AVX2")
    if print_["mkl_branch"] not in ("compatible", "unknown"):
        out.append(f"MKL runs its {print_['mkl_branch']} branch, not the compatible one")
    return out


def numeric_part(print_: dict[str, str]) -> dict[str, str]:
    return {k: print_.get(k, "unrecorded") for k in NUMERIC_KEYS}


def differences(a: dict[str, str], b: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Numeric keys whose values differ between two fingerprints: key -> (a's, b's)."""
    na, nb = numeric_part(a), numeric_part(b)
    return {k: (na[k], nb[k]) for k in NUMERIC_KEYS if na[k] != nb[k]}
