"""Image classification data for the search and the final training.

``digits`` (the default) are the 1,797 handwritten 8x8 grey digits that ship with scikit-learn:
no download. ``fashion_mnist`` is Zalando's 70,000 28x28 grey images of clothes in 10 classes,
read from the four gzipped IDX files of the Debian package ``dataset-fashion-mnist``
(`FASHION_MNIST_DIR`) or of another directory; ``input_size`` down-samples them (area
averaging). ``cifar10`` is read from a local directory in the standard CIFAR-10 "python" batch
format (``data_batch_1`` .. ``data_batch_5``, ``test_batch``).

Digits are split train / val / test by a seeded, class-stratified permutation; CIFAR-10 and
Fashion-MNIST keep their official test set as the test part and split their training set into
train / val. The search
sees only the train part (one half trains weights, the other the alphas); the final training uses
train and reports val per epoch; test is read once, for the final accuracy.
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lenna.search.settings import FASHION_MNIST_DIR, FASHION_MNIST_FILES, FASHION_MNIST_NAMES

DATASETS = ("digits", "fashion_mnist", "cifar10")


# IDX magic numbers: two zero bytes, the type (0x08: unsigned byte), the number of dimensions.
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801


CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))


CIFAR_TEST = "test_batch"


CIFAR_MEAN = (0.4914, 0.4822, 0.4465)


CIFAR_STD = (0.2470, 0.2435, 0.2616)


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file or directory."""


@dataclass
class Split:
    """Images (n, channels, height, width), float32, normalised; labels (n,), int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index) -> Split:
        index = torch.as_tensor(index, dtype=torch.int64)
        return Split(self.x[index], self.y[index])


@dataclass
class ImageData:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int

    def sizes(self) -> dict:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def _stratified_parts(y: np.ndarray, shares: dict, seed: int) -> dict[str, np.ndarray]:
    """Indices of each part: every class is permuted with the seed and cut by the shares."""
    rng = np.random.default_rng(seed)
    names = list(shares)
    parts = {name: [] for name in names}
    cuts = np.cumsum([shares[n] for n in names])
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        bounds = np.rint(cuts * len(idx)).astype(int)
        start = 0
        for name, stop in zip(names, bounds, strict=True):
            parts[name].append(idx[start:stop])
            start = stop
    return {name: np.sort(np.concatenate(parts[name])) for name in names}


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, (1797, 8, 8) images of 0..16 and their labels, read from the file
    scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: 64 pixels and the label per row)
    as its ``load_digits`` reads it, without importing scikit-learn (1.5 s of every search and
    final-training job)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("data.dataset: digits ships with scikit-learn, which is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise DatasetError(f"{path}: missing; data.dataset digits reads it (reinstall scikit-learn)")
    table = np.loadtxt(path, delimiter=",")
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def load_digits(split: dict, seed: int) -> ImageData:
    """scikit-learn's digits (`digits_arrays`) as 1x8x8 images scaled to [0, 1] and
    standardised on the train part."""
    images, y = digits_arrays()
    x = images.astype(np.float32)[:, None] / 16.0
    parts = _stratified_parts(y, {k: split[k] for k in ("train", "val", "test")}, seed)
    mean, std = x[parts["train"]].mean(), x[parts["train"]].std()
    x = (x - mean) / std
    made = {k: Split(torch.from_numpy(x[idx]), torch.from_numpy(y[idx])) for k, idx in parts.items()}
    return ImageData("digits", made["train"], made["val"], made["test"], 10)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR batch dictionaries: plain containers and numpy arrays, nothing else."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing (a CIFAR-10 python directory holds {[*CIFAR_TRAIN, CIFAR_TEST]})"
        )
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise DatasetError(f"{path}: not a CIFAR-10 python batch ({type(err).__name__}: {err})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DatasetError(
            f"{path}: data of shape {data.shape} with {len(labels)} labels; expected (n, 3072) and n labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(directory, split: dict, seed: int) -> ImageData:
    """CIFAR-10 from a local python-format directory; train/val from the training batches by the
    ratio of the ``train`` and ``val`` shares, test = the test batch."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"{directory}: no such CIFAR-10 directory")
    batches = [_cifar_batch(directory / name) for name in CIFAR_TRAIN]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    x_test, y_test = _cifar_batch(directory / CIFAR_TEST)
    total = split["train"] + split["val"]
    parts = _stratified_parts(y, {"train": split["train"] / total, "val": split["val"] / total}, seed)
    mean = np.asarray(CIFAR_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CIFAR_STD, dtype=np.float32)[:, None, None]

    def norm(images, labels):
        images = (images.astype(np.float32) / 255.0 - mean) / std
        return Split(torch.from_numpy(images), torch.from_numpy(labels))

    return ImageData(
        "cifar10",
        norm(x[parts["train"]], y[parts["train"]]),
        norm(x[parts["val"]], y[parts["val"]]),
        norm(x_test, y_test),
        10,
    )


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX array of unsigned bytes (gzipped when the name ends in .gz); its magic number and
    its size against its header checked. Errors name the file and how to get the data."""
    if not path.is_file():
        raise DatasetError(
            f"{path}: missing; install the Debian package dataset-fashion-mnist "
            f"(apt-get install dataset-fashion-mnist, files in {FASHION_MNIST_DIR}) or set "
            f"data.fashion_mnist_dir to a directory holding {FASHION_MNIST_NAMES}"
        )
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise DatasetError(
            f"{path}: not a readable gzip file ({err}); reinstall dataset-fashion-mnist"
        ) from None
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != magic:
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise DatasetError(f"{path}: IDX magic number {found!r}, expected {magic:#010x}")
    ndim = magic & 0xFF
    if len(raw) < 4 + 4 * ndim:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise DatasetError(
            f"{path}: {len(body)} bytes of data, the header's shape {shape} needs {int(np.prod(shape))}"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _fashion_part(directory: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file = FASHION_MNIST_FILES[part]
    images = read_idx(directory / images_file, IDX_IMAGES)
    labels = read_idx(directory / labels_file, IDX_LABELS).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{directory / images_file}: images of {images.shape[1:]}, expected 28x28")
    if len(images) != len(labels):
        raise DatasetError(
            f"{directory / images_file}: {len(images)} images but {len(labels)} labels in {labels_file}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{directory / labels_file}: labels outside 0..9")
    return images, labels


def load_fashion_mnist(directory, split: dict, seed: int, input_size: int | None = None) -> ImageData:
    """Fashion-MNIST from its IDX files: train / val from the 60,000 training images by the ratio
    of the ``train`` and ``val`` shares (seeded, class-stratified), test = the official 10,000.
    ``input_size`` down-samples by area averaging; standardised by the train part's statistics."""
    directory = Path(directory)
    x, y = _fashion_part(directory, "train")
    x_test, y_test = _fashion_part(directory, "test")
    total = split["train"] + split["val"]
    parts = _stratified_parts(y, {"train": split["train"] / total, "val": split["val"] / total}, seed)

    def images(raw):
        out = torch.from_numpy(raw.astype(np.float32)[:, None] / 255.0)
        if input_size and input_size != raw.shape[-1]:
            out = torch.nn.functional.interpolate(out, size=(input_size, input_size), mode="area")
        return out

    train = images(x[parts["train"]])
    mean, std = float(train.mean()), float(train.std())

    def norm(raw, labels):
        return Split((images(raw) - mean) / std, torch.from_numpy(labels))

    return ImageData(
        "fashion_mnist",
        Split((train - mean) / std, torch.from_numpy(y[parts["train"]])),
        norm(x[parts["val"]], y[parts["val"]]),
        norm(x_test, y_test),
        10,
    )


def load_data(settings: dict) -> ImageData:
    """The dataset named by the ``data`` config section, each part capped at ``limit`` images
    (a seeded random subset) when the section has one: a number for every part, or one per part
    (``{train: 6000, test: null}``)."""
    name = settings["dataset"]
    if name == "digits":
        data = load_digits(settings["split"], settings["seed"])
    elif name == "cifar10":
        if not settings.get("cifar10_dir"):
            raise DatasetError("data.cifar10_dir: the cifar10 dataset needs a directory")
        data = load_cifar10(settings["cifar10_dir"], settings["split"], settings["seed"])
    elif name == "fashion_mnist":
        data = load_fashion_mnist(
            settings.get("fashion_mnist_dir") or FASHION_MNIST_DIR,
            settings["split"],
            settings["seed"],
            settings.get("input_size"),
        )
    else:
        raise DatasetError(f"data.dataset: unknown dataset {name!r}; known: {list(DATASETS)}")
    limit = settings.get("limit")
    if limit:
        gen = torch.Generator().manual_seed(settings["seed"])
        for part in ("train", "val", "test"):
            split = getattr(data, part)
            cap = limit.get(part) if isinstance(limit, dict) else limit
            if cap and len(split) > cap:
                setattr(data, part, split.subset(torch.randperm(len(split), generator=gen)[:cap]))
    return data


def batches(split: Split, batch_size: int, generator: torch.Generator, shuffle: bool = True):
    """Mini-batches of a split; the last, smaller batch is kept."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield split.x[idx], split.y[idx]
