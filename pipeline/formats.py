"""The on-disk formats of the real datasets, read and written in plain Python: LeCun's idx
(MNIST, Fashion-MNIST; plain or gzipped), CIFAR-10's python pickles (with `batches.meta`) and
SVHN's `.mat`. Every reader returns uint8 images (N, C, H, W) and int64 labels (N,).

The files are untrusted input: a reader checks dtype, shape and label range before any reshape or
cast, and refuses anything else with one line (DataError) naming the file and what is wrong. No
pickle can run code: CIFAR-10's are read by an unpickler that builds numpy arrays and plain
containers only, and a file of an official file's size must have its published md5.

The writers make small files in the same formats, so a test (or a GPU check on a bare machine)
runs the real reading path without the real data: torchvision's loaders check the md5 of the
official files and refuse such files.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import logging
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.errors import DataError

log = logging.getLogger(__name__)

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")  # fmt: skip

IDX_TYPES = {0x08: torch.uint8}  # the idx "unsigned byte" type, the only one MNIST files use

# The official files of cifar-10-python.tar.gz: (size in bytes, md5). The md5s are torchvision's
# (torchvision/datasets/cifar.py); a file of one of these sizes claims to be the official one.
CIFAR10_OFFICIAL = {
    "data_batch_1": (31035704, "c99cafc152244af753f735de768cd75f"),
    "data_batch_2": (31035320, "d4bba439e000b95fd0a9bffe97cbabec"),
    "data_batch_3": (31035999, "54ebc095f3ab1f0389bbae665268c751"),
    "data_batch_4": (31035696, "634d18415352ddfa80567beed471001a"),
    "data_batch_5": (31035623, "482c414d41f54cd18b22e5b47cb7c3cb"),
    "test_batch": (31035526, "40351d587109b95175f43aff81a1287e"),
    "batches.meta": (158, "5ff9c542aee3614f3951f8cda6e48888"),
}
CIFAR10_ROW = 3 * 32 * 32  # one image per row, channel-major: 1024 red, 1024 green, 1024 blue
SVHN_LABELS = range(1, 11)  # SVHN format 2 labels the digits 1..9 as themselves and 0 as 10


_NDARRAY = ("numpy", "ndarray")  # what a pickle's ndarray global unpickles to: a name, not a type


def _numpy_globals(path: Path) -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR pickle may name: what a numpy array needs. The official files
    (Python 2 cPickle) name numpy.core.*, numpy 2 writes numpy._core.*: the same functions, taken
    from numpy's own pickling so no private module is imported. The array constructor is wrapped:
    numpy pickles an array as an empty one whose state then sets its shape and bytes (checked
    against each other by numpy), so a pickle cannot ask for a large uninitialised array, and
    object dtypes (arrays of pickled objects) are refused."""
    reconstruct = np.zeros(0, np.uint8).__reduce__()[0]
    scalar = np.int64(0).__reduce__()[0]  # a numpy scalar label, rebuilt from its bytes

    def refuse(what: str) -> DataError:
        return DataError(f"{path}: refused to unpickle {what} (a CIFAR-10 file holds numpy "
                         "arrays of numbers, lists and dicts only)")  # fmt: skip

    def empty_array(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype != _NDARRAY or tuple(shape) != (0,):
            raise refuse(f"an array built as {subtype!r} of shape {shape!r}")
        return reconstruct(np.ndarray, (0,), dtype)

    def number_dtype(*args: Any) -> np.dtype:
        dtype = np.dtype(*args)
        if dtype.hasobject:
            raise refuse("an array of objects")
        return dtype

    allowed: dict[tuple[str, str], Any] = {_NDARRAY: _NDARRAY, ("numpy", "dtype"): number_dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = empty_array
        allowed[(module, "scalar")] = scalar
    # a bytes object in a protocol-2 pickle written by Python 3 (torch's weights_only allows it)
    allowed[("_codecs", "encode")] = codecs.encode
    for module in ("builtins", "__builtin__"):  # plain containers Python 2 pickles by name
        allowed.update({(module, "set"): set, (module, "frozenset"): frozenset})
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """pickle.Unpickler that builds numpy arrays and plain containers only: any other global
    (os.system in a crafted __reduce__ included) is refused before it is looked up."""

    def __init__(self, raw: bytes, path: Path) -> None:
        super().__init__(io.BytesIO(raw), encoding="bytes")
        self.path = path
        self.allowed = _numpy_globals(path)

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self.path}: refused to unpickle global {module}.{name} (a CIFAR-10 file holds "
                "numpy arrays, lists and dicts only)"
            ) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _read_cifar_pickle(path: Path) -> tuple[Any, bool]:
    """The object pickled in CIFAR-10 file `path`, and whether the file is the official one. A
    file of the official size but another md5 is refused; any other file is read with the
    restricted unpickler."""
    if not path.is_file():
        raise FileNotFoundError(path)
    raw = path.read_bytes()
    size, md5 = CIFAR10_OFFICIAL.get(path.name, (None, None))
    official = len(raw) == size
    if official and hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5:
        raise DataError(
            f"{path}: has the size of the official CIFAR-10 {path.name} ({size} bytes) but not "
            f"its md5 {md5}; the file is altered or corrupt, download it again"
        )
    try:
        return _RestrictedUnpickler(raw, path).load(), official
    except DataError:
        raise
    except Exception as exc:  # a crafted pickle can raise nearly anything; all of it is the file's
        raise DataError(
            f"{path}: unreadable cifar10 file ({type(exc).__name__}: {_one_line(exc)})"
        ) from None


def read_idx(path: Path, ndim: int | None = None) -> torch.Tensor:
    """An idx file (LeCun's MNIST format), plain or gzipped: magic 0 0 type ndim, big-endian
    int32 sizes, then the data. With `ndim`, the file must have that many dimensions. The header
    is read first and the data in blocks, never past what it announces: a gzip bomb stops there."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in IDX_TYPES:
                raise DataError(f"{path}: not an idx file of unsigned bytes (bad magic number)")
            dims_in_file = head[3]
            if dims_in_file == 0 or (ndim is not None and dims_in_file != ndim):
                expected = ndim if ndim is not None else "at least 1"
                raise DataError(
                    f"{path}: idx header says {dims_in_file} dimensions, expected {expected}"
                )
            sizes = fh.read(4 * dims_in_file)
            if len(sizes) < 4 * dims_in_file:
                raise DataError(f"{path}: idx header cut short ({4 + len(sizes)} bytes, needs "
                                f"{4 + 4 * dims_in_file})")  # fmt: skip
            dims = [int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(dims_in_file)]
            count = math.prod(dims)
            data = bytearray()
            while len(data) <= count and (block := fh.read(min(1 << 20, count + 1 - len(data)))):
                data += block
    except (OSError, EOFError, zlib.error) as exc:  # EOFError, zlib.error: a .gz cut or garbled
        kind = "zlib.error" if isinstance(exc, zlib.error) else type(exc).__name__
        raise DataError(f"{path}: unreadable idx file ({kind}: {_one_line(exc)})") from None
    if len(data) != count:
        held = f"{len(data)}" if len(data) <= count else "more"
        raise DataError(f"{path}: idx header says {dims} but holds {held} values")
    return torch.frombuffer(data, dtype=torch.uint8).view(*dims)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(folder / name)


def check_labels(
    labels: torch.Tensor, num_classes: int, where: Path | str, names_in: str | None = None
) -> None:
    """Refuse a label outside [0, num_classes), naming `where` (the file or folder) and, with
    `names_in`, the file the class names come from."""
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if len(bad):
        names = f"{num_classes} class names" + (f" in {names_in}" if names_in else "")
        raise DataError(
            f"{where}: label {bad[0].item()} is outside 0..{num_classes - 1} ({names}); "
            f"{len(bad)} label(s) out of range"
        )


def mnist_files(folder: Path, train: bool) -> tuple[Path, Path]:
    """The (images, labels) idx files of MNIST's training or test split, plain or gzipped."""
    prefix = "train" if train else "t10k"
    images = _find(folder, f"{prefix}-images-idx3-ubyte")
    return images, _find(folder, f"{prefix}-labels-idx1-ubyte")


def read_mnist_like(
    folder: Path, train: bool, num_classes: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST/Fashion-MNIST's images (N, 1, H, W) and labels (N,) in [0, num_classes)."""
    images_path, labels_path = mnist_files(folder, train)
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1).long()
    if len(images) != len(labels):
        raise DataError(
            f"{labels_path}: {len(labels)} labels for the {len(images)} images of {images_path}"
        )
    check_labels(labels, num_classes, labels_path)
    return images[:, None].contiguous(), labels


def _cifar_batch(path: Path, obj: Any, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, 32, 32) and labels of one unpickled CIFAR-10 batch, checked before use."""
    if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
        keys = ", ".join(sorted(map(repr, obj))) if isinstance(obj, dict) else None
        got = f"a dict of {keys or 'nothing'}" if keys is not None else f"a {type(obj).__name__}"
        raise DataError(
            f"{path}: not a CIFAR-10 batch (a dict with b'data' and b'labels'), got {got}"
        )
    data = obj[b"data"]
    rows = isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
    if not rows or data.shape[1] != CIFAR10_ROW:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(
            f"{path}: b'data' must be uint8 rows of {CIFAR10_ROW} values (3x32x32), got {got}"
        )
    labels = np.asarray(obj[b"labels"]) if isinstance(obj[b"labels"], list | np.ndarray) else None
    if labels is None or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{path}: b'labels' must be a list of integers")
    if len(labels) != len(data):
        raise DataError(f"{path}: {len(labels)} labels for {len(data)} images")
    labels_t = torch.as_tensor(labels.astype(np.int64))
    check_labels(labels_t, num_classes, path, "batches.meta")
    return torch.as_tensor(data).view(-1, 3, 32, 32), labels_t


def cifar10_files(folder: Path, train: bool) -> list[Path]:
    """The batch files of CIFAR-10's training or test split, then batches.meta."""
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    return [folder / name for name in [*names, "batches.meta"]]


def read_cifar10(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """CIFAR-10's python version: pickled dicts with b'data' (N, 3072) and b'labels', the class
    names in batches.meta; no pickle can run code here (see _RestrictedUnpickler)."""
    *batches, meta_path = cifar10_files(folder, train)
    meta, official = _read_cifar_pickle(meta_path)
    not_official = [] if official else [meta_path.name]
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names:
        raise DataError(f"{meta_path}: not CIFAR-10's batches.meta (a dict with b'label_names')")
    classes = [n.decode(errors="replace") if isinstance(n, bytes) else str(n) for n in names]
    images, labels = [], []
    for path in batches:
        obj, official = _read_cifar_pickle(path)
        not_official += [] if official else [path.name]
        x, y = _cifar_batch(path, obj, len(classes))
        images.append(x)
        labels.append(y)
    if not_official:
        log.warning(
            "%s: not the official CIFAR-10 files (sizes differ from the published ones): %s; "
            "read with the restricted unpickler",
            folder,
            ", ".join(not_official),
        )
    return torch.cat(images), torch.cat(labels), classes


def svhn_file(folder: Path, train: bool) -> Path:
    return folder / f"{'train' if train else 'test'}_32x32.mat"


def read_svhn(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """SVHN format 2: a .mat with uint8 X (32, 32, 3, N) and y (N, 1) in 1..10, where 10 is the
    digit 0; returns labels 0..9."""
    from scipy.io import loadmat

    path = svhn_file(folder, train)
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        mat = loadmat(path)
    except Exception as exc:  # scipy raises many types on a bad file (v7.3/HDF5, empty, cut)
        raise DataError(
            f"{path}: unreadable SVHN .mat file ({type(exc).__name__}: {_one_line(exc)}); "
            "format 2 is a MATLAB v5 file"
        ) from None
    x, y = mat.get("X"), mat.get("y")
    if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
        raise DataError(f"{path}: an SVHN file holds the arrays X and y")
    # pixels checked before any reshape or cast: a cast would wrap 300.0 to 44
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{path}: X must be uint8 (32, 32, 3, N), got {x.dtype} {x.shape}")
    n = x.shape[3]
    if y.size != n or y.dtype.kind not in "iu" or y.ndim > 2:
        raise DataError(f"{path}: y must be {n} integer labels (N, 1), got {y.dtype} {y.shape}")
    y = y.reshape(-1).astype(np.int64)
    bad = y[(y < SVHN_LABELS.start) | (y >= SVHN_LABELS.stop)]
    if len(bad):
        raise DataError(
            f"{path}: label {bad[0]} is outside SVHN's 1..10 (10 is the digit 0); "
            f"{len(bad)} label(s) out of range"
        )
    images = torch.as_tensor(x).permute(3, 2, 0, 1).contiguous()  # (H, W, C, N) -> (N, C, H, W)
    labels = torch.as_tensor(np.where(y == 10, 0, y))  # SVHN's 10 is the digit 0
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
        batch = {b"data": x.flatten(1).numpy(), b"labels": y.tolist(),
                 b"batch_label": name.encode()}  # fmt: skip
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {b"label_names": [c.encode() for c in classes]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))
