"""From latency shards to one table per target and its train / val / test splits.

`merge_latency` joins every latency row with the features of its spec, checks the labels and
keeps one row per ``spec_id``. `split_by_spec_id` assigns each spec to a split from a hash of its
id, so a spec keeps its split when specs are added. `fit_normaliser` sees the training split only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lenna.ops import op_set
from lenna.specs import SHAPE_COLUMNS, prob_columns
from lenna.tables import DataError, read_parquet

LATENCY_COLUMNS = (
    "spec_id",
    "label_kind",
    "status",
    "error",
    "latency_ms",
    "dispersion",
    "n_timed",
    "n_resets",
    "converged",
    "replicates_ms",
    "gates",
    "target",
    "device",
    "device_name",
    "host",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "threads",
    "batch_size",
    "dtype",
    "timer",
    "cudnn_benchmark",
    "measured_at",
)
SPEC_FEATURE_COLUMNS = ("sampler", "op_set", "steps", *SHAPE_COLUMNS, "concentration")
SPLITS = ("train", "val", "test")


def merge_latency(spec_paths: Sequence[str], latency_paths: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """One row per measured spec (status ok), spec features joined; and a summary of the merge.

    Raises `DataError` naming the file for an unreadable shard, a missing column, a latency
    row without its spec, or an ok row whose label is not a positive finite number.
    """
    specs = []
    for path in spec_paths:
        table = read_parquet(path, ["spec_id", *SPEC_FEATURE_COLUMNS])
        specs.append(table)
    spec_table = pd.concat(specs, ignore_index=True).drop_duplicates("spec_id")
    rows = []
    for path in latency_paths:
        table = read_parquet(path, LATENCY_COLUMNS)
        ok = table["status"] == "ok"
        bad = ok & ~(np.isfinite(table["latency_ms"]) & (table["latency_ms"] > 0))
        if bad.any():
            first = table.loc[bad, ["spec_id", "latency_ms"]].iloc[0]
            raise DataError(
                f"{path}: {int(bad.sum())} row(s) with a non-positive or missing latency_ms "
                f"(first: spec {first['spec_id']}, {first['latency_ms']})"
            )
        orphans = ~table["spec_id"].isin(spec_table["spec_id"])
        if orphans.any():
            raise DataError(
                f"{path}: spec(s) {table.loc[orphans, 'spec_id'].head(3).tolist()} are in no spec shard"
            )
        table["source"] = str(path)
        rows.append(table)
    latency = pd.concat(rows, ignore_index=True)
    failed = latency[latency["status"] != "ok"]
    ok = latency[latency["status"] == "ok"]
    n_before = len(ok)
    ok = ok.drop_duplicates("spec_id", keep="first")
    features = spec_table.drop(columns=[c for c in spec_table.columns if c in ("index", "label_kind")])
    merged = ok.merge(features, on="spec_id", how="left", validate="one_to_one")
    merged = merged.sort_values("spec_id", kind="stable").reset_index(drop=True)
    summary = {
        "n_rows": int(len(latency)),
        "n_ok": int(len(merged)),
        "n_failed": int(len(failed)),
        "failure_reasons": dict(Counter(failed["error"].astype(str))),
        "n_duplicates_dropped": int(n_before - len(ok)),
        "by_label_kind": {k: int(v) for k, v in merged["label_kind"].value_counts().sort_index().items()},
    }
    return merged, summary


def split_of(spec_id: str, fractions: dict[str, float]) -> str:
    """The split of a spec, from a hash of its id alone."""
    u = int(hashlib.sha256(f"split:{spec_id}".encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for name in SPLITS:
        edge += fractions[name]
        if u < edge:
            return name
    return SPLITS[-1]


def split_by_spec_id(table: pd.DataFrame, fractions: dict[str, float]) -> dict[str, pd.DataFrame]:
    labels = table["spec_id"].map(lambda s: split_of(s, fractions))
    return {
        name: table[labels == name].sort_values("spec_id", kind="stable").reset_index(drop=True)
        for name in SPLITS
    }


def feature_columns(op_set_name: str, steps: int) -> list[str]:
    """Model inputs of a latency row: the cell shape, the batch size, the op probabilities."""
    return [*SHAPE_COLUMNS, "batch_size", *prob_columns(op_set(op_set_name), steps)]


def fit_normaliser(train: pd.DataFrame, op_set_name: str, steps: int) -> dict:
    """Per-feature mean and standard deviation and label statistics, from the training split only.

    Constant features get a standard deviation of 1 so that scaling leaves them at zero.
    """
    if train.empty:
        raise DataError("the training split is empty: measure more specs or raise datasets.split.train")
    columns = feature_columns(op_set_name, steps)
    x = train[columns].astype(np.float64).to_numpy()
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0
    y = train["latency_ms"].to_numpy(np.float64)
    return {
        "schema_version": 1,
        "op_set": op_set_name,
        "steps": steps,
        "features": columns,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "label": {
            "column": "latency_ms",
            "mean": float(y.mean()),
            "std": float(y.std()),
            "log_mean": float(np.log(y).mean()),
            "log_std": float(np.log(y).std()),
        },
        "n_train": int(len(train)),
    }


def normalise(table: pd.DataFrame, normaliser: dict) -> np.ndarray:
    """The feature matrix of ``table`` scaled by ``normaliser`` (n_rows, n_features)."""
    x = table[normaliser["features"]].astype(np.float64).to_numpy()
    return (x - np.asarray(normaliser["mean"])) / np.asarray(normaliser["std"])
