"""Checkpoints that carry their own model arguments and the resolved parameters that made them.

Loading always uses `weights_only=True`; a checkpoint made with other model arguments than the
caller expects is refused with the differing key named. One loader serves every kind of network
(classifier, GAN generator, decoder, noise-conditional classifier): the caller passes the builder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from pipeline.errors import CheckpointError
from pipeline.io import atomic_torch_save
from pipeline.models import Classifier, build_model

FORMAT = 1


def save_checkpoint(
    path: Path, model: torch.nn.Module, model_args: dict, config: dict, **extra: Any
) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT,
        "model_args": model_args,
        "state_dict": state,
        "config": config,
        **extra,
    }
    atomic_torch_save(payload, path)


def read_checkpoint(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; run the stage that writes it first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint of this project (format {FORMAT})")
    return payload


def check_args(path: Path, found: dict, expected: dict) -> None:
    """Refuse `found` model args that differ from `expected` in any key `expected` names."""
    for key in sorted(expected):
        if found.get(key) != expected[key]:
            raise CheckpointError(
                f"{path}: made with {key}={found.get(key)!r} but the parameters say "
                f"{key}={expected.get(key)!r}; rerun the stage that writes it (dvc repro)"
            )


def load_module(
    path: Path,
    build: Callable[[dict], torch.nn.Module],
    expected_args: dict | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Any, dict]:
    """Rebuild a network with `build(model_args)` from its checkpoint alone; (eval mode, payload).

    `expected_args` may name only some keys: a checkpoint that differs in one of them was made
    with other parameters and is refused."""
    payload = read_checkpoint(path)
    if expected_args is not None:
        check_args(path, payload["model_args"], expected_args)
    model = build(payload["model_args"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload


def load_classifier(
    path: Path, expected_args: dict | None = None, device: str | torch.device = "cpu"
) -> tuple[Classifier, dict]:
    """A classifier of the registry in `pipeline.models`, rebuilt from its checkpoint."""
    return load_module(path, build_model, expected_args, device)
