"""Resumable training: periodic snapshots of the whole training state, restored on restart.

A snapshot holds every module and optimizer state, the epoch, the history, the explicit
`torch.Generator` and the global torch RNG (dropout draws from it). Restored with the same
parameters (same fingerprint), the remaining epochs replay exactly what an uninterrupted run would
have done, so the final result is bit-identical. Snapshots are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pipeline.dist import writes_files
from pipeline.io import atomic_torch_save

log = logging.getLogger(__name__)


def fingerprint(*parts: object) -> str:
    """Identity of a training run: same parameters and data -> same fingerprint."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Snapshots:
    path: Path | None  # None: no snapshots (nothing to resume from)
    fingerprint: str
    every: int = 1  # epochs between snapshots
    where: str = "training"  # names the run in log lines

    def restore(
        self, objects: Mapping[str, Any], gen: torch.Generator | None = None
    ) -> tuple[int, list[dict[str, float]]]:
        """Load a matching snapshot into `objects` (name -> module/optimizer) and `gen`.

        Returns (epochs already done, their history); (0, []) when there is nothing to resume.
        """
        if self.path is None or not Path(self.path).is_file():
            return 0, []
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != self.fingerprint:
            log.warning("%s: ignoring %s, made with other parameters", self.where, self.path)
            return 0, []
        for name, obj in objects.items():
            obj.load_state_dict(state["objects"][name])
        if gen is not None:
            gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        log.info("%s: resuming after epoch %d (%s)", self.where, state["epoch"], self.path)
        return int(state["epoch"]), list(state["history"])

    def save(
        self,
        done: int,
        total: int,
        objects: Mapping[str, Any],
        history: list[dict[str, float]],
        gen: torch.Generator | None = None,
    ) -> None:
        """Snapshot after `done` of `total` epochs, every `every` epochs (not after the last)."""
        if self.path is None or done % self.every != 0 or done >= total or not writes_files():
            return
        state = {
            "fingerprint": self.fingerprint,
            "epoch": done,
            "objects": {name: obj.state_dict() for name, obj in objects.items()},
            "history": history,
            "gen": gen.get_state() if gen is not None else torch.empty(0, dtype=torch.uint8),
            "torch_rng": torch.get_rng_state(),
        }
        atomic_torch_save(state, Path(self.path))

    def finish(self) -> None:
        """The run completed: its snapshot is no longer needed."""
        if self.path is not None and writes_files():
            Path(self.path).unlink(missing_ok=True)
