"""The errors a user can cause and must fix, and their exit codes.

Each carries a one-line message that names what is wrong (a dotted parameter key, a file, a class)
and how to fix it; the CLI prints it and exits with the code below, before any work when it can.
"""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A parameter problem; the message names the dotted key."""


class DataError(ValueError):
    """A dataset or sample-file problem; the message names the file, class or folder."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or made with other parameters."""


class NumericalError(RuntimeError):
    """A NaN/inf appeared; the message names where (stage, round, epoch, step) and the value."""


# 2 = bad parameters (as argparse and typer use for usage errors), 1 = other bad input
EXIT_CODES: dict[type[Exception], int] = {
    ConfigError: 2,
    DataError: 1,
    CheckpointError: 1,
    NumericalError: 1,
}


def exit_code(exc: BaseException) -> int | None:
    """The exit code of a user error, None for anything else (a bug: let it raise)."""
    return next((code for cls, code in EXIT_CODES.items() if isinstance(exc, cls)), None)


def check_finite(value: Any, where: str, what: str = "value") -> None:
    """Raise NumericalError naming `where` if tensor `value` holds a NaN or an inf."""
    import torch

    bad = ~torch.isfinite(value)
    if bad.any():
        raise NumericalError(f"{where}: non-finite {what} {value[bad].flatten()[0].item()}")
