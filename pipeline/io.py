"""Atomic file output: write to a temporary sibling, fsync, then rename.

A stage killed at any moment (SIGKILL included) leaves either the old file or the new one, never a
half-written file that DVC or a later stage would take as complete; the hidden temporary file such
a kill leaves is removed when the stage runs again (`remove_stale_temps`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@functools.cache
def _umask() -> int:
    """The process umask (read once, at the first write: reading it means setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (datasets and weights files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _temp_pattern(path: Path) -> re.Pattern[str]:
    """The names `atomic_path` gives the temporary files of `path` (mkstemp's 8 random
    characters between the prefix and the suffix)."""
    return re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files a killed writer of `path` left beside it (a SIGKILL skips
    `atomic_path`'s clean-up); returns what it removed. A stage calls it for its outputs before it
    writes: DVC runs one stage per workspace at a time, so no live writer owns them."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _temp_pattern(path)
    stale = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable: a crash after os.replace may otherwise lose it."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` atomically and the
    folder is synced, so the new file survives a crash."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get normal modes
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    with atomic_path(path) as tmp:
        write(tmp)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """torch.save through a file handle: given a path, torch names the zip's root folder after
    the (random) temporary file name, and the bytes would differ from run to run."""
    import torch

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)

    atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def atomic_save_figure(fig: Any, path: Path) -> None:
    """Save a matplotlib figure as PNG with no timestamp metadata (so bytes are reproducible)."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", metadata={"Software": None}))
