"""Checks and objects of the config sections that drive the search: data, search, train_final.

Kept apart from `lenna.config`, which the spec sampler runs: checking a search setting must not
count as a change of the sampling code (that would re-time every spec).
"""

from __future__ import annotations

import math
import os

from lenna.config import ConfigError


def check_search(config: dict) -> None:
    """The data, search and train_final sections: dataset against macro, predictor names."""
    from lenna.data import DATASET_SHAPES

    data = config["data"]
    split = data["split"]
    if not math.isclose(sum(split.values()), 1.0, abs_tol=1e-9):
        raise ConfigError(f"data.split: shares {split} sum to {sum(split.values())}, not 1")
    if data["dataset"] == "cifar10":
        directory = data.get("cifar10_dir")
        if not directory:
            raise ConfigError("data.cifar10_dir: dataset cifar10 needs the directory of its python batches")
        if not os.path.isdir(directory):
            raise ConfigError(f"data.cifar10_dir: no such directory {directory!r}")
    channels, pixels, classes = DATASET_SHAPES[data["dataset"]]
    macro = config["macro"]
    if macro["input_channels"] != channels:
        raise ConfigError(
            f"macro.input_channels: {macro['input_channels']}, but {data['dataset']} images have {channels}"
        )
    if macro["num_classes"] != classes:
        raise ConfigError(f"macro.num_classes: {macro['num_classes']}, but {data['dataset']} has {classes}")
    for name in ("search", "final"):
        if macro[name]["input_size"] != pixels:
            raise ConfigError(
                f"macro.{name}.input_size: {macro[name]['input_size']}, but {data['dataset']} images "
                f"are {pixels}x{pixels}"
            )
    search = config["search"]
    models = config["predictors"]["models"]
    for model in search["predictors"]:
        if model not in models:
            raise ConfigError(
                f"search.predictors: {model!r} is not a trained predictor (predictors.models: {models})"
            )
    if search["warmup_epochs"] > search["epochs"]:
        raise ConfigError(
            f"search.warmup_epochs: {search['warmup_epochs']} exceeds search.epochs ({search['epochs']})"
        )


def lambda_label(value) -> str:
    """How a lambda appears in paths: the shortest form of the float (0.1, 1, 1e-05)."""
    return format(float(value), "g")


def search_settings(section: dict):
    """`SearchSettings` from the ``search`` config section (the sweep lists are ignored)."""
    from lenna.search import SearchSettings

    keys = set(SearchSettings.__dataclass_fields__)
    settings = {k: v for k, v in section.items() if k in keys}
    if "alpha_betas" in settings:
        settings["alpha_betas"] = tuple(settings["alpha_betas"])
    return SearchSettings(**settings)
