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

from lenna.io import DataError, read_parquet
from lenna.space.ops import op_set
from lenna.space.specs import SHAPE_COLUMNS, prob_columns
from lenna.timing.interference import interference_warnings

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
    "reference_ms",
    "reference_dispersion",
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

# Per-job measures of what else ran while the job timed (lenna.timing.interference); optional,
# so tables timed before they existed, or imported from elsewhere, still merge.
INTERFERENCE_COLUMNS = ("reference_spread", "other_cpu_share", "steal_share", "load_avg_1m")


SPEC_FEATURE_COLUMNS = ("sampler", "op_set", "steps", *SHAPE_COLUMNS, "concentration")


SPLITS = ("train", "val", "test")


def merge_latency(
    spec_paths: Sequence[str], latency_paths: Sequence[str], calibrate: bool = True
) -> tuple[pd.DataFrame, dict]:
    """One row per measured spec (status ok), spec features joined; and a summary of the merge.

    With ``calibrate``, labels are corrected for the machine's speed during their job: each job
    timed the same reference cell throughout (``reference_ms``), and a job's labels are scaled by
    median(reference_ms over the target's jobs) / its own reference_ms. The measured value stays
    in ``latency_ms_raw`` and the factor applied in ``speed_factor``.

    Raises `DataError` naming the file for an unreadable shard, a missing column, a latency
    row without its spec, an ok row whose label is not a positive finite number, or one spec
    with different labels in two rows (identical repeats are dropped and counted).
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
    per_job = latency.groupby("source")["reference_ms"].first()
    nominal = float(per_job.median())
    latency["latency_ms_raw"] = latency["latency_ms"]
    latency["speed_factor"] = latency["reference_ms"] / nominal if calibrate else 1.0
    latency["latency_ms"] = latency["latency_ms_raw"] / latency["speed_factor"]
    failed = latency[latency["status"] != "ok"]
    ok = latency[latency["status"] == "ok"]
    n_before = len(ok)
    repeated = ok[ok["spec_id"].duplicated(keep=False)]
    for spec, rows in repeated.groupby("spec_id"):
        if rows["latency_ms_raw"].nunique() > 1:
            raise DataError(
                f"spec {spec} has conflicting labels in {sorted(set(rows['source']))}: "
                f"{rows['latency_ms_raw'].tolist()} ms (a shard merged twice, or two runs mixed?)"
            )
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
        "calibrated": bool(calibrate),
        "reference_nominal_ms": nominal,
        "reference_ms_by_job": {str(k): float(v) for k, v in per_job.items()},
        "by_label_kind": {k: int(v) for k, v in merged["label_kind"].value_counts().sort_index().items()},
        "label_quality_by_job": label_quality_by_job(latency),
    }
    return merged, summary


def label_quality_by_job(latency: pd.DataFrame) -> dict[str, dict]:
    """Per timing job (``source``): the median relative IQR of its labels' passes, its
    interference measures where it has them, and the warnings they raise."""
    present = [c for c in INTERFERENCE_COLUMNS if c in latency.columns]
    quality = {}
    for source, job in latency.groupby("source"):
        measures = {c: float(job[c].iloc[0]) for c in present}
        quality[str(source)] = {
            "median_dispersion": float(job["dispersion"].median()),
            **measures,
            "warnings": interference_warnings(measures),
        }
    return quality


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


def import_external_table(path, op_set_name: str, steps: int) -> tuple[pd.DataFrame, dict]:
    """A latency table measured outside the workflow (a phone, an accelerator), as a dataset.

    Required columns: the feature columns (`feature_columns`) and ``latency_ms``. Optional:
    ``spec_id`` (computed from the features if absent), ``label_kind`` (``discrete`` if every
    edge is one-hot, else ``expected``), ``device_name``. Any other column is an error, named.
    """
    from lenna.space.cell import CellShape
    from lenna.space.specs import spec_id

    path = str(path)
    if path.endswith(".csv"):
        try:
            table = pd.read_csv(path)
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: not a readable CSV file ({err})") from None
    else:
        table = read_parquet(path)
    table = table.copy()
    features = feature_columns(op_set_name, steps)
    optional = ["spec_id", "label_kind", "device_name"]
    unknown = [c for c in table.columns if c not in (*features, "latency_ms", *optional)]
    if unknown:
        raise DataError(
            f"{path}: unknown column(s) {unknown}; allowed: the feature columns, latency_ms, {optional}"
        )
    missing = [c for c in (*features, "latency_ms") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if table.empty:
        raise DataError(f"{path}: no rows")
    lat = table["latency_ms"].to_numpy(np.float64)
    if not (np.isfinite(lat) & (lat > 0)).all():
        raise DataError(f"{path}: latency_ms must be positive and finite in every row")
    n_ops = len(op_set(op_set_name))
    probs = table[features[len(SHAPE_COLUMNS) + 1 :]].to_numpy(np.float64).reshape(len(table), -1, n_ops)
    if (probs < 0).any() or not np.allclose(probs.sum(axis=2), 1.0, atol=1e-6):
        raise DataError(f"{path}: the probabilities of every edge must be non-negative and sum to 1")
    one_hot = np.isin(probs, (0.0, 1.0)).all(axis=(1, 2))
    if "label_kind" not in table:
        table["label_kind"] = np.where(one_hot, "discrete", "expected")
    if "spec_id" not in table:
        table["spec_id"] = [
            spec_id(
                op_set_name,
                steps,
                CellShape(
                    **{c: (bool(r[c]) if c.startswith("reduction") else int(r[c])) for c in SHAPE_COLUMNS}
                ),
                p,
                r["label_kind"],
            )
            for (_, r), p in zip(table.iterrows(), probs, strict=True)
        ]
    dup = table["spec_id"].duplicated(keep=False)
    if dup.any():
        raise DataError(f"{path}: duplicate spec_id(s) {table.loc[dup, 'spec_id'].unique()[:3].tolist()}")
    table = table.assign(status="ok", source=path, op_set=op_set_name, steps=steps)
    table = table.sort_values("spec_id", kind="stable").reset_index(drop=True)
    summary = {
        "n_rows": int(len(table)),
        "n_ok": int(len(table)),
        "n_failed": 0,
        "failure_reasons": {},
        "n_duplicates_dropped": 0,
        "by_label_kind": {k: int(v) for k, v in table["label_kind"].value_counts().sort_index().items()},
        "source": path,
    }
    return table, summary
