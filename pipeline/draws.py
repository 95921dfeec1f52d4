"""Random draws from an explicit CPU `torch.Generator`: one implementation of each distribution
the methods share (uniform images, Gamma, Dirichlet), so the same seed gives the same draws on
any device and no method keeps a second random source (numpy) of its own.
"""

from __future__ import annotations

import torch


def uniform_images(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """U(-1, 1) images: JEM's start of a chain."""
    return torch.rand(shape, generator=gen) * 2 - 1


def gamma(conc: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Gamma(conc, 1) draws of the shape of `conc` (Marsaglia & Tsang 2000; for conc < 1 the
    draw of conc + 1 is scaled by U^(1/conc))."""
    boost = conc < 1
    a = torch.where(boost, conc + 1, conc).double()
    d = a - 1 / 3
    c = torch.rsqrt(9 * d)  # not 1 / torch.sqrt: MKL's square root differs between CPUs
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while todo.any():
        z = torch.randn(a.shape, generator=gen, dtype=torch.float64)
        u = torch.rand(a.shape, generator=gen, dtype=torch.float64)
        v = (1 + c * z) ** 3
        ok = (v > 0) & (
            torch.log(u.clamp_min(1e-300))
            < 0.5 * z**2 + d - d * v + d * torch.log(v.clamp_min(1e-300))
        )
        take = todo & ok
        out[take] = (d * v)[take]
        todo &= ~ok
    u = torch.rand(a.shape, generator=gen, dtype=torch.float64)
    return torch.where(boost, out * u.clamp_min(1e-300) ** (1 / conc.double()), out).float()


def dirichlet(alpha: float, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """(n, k) rows from the symmetric Dirichlet(alpha): normalised Gamma draws."""
    g = gamma(torch.full((n, k), float(alpha)), gen)
    return g / g.sum(1, keepdim=True)


def distinct_choices(n: int, pool: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """(n, k) indices into range(pool), distinct within each row."""
    return torch.rand(n, pool, generator=gen).argsort(1)[:, :k]
