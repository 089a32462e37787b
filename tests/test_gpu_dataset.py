"""The published GPU latency dataset (data/latency/): CPU-only users train on it as an external
target. It was timed by `config/gpu.yaml` on an H100 (docs/gpu.md)."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lenna.datasets import fit_normaliser, import_external_table, split_by_spec_id
from lenna.predictors.baselines import fit_constant
from lenna.predictors.fitting import fit_elasticnet
from lenna.predictors.metrics import latency_metrics

TABLE = Path(__file__).parent.parent / "data" / "latency" / "darts-h100-b64.parquet"


def test_the_gpu_dataset_imports_with_its_provenance():
    table, summary = import_external_table(TABLE, "darts", 4)
    assert summary["n_ok"] == len(table) >= 700
    assert set(table["device_name"]) == {"NVIDIA H100 80GB HBM3"}
    assert set(table["batch_size"]) == {64} and set(table["timer"]) == {"cuda_event"}
    assert set(table["driver_version"]) == {"580.159.04"} and set(table["cuda_version"]) == {"13.0"}
    # Every label keeps what it came from, so the statistic can be chosen again: a discrete
    # label its timed passes (3 rounds of 7 at least), an expected label one value per gate reset.
    n = table["replicates_ms"].map(len)
    assert (n[table["label_kind"] == "discrete"] >= 21).all()
    assert (n[table["label_kind"] == "expected"] >= 10).all()
    assert (table["latency_ms_raw"] >= np.array([min(r) for r in table["replicates_ms"]]) - 1e-4).all()
    assert b"lenna.dataset" in pq.read_schema(TABLE).metadata


def test_a_predictor_trained_on_the_gpu_dataset_without_a_gpu_beats_the_constant():
    table, _ = import_external_table(TABLE, "darts", 4)
    parts = split_by_spec_id(table, {"train": 0.7, "val": 0.15, "test": 0.15})
    normaliser = fit_normaliser(parts["train"], "darts", 4)
    test = parts["test"]
    rmse = {
        name: latency_metrics(test["latency_ms"], model.predict(test))["rmse_ms"]
        for name, model in {
            "constant": fit_constant(parts["train"], normaliser),
            "elasticnet": fit_elasticnet(parts["train"], normaliser, l1_ratio=[0.5, 1.0], cv=3, seed=0),
        }.items()
    }
    assert rmse["elasticnet"] < 0.8 * rmse["constant"], rmse
