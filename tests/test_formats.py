"""The readers of untrusted dataset files (pipeline.formats, through pipeline.data.prepare): each
crafted bad input is refused with one line naming the file and what is wrong, and no pickle runs
code."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat
from support import data_config

from pipeline.data import DataConfig, prepare
from pipeline.errors import DataError
from pipeline.formats import (
    CIFAR10_CLASSES,
    CIFAR10_OFFICIAL,
    read_cifar10,
    read_idx,
    read_svhn,
    write_cifar10,
    write_mnist_like,
)


def cfg(**kw) -> DataConfig:
    return data_config(**{"name": "mnist", "image_size": 8, **kw})


def refused(match: str, run, *args, **kw) -> str:
    """The DataError `run(*args)` raises: one line matching `match`."""
    with pytest.raises(DataError, match=match) as info:
        run(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


def pairs(n: int, size: int = 28, channels: int | None = None, classes: int = 10):
    gen = torch.Generator().manual_seed(n)
    shape = (n, size, size) if channels is None else (n, channels, size, size)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8), torch.arange(n) % classes


# ---------------------------------------------------------------- idx (MNIST, Fashion-MNIST)


def mnist(tmp_path: Path, test_labels: torch.Tensor | None = None, gz: bool = False) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    test = pairs(10)
    write_mnist_like(raw, pairs(20), (test[0], test[1] if test_labels is None else test_labels), gz)
    return raw


def test_idx_header_of_zero_dimensions_is_refused(tmp_path):
    raw = mnist(tmp_path)
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 0, 7]))  # magic, ndim 0, one value
    msg = refused("idx header says 0 dimensions, expected 3", prepare, cfg(root=str(tmp_path)))
    assert str(path) in msg
    refused("idx header says 0 dimensions, expected at least 1", read_idx, path)


@pytest.mark.parametrize("damage", ["cut in half", "garbled"])
def test_damaged_gz_is_refused(tmp_path, damage):
    raw = mnist(tmp_path, gz=True)
    path = raw / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    # cut: EOFError; an invalid deflate block after a bare 10-byte gzip header: zlib.error
    bad = data[: len(data) // 2] if damage == "cut in half" else gzip.compress(b"")[:10] + b"\xff"
    path.write_bytes(bad)
    error = "EOFError" if damage == "cut in half" else "zlib.error: Error -3"
    msg = refused(rf"unreadable idx file \({error}", prepare, cfg(root=str(tmp_path)))
    assert str(path) in msg


def test_a_gzip_bomb_is_read_no_further_than_its_header_says(tmp_path, monkeypatch):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (2, 2, 2))
    path.write_bytes(gzip.compress(header + bytes(64 << 20)))  # 64 MiB of zeros in 64 KiB
    reads = []
    real_open = gzip.open

    def counting_open(*args, **kwargs):
        fh = real_open(*args, **kwargs)
        read = fh.read
        fh.read = lambda n=-1: reads.append(n) or read(n)
        return fh

    monkeypatch.setattr(gzip, "open", counting_open)
    refused(r"idx header says \[2, 2, 2\] but holds more values", read_idx, path)
    assert -1 not in reads and sum(reads) <= 4 + 12 + 9  # header, sizes, 8 values and one more


@pytest.mark.parametrize(("split", "label"), [("t10k", 57), ("train", 10)])
def test_mnist_label_out_of_range_on_either_split(tmp_path, split, label):
    raw = tmp_path / "MNIST" / "raw"
    train, test = pairs(20), pairs(10)
    bad = train if split == "train" else test
    bad[1][3] = label
    write_mnist_like(raw, train, test)
    msg = refused(f"label {label} is outside 0..9", prepare, cfg(root=str(tmp_path)))
    assert f"{split}-labels-idx1-ubyte" in msg


def test_torchvision_loader_refuses_a_label_out_of_range(tmp_path):
    labels = torch.arange(10) % 10
    labels[0] = 57
    mnist(tmp_path, test_labels=labels)  # torchvision reads the plain files, no md5 for MNIST
    msg = refused(
        "label 57 is outside 0..9", prepare, cfg(root=str(tmp_path), loader="torchvision")
    )
    assert "mnist test split (torchvision)" in msg and str(tmp_path) in msg


# ---------------------------------------------------------------- CIFAR-10 pickles


def cifar(tmp_path: Path, classes: int = 10) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder, pairs(20, 32, 3, classes), pairs(10, 32, 3, classes))
    return folder


class Exploit:
    """Unpickling this object runs a shell command: the classic pickle code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("name", ["data_batch_1", "test_batch", "batches.meta"])
@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar_pickle_cannot_run_code(tmp_path, name, protocol):
    folder = cifar(tmp_path)
    marker = tmp_path / "pwned"
    payload = {b"data": Exploit(marker), b"labels": [0], b"label_names": Exploit(marker)}
    (folder / name).write_bytes(pickle.dumps(payload, protocol=protocol))
    with pytest.raises(DataError) as info:
        read_cifar10(folder, train=name != "test_batch")
    assert not marker.exists()
    msg = str(info.value)
    assert msg.startswith(f"{folder / name}: refused to unpickle global ")
    assert "system" in msg and "\n" not in msg


class HugeEmptyArray:
    """Pickles as numpy's array constructor asked for 10^7 x 3072 uninitialised bytes (30 GB) in
    a few dozen bytes of file: what a crafted batch could make `torch.cat` touch."""

    def __reduce__(self):
        reconstruct = np.zeros(0, np.uint8).__reduce__()[0]
        return (reconstruct, (np.ndarray, (10**7, 3072), b"B"))


class ObjectArray:
    def __reduce__(self):
        return (np.dtype, ("O",))


@pytest.mark.parametrize(
    ("payload", "what"),
    [(HugeEmptyArray(), "an array built as"), (ObjectArray(), "an array of objects")],
)
def test_cifar_pickle_cannot_make_arrays_its_bytes_do_not_hold(tmp_path, payload, what):
    folder = cifar(tmp_path)
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": payload, b"labels": [0]}, 2))
    with pytest.raises(DataError, match=f"data_batch_2: refused to unpickle {what}"):
        read_cifar10(folder, train=True)


class Py2Pickler(pickle._Pickler):
    """What Python 2's cPickle wrote at protocol 2, as in the official CIFAR-10 files: str as
    BINSTRING, memo from 1, numpy arrays by numpy.core.multiarray._reconstruct."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_str(self, obj: str | bytes) -> None:
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        short = len(raw) < 256
        size = bytes([len(raw)]) if short else struct.pack("<i", len(raw))
        self.write((pickle.SHORT_BINSTRING if short else pickle.BINSTRING) + size + raw)
        self.memoize(obj)

    dispatch[bytes] = dispatch[str] = save_str

    def memoize(self, obj) -> None:
        self.write(self.put(len(self.memo) + 1))
        self.memo[id(obj)] = len(self.memo) + 1, obj

    @staticmethod
    def dumps(obj) -> bytes:
        buf = io.BytesIO()
        Py2Pickler(buf, protocol=2).dump(obj)
        return buf.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def test_cifar_files_in_the_official_format_are_read(tmp_path, caplog):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    meta = {"num_cases_per_batch": 10000, "label_names": list(CIFAR10_CLASSES), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(Py2Pickler.dumps(meta))  # the official file, to the byte
    _, md5 = CIFAR10_OFFICIAL["batches.meta"]
    assert hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest() == md5
    rows = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        batch = {"batch_label": "batch", "labels": [3, 9], "data": rows, "filenames": ["a", "b"]}
        (folder / name).write_bytes(Py2Pickler.dumps(batch))
    with caplog.at_level(logging.WARNING, logger="pipeline.formats"):
        images, labels, classes = read_cifar10(folder, train=True)
    assert classes == list(CIFAR10_CLASSES) and labels.tolist() == [3, 9] * 5
    assert torch.equal(images[1].flatten(), torch.as_tensor(rows[1]))
    assert "data_batch_1" in caplog.text and "batches.meta" not in caplog.text


def test_cifar_file_of_the_official_size_must_have_its_md5(tmp_path):
    folder = cifar(tmp_path)
    size, _ = CIFAR10_OFFICIAL["batches.meta"]
    meta = pickle.dumps({b"label_names": [b"a", b"b"]}, protocol=2)
    (folder / "batches.meta").write_bytes(meta + b"\0" * (size - len(meta)))  # valid, padded
    msg = refused(
        "has the size of the official CIFAR-10 batches.meta .158 bytes. but not its md5",
        prepare,
        cfg(name="cifar10", root=str(tmp_path), image_size=32),
    )
    assert str(folder / "batches.meta") in msg


def test_cifar_files_of_other_sizes_are_read_with_a_warning(tmp_path, caplog):
    folder = cifar(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pipeline.formats"):
        images, labels, classes = read_cifar10(folder, train=True)
    assert images.shape == (20, 3, 32, 32) and classes[0] == "airplane"
    assert "data_batch_1" in caplog.text and "not the official CIFAR-10 files" in caplog.text


def batch(data, labels) -> dict:
    return {b"data": data, b"labels": labels, b"batch_label": b"crafted"}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (batch(np.zeros((2, 3000), np.uint8), [0, 1]), r"rows of 3072 values .*uint8 \(2, 3000\)"),
        (batch(np.zeros((2, 3072)), [0, 1]), r"must be uint8 rows .*got float64"),
        ([np.zeros((2, 3072), np.uint8), [0, 1]], r"not a CIFAR-10 batch .*got a list$"),
        (
            {b"data": np.zeros((2, 3072), np.uint8)},
            r"not a CIFAR-10 batch .*got a dict of b'data'$",
        ),
        (batch(np.zeros((2, 3072), np.uint8), [0, -1]), r"label -1 is outside 0..9"),
        (batch(np.zeros((2, 3072), np.uint8), [0, 10]), r"label 10 is outside 0..9"),
        (batch(np.zeros((2, 3072), np.uint8), [0, 200]), r"label 200 is outside 0..9"),
        (batch(np.zeros((2, 3072), np.uint8), [0, "1"]), r"b'labels' must be a list of integers"),
    ],
)
def test_bad_cifar_batch_is_refused(tmp_path, content, match):
    folder = cifar(tmp_path)
    (folder / "data_batch_3").write_bytes(pickle.dumps(content))
    msg = refused(match, prepare, cfg(name="cifar10", root=str(tmp_path), image_size=32))
    assert msg.startswith(f"{folder / 'data_batch_3'}: ")


def test_cifar_test_label_out_of_range_is_refused(tmp_path):
    folder = cifar(tmp_path)
    (folder / "test_batch").write_bytes(pickle.dumps(batch(np.zeros((2, 3072), np.uint8), [1, 99])))
    msg = refused("label 99 is outside 0..9", prepare, cfg(name="cifar10", root=str(tmp_path)))
    assert msg.startswith(f"{folder / 'test_batch'}: ")


def test_cifar_labels_beyond_the_meta_class_names_are_refused(tmp_path):
    folder = cifar(tmp_path)  # labels reach 9
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b", b"c"]}))
    msg = refused(
        r"label 3 is outside 0..2 \(3 class names in batches.meta\)", read_cifar10, folder, True
    )
    assert msg.startswith(f"{folder / 'data_batch_1'}: ")


# ---------------------------------------------------------------- SVHN .mat


def svhn(tmp_path: Path, x=None, y=None, split: str = "train") -> Path:
    rng = np.random.default_rng(0)
    for s, n in (("train", 20), ("test", 10)):
        images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        labels = (np.arange(n) % 10 + 1).reshape(-1, 1)
        if s == split:
            images, labels = (images if x is None else x), (labels if y is None else y)
        savemat(tmp_path / f"{s}_32x32.mat", {"X": images, "y": labels})
    return tmp_path / f"{split}_32x32.mat"


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (np.zeros((32, 32, 3), np.uint8), [[1]], r"X must be uint8 \(32, 32, 3, N\), got uint8"),
        (np.full((32, 32, 3, 2), 300.0), [[1], [2]], r"X must be uint8 .*got float64"),
        (np.zeros((32, 32, 3, 2), np.uint8), [[1], [100]], "label 100 is outside SVHN's 1..10"),
        (np.zeros((32, 32, 3, 2), np.uint8), [[0], [1]], "label 0 is outside SVHN's 1..10"),
    ],
)
@pytest.mark.parametrize("split", ["train", "test"])
def test_bad_svhn_arrays_are_refused(tmp_path, x, y, match, split):
    path = svhn(tmp_path, x, np.asarray(y, np.uint8), split)
    msg = refused(match, prepare, cfg(name="svhn", root=str(tmp_path), image_size=32))
    assert msg.startswith(f"{path}: ")


@pytest.mark.parametrize("kind", ["v7.3", "empty"])
def test_unreadable_svhn_mat_is_refused(tmp_path, kind):
    path = svhn(tmp_path)
    if kind == "v7.3":  # the version field of the 128-byte header: 0x0200 is an HDF5 file
        raw = bytearray(path.read_bytes())
        raw[124:128] = b"\x00\x02IM"
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(b"")
    msg = refused("unreadable SVHN .mat file", read_svhn, tmp_path, True)
    assert msg.startswith(f"{path}: ")


# ---------------------------------------------------------------- folder images


def png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height RGB pixels, with no pixel data."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def folder(root: Path, size: int = 8) -> None:
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (size, size), (i * 40, 100, 200)).save(root / c / f"{i}.png")


@pytest.mark.parametrize(
    "side", [20000, 10000]
)  # PIL: an error above 2x its limit, a warning below
def test_decompression_bomb_is_refused(tmp_path, side):
    folder(tmp_path)
    bomb = tmp_path / "dog" / "bomb.png"
    png_header(bomb, side, side)
    msg = refused("image too large to decode", prepare, cfg(name="folder", root=str(tmp_path)))
    assert msg.startswith(f"{bomb}: ")


def test_small_images_upscaled_more_than_twice_are_warned_about(tmp_path, caplog):
    for size in (3, 4):  # 3 -> 8 is more than twice on a side, 4 -> 8 is not
        folder(tmp_path / str(size), size)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="pipeline.data"):
            prepare(cfg(name="folder", root=str(tmp_path / str(size)), test_fraction=0.34))
        assert ("as small as 3 px on a side are upscaled to 8x8" in caplog.text) == (size == 3)


def test_small_idx_images_are_warned_about(tmp_path, caplog):
    mnist(tmp_path)
    with caplog.at_level(logging.WARNING, logger="pipeline.data"):
        prepare(cfg(root=str(tmp_path), image_size=64))
    assert "mnist: images as small as 28 px on a side are upscaled to 64x64" in caplog.text
