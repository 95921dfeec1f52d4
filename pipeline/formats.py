"""The on-disk formats of the real datasets, read and written in plain Python: LeCun's idx
(MNIST, Fashion-MNIST; plain or gzipped), CIFAR-10's python pickles (with `batches.meta`) and
SVHN's `.mat`. Every reader returns uint8 images (N, C, H, W) and int64 labels (N,).

The writers make small files in the same formats, so a test (or a GPU check on a bare machine)
runs the real reading path without the real data: torchvision's loaders check the md5 of the
official files and refuse such files.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import torch

from pipeline.errors import DataError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")  # fmt: skip

IDX_TYPES = {0x08: torch.uint8}  # the idx "unsigned byte" type, the only one MNIST files use


def read_idx(path: Path) -> torch.Tensor:
    """An idx file (LeCun's MNIST format), plain or gzipped: magic 0 0 type ndim, big-endian
    int32 sizes, then the data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DataError(f"{path}: unreadable idx file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an idx file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    start, count = 4 + 4 * ndim, 1
    for d in dims:
        count *= d
    if len(raw) - start != count:
        raise DataError(f"{path}: idx header says {dims} but holds {len(raw) - start} values")
    return torch.frombuffer(bytearray(raw[start:]), dtype=torch.uint8).view(*dims)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(folder / name)


def read_mnist_like(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if train else "t10k"
    images = read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte")).long()
    if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: {prefix} images {tuple(images.shape)} and labels disagree")
    return images[:, None].contiguous(), labels


def read_cifar10(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """CIFAR-10's python version: pickled dicts with b'data' (N, 3072) and b'labels'."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    images, labels = [], []
    for name in names:
        with open(folder / name, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        images.append(torch.as_tensor(batch[b"data"], dtype=torch.uint8).view(-1, 3, 32, 32))
        labels.append(torch.as_tensor(batch[b"labels"], dtype=torch.long))
    with open(folder / "batches.meta", "rb") as fh:
        meta = pickle.load(fh, encoding="bytes")
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[b"label_names"]]
    return torch.cat(images), torch.cat(labels), classes


def read_svhn(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """SVHN format 2: a .mat with X (32, 32, 3, N) and y (N, 1) where the digit 0 is labelled 10."""
    from scipy.io import loadmat

    path = folder / f"{'train' if train else 'test'}_32x32.mat"
    if not path.is_file():
        raise FileNotFoundError(path)
    mat = loadmat(path)
    images = torch.as_tensor(mat["X"]).permute(3, 2, 0, 1).contiguous().to(torch.uint8)
    labels = torch.as_tensor(mat["y"].reshape(-1).astype("int64")) % 10
    return images, labels


# ---------------------------------------------------------------- writers (small test files)


def write_idx(path: Path, array: torch.Tensor, gz: bool = False) -> Path:
    """`array` (uint8) as an idx file (magic 0 0 8 ndim, big-endian int32 sizes); with `gz`, at
    `path` + '.gz'. Returns the file written."""
    raw = bytes([0, 0, 8, array.dim()]) + b"".join(struct.pack(">i", d) for d in array.shape)
    raw += array.to(torch.uint8).contiguous().numpy().tobytes()
    path = Path(f"{path}.gz") if gz else Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(raw)
    else:
        path.write_bytes(raw)
    return path


def write_mnist_like(
    folder: Path, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
    gz: bool = False,
) -> None:  # fmt: skip
    """MNIST's four idx files in `folder` from (uint8 images (N, 28, 28), labels (N,)) pairs."""
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels.to(torch.uint8), gz)


def write_cifar10(
    folder: Path,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    classes: tuple[str, ...] = CIFAR10_CLASSES,
) -> None:
    """CIFAR-10's python version in `folder`: the training pairs (uint8 (N, 3, 32, 32), labels)
    split over data_batch_1..5, test_batch, and batches.meta with the class names."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = train
    parts = torch.arange(len(images)).tensor_split(5)
    batches = [(f"data_batch_{i + 1}", idx) for i, idx in enumerate(parts)]
    for name, (x, y) in [*((n, (images[i], labels[i])) for n, i in batches), ("test_batch", test)]:
        batch = {b"data": x.reshape(len(x), -1).numpy(), b"labels": y.tolist(),
                 b"batch_label": name.encode()}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [c.encode() for c in classes]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
