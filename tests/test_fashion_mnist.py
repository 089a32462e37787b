"""Fashion-MNIST from its IDX files (lenna.search.images), on small IDX files built here."""

import gzip
import json
import re
import shutil

import numpy as np
import pytest
import torch
import yaml

from conftest import TINY, apply_changes
from lenna.config import ConfigError, check_config
from lenna.search.images import (
    IDX_IMAGES,
    IDX_LABELS,
    DatasetError,
    load_data,
    read_idx,
)
from lenna.search.settings import FASHION_MNIST_FILES


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion(directory, n_train=200, n_test=50, seed=0):
    """Four gzipped IDX files of random 28x28 images whose class decides their brightness."""
    rng = np.random.default_rng(seed)
    for part, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        images = (rng.integers(0, 50, size=(n, 28, 28)) + 20 * labels[:, None, None]).astype(np.uint8)
        images_file, labels_file = FASHION_MNIST_FILES[part]
        (directory / images_file).write_bytes(gzip.compress(idx_bytes(images, IDX_IMAGES)))
        (directory / labels_file).write_bytes(gzip.compress(idx_bytes(labels, IDX_LABELS)))
    return directory


def settings(directory, **extra):
    return {
        "dataset": "fashion_mnist",
        "fashion_mnist_dir": str(directory),
        "split": {"train": 0.6, "val": 0.2, "test": 0.2},
        "seed": 0,
        **extra,
    }


def test_the_official_split_keeps_the_test_files_and_carves_val_from_train(tmp_path):
    data = load_data(settings(write_fashion(tmp_path)))
    assert data.sizes() == {"train": 150, "val": 50, "test": 50}  # train:val 0.6:0.2 of 200
    assert data.train.x.shape == (150, 1, 28, 28) and data.train.x.dtype == torch.float32
    assert abs(float(data.train.x.mean())) < 1e-5 and abs(float(data.train.x.std()) - 1) < 1e-3
    assert torch.bincount(data.train.y).tolist() == [15] * 10  # class-stratified
    again = load_data(settings(tmp_path))
    assert torch.equal(again.val.y, data.val.y) and torch.equal(again.val.x, data.val.x)
    other = load_data(settings(tmp_path, seed=1))
    assert not torch.equal(other.val.x, data.val.x)


def test_down_sampling_averages_areas_and_limits_cap_each_part(tmp_path):
    data = load_data(settings(write_fashion(tmp_path), input_size=14, limit={"train": 40, "test": None}))
    assert data.train.x.shape == (40, 1, 14, 14)
    assert data.sizes() == {"train": 40, "val": 50, "test": 50}
    # area averaging: a 2x2 block of the raw image becomes its mean
    raw = read_idx(tmp_path / FASHION_MNIST_FILES["test"][0], IDX_IMAGES)[:1].astype(np.float32)
    full = load_data(settings(tmp_path))
    small = load_data(settings(tmp_path, input_size=14))
    assert full.test.x.shape[-1] == 28 and small.test.x.shape[-1] == 14
    block = raw[0, :2, :2].mean() / 255.0
    train_small = torch.nn.functional.interpolate(
        torch.from_numpy(raw[:, None] / 255.0), size=(14, 14), mode="area"
    )
    assert float(train_small[0, 0, 0, 0]) == pytest.approx(block, rel=1e-5)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "apt-get install dataset-fashion-mnist"),
        ("not_gzip", "not a readable gzip file"),
        ("magic", "IDX magic number"),
        ("truncated", "the header's shape"),
        ("count", "200 images but 199 labels"),
    ],
)
def test_a_missing_or_corrupted_file_is_an_error_naming_it(tmp_path, damage, message):
    write_fashion(tmp_path)
    images_file, labels_file = FASHION_MNIST_FILES["train"]
    if damage == "missing":
        (tmp_path / images_file).unlink()
        bad = images_file
    elif damage == "not_gzip":
        (tmp_path / images_file).write_bytes(b"not gzip at all")
        bad = images_file
    elif damage == "magic":
        (tmp_path / labels_file).write_bytes(
            gzip.compress(b"\x00\x00\x09\x01" + (200).to_bytes(4, "big") + bytes(200))
        )
        bad = labels_file
    elif damage == "truncated":
        raw = gzip.decompress((tmp_path / images_file).read_bytes())
        (tmp_path / images_file).write_bytes(gzip.compress(raw[:-100]))
        bad = images_file
    else:
        (tmp_path / labels_file).write_bytes(gzip.compress(idx_bytes(np.arange(199) % 10, IDX_LABELS)))
        bad = images_file
    with pytest.raises(DatasetError, match=message) as err:
        load_data(settings(tmp_path))
    assert bad in str(err.value)


def test_the_config_names_a_directory_without_the_files(tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config.setdefault("external_targets", {})
    apply_changes(config, {"data": settings(tmp_path, input_size=8)})
    with pytest.raises(ConfigError, match="data.fashion_mnist_dir: .* lacks .*apt-get install"):
        check_config(config)
    write_fashion(tmp_path)
    check_config(config)  # 28x28 images down-sampled to the tiny config's 8x8 networks
    config["data"]["input_size"] = None
    with pytest.raises(ConfigError, match=r"macro.search.input_size: 8, but fashion_mnist images are 28x28"):
        check_config(config)


@pytest.mark.e2e
def test_a_fashion_mnist_experiment_searches_on_a_subset_and_tests_on_every_test_image(tiny_run, tmp_path):
    """On a copy of the shared tiny run: the images are the search's and final training's input
    only, so the timings and predictors stay and the searches run on Fashion-MNIST."""
    from conftest import run_snakemake, tiny_snakefile, write_config

    source, _ = tiny_run
    workdir = tmp_path / "work"
    shutil.copytree(source, workdir, symlinks=True)
    write_fashion(tmp_path, n_train=300, n_test=60)
    config = write_config(
        tmp_path / "c.yaml",
        data=settings(tmp_path, input_size=8, limit={"train": 200, "test": None}),
        **{
            "search.predictors": ["mlp"],
            "search.limit": {"train": 64},
            "train_final": {
                "epochs": 2,
                "batch_size": 32,
                "lr": 0.025,
                "cutout": 4,
                "drop_path": 0.2,
                "auxiliary_weight": 0.4,
            },
        },
    )
    proc = run_snakemake(workdir, configfile=config, snakefile=tiny_snakefile(source))
    ran = set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, re.M))
    assert "darts_search" in ran and not ran & {"measure_latency", "train_mlp", "network_model"}, ran
    runs = sorted((workdir / "results" / "search" / "cpu" / "mlp").glob("lambda-*/seed-0"))
    assert len(runs) == 2
    for run in runs:
        search = json.loads((run / "summary.json").read_text())
        assert search["data"]["train"] == 64  # the search's subset
        final = json.loads((run / "final" / "metrics.json").read_text())
        assert final["n_test"] == 60  # every test image
        assert final["settings"]["cutout"] == 4 and final["settings"]["auxiliary_weight"] == 0.4
    summary = json.loads((workdir / "results" / "pareto" / "cpu" / "summary.json").read_text())
    sweep = summary["models"]["mlp"]["sweep"]
    assert [row["lambda"] for row in sweep] == [0.0, 1.0] and "change_sd_points" in sweep[1]
