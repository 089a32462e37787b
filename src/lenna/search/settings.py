"""The settings of the search loop, and the forms of its latency term: a module of its own, so
that the loop and the architect both import them and neither imports the other's settings."""

from __future__ import annotations

from dataclasses import dataclass

# What the image datasets the search trains on are, for `lenna.search.images` to load them and
# for the config check to check against them; here, so that the check imports no torch.
# (channels, pixels, classes) of each dataset as stored: the macro settings must agree with them
# (pixels: with data.input_size where a dataset may be down-sampled).
DATASET_SHAPES = {"digits": (1, 8, 10), "fashion_mnist": (1, 28, 10), "cifar10": (3, 32, 10)}


# Where the Debian package dataset-fashion-mnist installs the four IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


FASHION_MNIST_NAMES = [name for pair in FASHION_MNIST_FILES.values() for name in pair]


# The forms of the latency term of the alpha step (`lenna.search.architect.latency_term`).
LATENCY_FORMS = ("additive", "relative", "mul_log")


@dataclass(frozen=True)
class SearchSettings:
    """Search hyper-parameters; the defaults are those of the DARTS reference implementation."""

    epochs: int = 50
    warmup_epochs: int = 0
    batch_size: int = 64
    w_lr: float = 0.025
    w_lr_min: float = 0.001
    w_momentum: float = 0.9
    w_weight_decay: float = 3e-4
    grad_clip: float = 5.0
    alpha_lr: float = 3e-4
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    alpha_weight_decay: float = 1e-3
    order: str = "first"
    latency_form: str = "relative"
    max_skip_normal: int | None = 2

    def __post_init__(self):
        if self.order not in ("first", "second"):
            raise ValueError(f"order: {self.order!r} is neither 'first' nor 'second'")
        if self.latency_form not in LATENCY_FORMS:
            raise ValueError(f"latency_form: {self.latency_form!r}; known: {list(LATENCY_FORMS)}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"warmup_epochs: {self.warmup_epochs} is not within 0..epochs ({self.epochs})")


def search_settings(section: dict) -> SearchSettings:
    """`SearchSettings` from the ``search`` config section (the sweep lists are ignored)."""
    keys = set(SearchSettings.__dataclass_fields__)
    settings = {k: v for k, v in section.items() if k in keys}
    if "alpha_betas" in settings:
        settings["alpha_betas"] = tuple(settings["alpha_betas"])
    return SearchSettings(**settings)
