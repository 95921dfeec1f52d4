"""Data parallelism through torch.distributed: DDP under `torchrun`, one process per device.

The world comes from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK); without it
there is one process and every function here is the identity, so a single-process run takes
exactly the code path it took before this module existed.

How work is split, so that a run on N processes does the same work as one process:
- training: every rank draws the same global batch (the same permutation, from the same seed) and
  takes its contiguous share of it (`rows`); DDP averages the gradients, so a step sees the whole
  global batch (batch norm statistics stay per rank, as in plain DDP). Per-rank randomness (mixup,
  data noise, dropout) is reseeded with the rank (`reseed_rank`).
- chains (persistent training chains and evaluation sets): every rank makes the random draws of
  the whole chain batch from the same generator and keeps its rows (`Rows`), so
  a chain's noise does not depend on how many processes run it; the advanced chains are gathered,
  and the gathered sample set equals the single-process one.
- outputs: local rank 0 writes files (`writes_files`: every machine gets the same outputs), rank 0
  alone the tracked run (`is_main`).
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass

import torch

from pipeline.errors import ConfigError
from pipeline.runtime import derive_seed


@dataclass(frozen=True)
class Rows:
    """A process's rows [start, stop) of a batch of `total` chains."""

    start: int
    stop: int
    total: int


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int


def world() -> World:
    """This process's place in the run (rank 0 of 1 outside torchrun)."""
    env = os.environ
    return World(
        int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
    )


def is_main() -> bool:
    """Rank 0: the process that writes the tracked run."""
    return world().rank == 0


def writes_files() -> bool:
    """Local rank 0: the process that writes a stage's files on its machine (every rank holds
    the same state, so each machine's workspace gets the same outputs and DVC records the same
    hashes on every node; on one machine, rank 0 alone)."""
    return world().local_rank == 0


def active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def init(backend: str, device: torch.device) -> torch.device:
    """Join the process group when torchrun started several processes; returns the device this
    rank uses (cuda:LOCAL_RANK on GPUs). One process: nothing happens."""
    w = world()
    if w.size == 1 or active():
        return device
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError("runtime.backend: nccl needs CUDA devices; use gloo on CPUs")
    if device.type == "cuda":
        device = torch.device("cuda", w.local_rank)
        torch.cuda.set_device(device)
    _die_with_launcher()
    torch.distributed.init_process_group(backend)
    return device


def _die_with_launcher() -> None:
    """torchrun starts each worker in a session of its own, so a SIGKILLed launcher (a killed
    job, an out-of-memory kill) would leave its workers running, writing outputs of a stage that
    DVC saw fail. On Linux the kernel kills this worker when its launcher dies."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def shutdown(wait: bool = True) -> None:
    """Leave the process group (after the others reach the end too, with `wait`)."""
    if active():
        if wait:
            torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def rows(n: int) -> slice:
    """This rank's contiguous share of n items (torch.tensor_split's split: the first n % size
    ranks get one more)."""
    w = world()
    if not active():
        return slice(0, n)
    base, extra = divmod(n, w.size)
    start = w.rank * base + min(w.rank, extra)
    return slice(start, start + base + (1 if w.rank < extra else 0))


def chain_rows(n: int) -> Rows | None:
    """This rank's rows of a batch of n chains; None in one process (nothing to shard)."""
    if not active():
        return None
    s = rows(n)
    return Rows(s.start, s.stop, n)


def share(part: Rows | None) -> slice:
    """The slice of a batch a process runs (all of it in one process)."""
    return slice(None) if part is None else slice(part.start, part.stop)


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """`model` inside DistributedDataParallel when several processes train, else itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def reseed_rank(seed: int, epoch: int) -> None:
    """After the shared draws of an epoch (its permutation), give each rank its own stream for
    the per-image randomness (mixup, data noise, dropout). One process: nothing changes."""
    if active():
        torch.manual_seed(derive_seed(seed, "epoch", epoch, "rank", world().rank))


def comm_device() -> torch.device:
    """Where collectives' own tensors live: NCCL moves only CUDA tensors."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Every rank's rows of `t` (its `rows(n)` share of n), concatenated in rank order on every
    rank: the whole batch again. One process: `t` itself."""
    if not active():
        return t
    size = world().size
    counts = torch.zeros(size, dtype=torch.long, device=comm_device())
    counts[world().rank] = t.shape[0]
    torch.distributed.all_reduce(counts)
    longest = int(counts.max())
    padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=comm_device())
    padded[: t.shape[0]] = t.to(padded.device)
    parts = [torch.empty_like(padded) for _ in range(size)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([p[: int(c)] for p, c in zip(parts, counts, strict=True)]).to(t.device)


def agree(modules, row: dict[str, float]) -> dict[str, float]:
    """After an epoch: every rank takes rank 0's module buffers (batch-norm statistics, which DDP
    leaves per rank) and rank 0's row of metrics, so all ranks hold, evaluate and write the same
    state. One process: `row` itself."""
    if not active():
        return row
    for m in modules:
        if isinstance(m, torch.nn.Module):
            for b in m.buffers():
                if b.is_floating_point() or b.dtype in (torch.long, torch.int):
                    torch.distributed.broadcast(b.data, 0)
    box = [row]
    torch.distributed.broadcast_object_list(box, 0)
    return box[0]


def sum_over_ranks(values: list[float]) -> list[float]:
    """Element-wise sum over ranks of a list of numbers (identity in one process)."""
    if not active():
        return values
    v = torch.tensor(values, dtype=torch.float64, device=comm_device())
    torch.distributed.all_reduce(v)
    return v.tolist()


def mean_over_ranks(row: dict[str, float]) -> dict[str, float]:
    """Mean over ranks of each value of `row` (an epoch's training metrics, each rank's mean over
    its share): what one process would have logged. One process: `row` itself."""
    if not active():
        return row
    keys = sorted(row)
    means = sum_over_ranks([row[k] for k in keys])
    return {k: m / world().size for k, m in zip(keys, means, strict=True)}
