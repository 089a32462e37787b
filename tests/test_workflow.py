"""End-to-end runs of the workflow on the tiny config through the snakemake command line."""

import json

import pandas as pd

from conftest import run_snakemake
from lenna.datasets import LATENCY_COLUMNS


def test_tiny_config_builds_the_datasets(tiny_run):
    workdir, _ = tiny_run
    data = workdir / "results" / "datasets" / "cpu"
    table = pd.read_parquet(data / "latency.parquet")
    for column in ("spec_id", "latency_ms", "label_kind", *LATENCY_COLUMNS):
        assert column in table.columns, column
    assert set(table["label_kind"]) == {"discrete", "expected"}
    assert (table["latency_ms"] > 0).all()
    summary = json.loads((data / "summary.json").read_text())
    assert summary["n_ok"] == len(table) == 24
    parts = {name: pd.read_parquet(data / f"{name}.parquet") for name in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(table)
    assert set.intersection(*(set(p["spec_id"]) for p in parts.values())) == set()
    normaliser = json.loads((data / "normaliser.json").read_text())
    assert normaliser["n_train"] == len(parts["train"])


def test_a_second_run_has_nothing_to_do(tiny_run):
    workdir, _ = tiny_run
    proc = run_snakemake(workdir)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_spec_shards_are_byte_identical_in_a_second_working_directory(tiny_run, tmp_path):
    workdir, _ = tiny_run
    run_snakemake(tmp_path, "--until", "sample_specs")
    for shard in sorted((workdir / "results" / "specs").glob("*.parquet")):
        assert shard.read_bytes() == (tmp_path / "results" / "specs" / shard.name).read_bytes()
