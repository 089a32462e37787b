"""Image classification data for the search and the final training.

``digits`` (the default) are the 1,797 handwritten 8x8 grey digits that ship with scikit-learn:
no download. ``cifar10`` is read from a local directory in the standard CIFAR-10 "python" batch
format (``data_batch_1`` .. ``data_batch_5``, ``test_batch``).

Digits are split train / val / test by a seeded, class-stratified permutation; CIFAR-10 keeps its
own test batch as the test part and splits its training batches into train / val. The search
sees only the train part (one half trains weights, the other the alphas); the final training uses
train and reports val per epoch; test is read once, for the final accuracy.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATASETS = ("digits", "cifar10")


# (channels, pixels, classes) of each dataset: the macro settings must agree with them.
DATASET_SHAPES = {"digits": (1, 8, 10), "cifar10": (3, 32, 10)}


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


def load_digits(split: dict, seed: int) -> ImageData:
    """scikit-learn's digits as 1x8x8 images scaled to [0, 1] and standardised on the train part."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = bunch.images.astype(np.float32)[:, None] / 16.0
    y = bunch.target.astype(np.int64)
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


def load_data(settings: dict) -> ImageData:
    """The dataset named by the ``data`` config section, each part capped at ``limit`` images
    (a seeded random subset) when the section has one."""
    name = settings["dataset"]
    if name == "digits":
        data = load_digits(settings["split"], settings["seed"])
    elif name == "cifar10":
        if not settings.get("cifar10_dir"):
            raise DatasetError("data.cifar10_dir: the cifar10 dataset needs a directory")
        data = load_cifar10(settings["cifar10_dir"], settings["split"], settings["seed"])
    else:
        raise DatasetError(f"data.dataset: unknown dataset {name!r}; known: {list(DATASETS)}")
    limit = settings.get("limit")
    if limit:
        gen = torch.Generator().manual_seed(settings["seed"])
        for part in ("train", "val", "test"):
            split = getattr(data, part)
            if len(split) > limit:
                setattr(data, part, split.subset(torch.randperm(len(split), generator=gen)[:limit]))
    return data


def batches(split: Split, batch_size: int, generator: torch.Generator, shuffle: bool = True):
    """Mini-batches of a split; the last, smaller batch is kept."""
    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield split.x[idx], split.y[idx]
