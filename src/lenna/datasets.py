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

from lenna.io import DataError, read_parquet, read_table
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
# How each label was reached (lenna.timing.labels: visits, re-timing); optional likewise.
RETIMING_COLUMNS = ("uncertainty", "n_visits", "retimed", "retime_s")

# Where and how the labels of an imported table were measured, kept with its rows: the columns
# of `lenna.timing.labels.provenance` that a published table carries, and each label's own
# quality (its uncertainty, visits, dispersion, label before calibration, timed passes).
TABLE_PROVENANCE_COLUMNS = (
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "driver_version",
    "dtype",
    "memory_format",
    "timer",
    "measured_at",
    "uncertainty",
    "n_visits",
    "dispersion",
    "latency_ms_raw",
    "replicates_ms",
)

# Label quality below which a target's predictors cannot be scored at their quoted accuracy
# (datasets.label_quality in the config): the median disagreement of a label's two best visits,
# and the share of labels still unstable after re-timing.
DEFAULT_LABEL_QUALITY = {"max_noise_floor": 0.05, "max_unstable_share": 0.05, "fail_on_poor": False}


SPEC_FEATURE_COLUMNS = ("sampler", "op_set", "steps", *SHAPE_COLUMNS, "concentration")


SPLITS = ("train", "val", "test")


def merge_latency(
    spec_paths: Sequence[str],
    latency_paths: Sequence[str],
    calibrate: bool = True,
    quality: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """One row per measured spec (status ok), spec features joined; and a summary of the merge.

    With ``calibrate``, labels are corrected for the machine's speed during their job: each job
    timed the same reference cell throughout (``reference_ms``), and a job's labels are scaled by
    median(reference_ms over the target's jobs) / its own reference_ms. The measured value stays
    in ``latency_ms_raw`` and the factor applied in ``speed_factor``. Labels that stayed
    ``unstable`` after re-timing are left out like failed ones, and counted; the summary's
    ``label_quality`` (`label_quality`) judges the labels against ``quality`` (keys of
    `DEFAULT_LABEL_QUALITY`).

    Raises `DataError` naming the file for an unreadable shard, a missing column, a latency
    row without its spec, an ok row whose label is not a positive finite number, or one spec
    with different labels in two rows (identical repeats are dropped and counted; so are the
    later timings of a spec the stream drew more than once, ``n_resampled_dropped``); and, with
    ``quality["fail_on_poor"]``, labels too poor for the predictors' quoted accuracy, naming the
    jobs.
    """
    quality = _thresholds(quality)
    spec_table, resampled = _read_specs(spec_paths)
    latency = _read_latency(latency_paths, spec_table)
    per_job, nominal = _calibrate(latency, calibrate)
    failed = latency[latency["status"] == "failed"]
    unstable = latency[latency["status"] == "unstable"]
    ok = latency[latency["status"] == "ok"]
    n_before = len(ok)
    ok, n_resampled = _one_label_per_spec(ok, resampled)
    features = spec_table.drop(columns=[c for c in spec_table.columns if c in ("index", "label_kind")])
    merged = ok.merge(features, on="spec_id", how="left", validate="one_to_one")
    merged = merged.sort_values("spec_id", kind="stable").reset_index(drop=True)
    by_job = label_quality_by_job(latency, quality)
    summary = {
        "n_rows": int(len(latency)),
        "n_ok": int(len(merged)),
        "n_failed": int(len(failed)),
        "failure_reasons": dict(Counter(failed["error"].astype(str))),
        "n_unstable": int(len(unstable)),
        "n_duplicates_dropped": int(n_before - len(ok)),
        "n_resampled_dropped": n_resampled,
        "calibrated": bool(calibrate),
        "reference_nominal_ms": nominal,
        "reference_ms_by_job": {str(k): float(v) for k, v in per_job.items()},
        "by_label_kind": {k: int(v) for k, v in merged["label_kind"].value_counts().sort_index().items()},
        "label_quality": label_quality(latency, quality, by_job),
        "label_quality_by_job": by_job,
    }
    if quality["fail_on_poor"]:
        _fail_if_poor(summary["label_quality"])
    return merged, summary


def _calibrate(latency: pd.DataFrame, calibrate: bool) -> tuple[pd.Series, float]:
    """Scale every job's labels in place by its reference cell's time against the median of
    the jobs' (`merge_latency`), the measured value kept in ``latency_ms_raw`` and the factor in
    ``speed_factor`` (1 without ``calibrate``). Returns each job's reference time and the median."""
    per_job = latency.groupby("source")["reference_ms"].first()
    nominal = float(per_job.median())
    latency["latency_ms_raw"] = latency["latency_ms"]
    latency["speed_factor"] = latency["reference_ms"] / nominal if calibrate else 1.0
    latency["latency_ms"] = latency["latency_ms_raw"] / latency["speed_factor"]
    return per_job, nominal


def _fail_if_poor(quality: dict) -> None:
    """Raise `DataError` with the reasons where a target's `label_quality` is poor."""
    if quality["poor"]:
        raise DataError(
            "labels too poor for the predictors' quoted accuracy: "
            + "; ".join(quality["reasons"])
            + " (datasets.label_quality.fail_on_poor: true; re-time on a quieter machine, or"
            " set it false to go on with a warning)"
        )


def _read_specs(spec_paths: Sequence[str]) -> tuple[pd.DataFrame, set[str]]:
    """The spec shards as one table, one row per ``spec_id``, and the ids of the specs the
    stream drew more than once (at different indices)."""
    spec_table = pd.concat(
        [read_parquet(path, ["spec_id", *SPEC_FEATURE_COLUMNS]) for path in spec_paths], ignore_index=True
    )
    # A small space (NAS-Bench-201: 15,625 cells per shape) draws some specs more than once in
    # its stream; each draw is timed, and the draws may disagree within the timing noise.
    draws = spec_table.groupby("spec_id")["index"].nunique()
    return spec_table.drop_duplicates("spec_id"), set(draws.index[draws > 1])


def _read_latency(latency_paths: Sequence[str], spec_table: pd.DataFrame) -> pd.DataFrame:
    """The latency shards as one table, each row's file in ``source``. Raises `DataError` naming
    the file for an ok row whose label is not a positive finite number, or a row of a spec that
    is in no spec shard."""
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
    return pd.concat(rows, ignore_index=True)


def _one_label_per_spec(ok: pd.DataFrame, resampled: set[str]) -> tuple[pd.DataFrame, int]:
    """The first row of every spec among the ok rows, and how many later timings of a
    ``resampled`` spec were dropped. Raises `DataError` for a spec drawn once whose rows
    disagree on its label (a shard merged twice, or two runs mixed)."""
    repeated = ok[ok["spec_id"].duplicated(keep=False)]
    for spec, rows in repeated.groupby("spec_id"):
        if rows["latency_ms_raw"].nunique() > 1 and spec not in resampled:
            raise DataError(
                f"spec {spec} has conflicting labels in {sorted(set(rows['source']))}: "
                f"{rows['latency_ms_raw'].tolist()} ms (a shard merged twice, or two runs mixed?)"
            )
    n_resampled = int(ok["spec_id"].isin(resampled).sum() - len(resampled & set(ok["spec_id"])))
    return ok.drop_duplicates("spec_id", keep="first"), n_resampled


def _quality_measures(labels: pd.DataFrame) -> dict:
    """Label quality of timed (not failed) latency rows: the noise floor (median disagreement of
    a label's two best visits), the share re-timed and still unstable, the median rel-IQR of the
    passes, and the share of discrete passes over 20% above their label."""
    nan = float("nan")
    discrete = labels[labels["label_kind"] == "discrete"]
    slow = [
        np.mean(np.asarray(r) > 1.2 * label)
        for r, label in zip(discrete["replicates_ms"], discrete["latency_ms_raw"], strict=True)
        if len(r)
    ]
    has = {c: c in labels.columns and labels[c].notna().any() for c in RETIMING_COLUMNS}
    return {
        "n_labels": int(len(labels)),
        "noise_floor": float(labels["uncertainty"].median()) if has["uncertainty"] else nan,
        "share_retimed": float(labels["retimed"].astype(float).mean()) if has["retimed"] else nan,
        "share_unstable": float((labels["status"] == "unstable").mean()) if len(labels) else nan,
        "median_dispersion": float(labels["dispersion"].median()) if len(labels) else nan,
        "slow_pass_share": float(np.mean(slow)) if slow else nan,
    }


def _quality_reasons(measures: dict, quality: dict) -> list[str]:
    reasons = []
    if measures["noise_floor"] > quality["max_noise_floor"]:
        reasons.append(
            f"the two best visits of a label disagree by a median {measures['noise_floor']:.1%} "
            f"(datasets.label_quality.max_noise_floor {quality['max_noise_floor']:.0%})"
        )
    if measures["share_unstable"] > quality["max_unstable_share"]:
        reasons.append(
            f"{measures['share_unstable']:.1%} of the labels stayed unstable after re-timing "
            f"(datasets.label_quality.max_unstable_share {quality['max_unstable_share']:.0%})"
        )
    return reasons


def _thresholds(quality: dict | None) -> dict:
    """``datasets.label_quality`` settings, the defaults filled in."""
    return {**DEFAULT_LABEL_QUALITY, **(quality or {})}


def label_quality(latency: pd.DataFrame, quality: dict | None = None, by_job: dict | None = None) -> dict:
    """A target's label quality (`_quality_measures` over every timed row) judged against
    ``quality``: ``poor`` with its ``reasons``, naming the jobs whose own labels are poor.
    ``by_job``: `label_quality_by_job` of the same rows, where the caller has it already."""
    quality = _thresholds(quality)
    by_job = label_quality_by_job(latency, quality) if by_job is None else by_job
    measures = _quality_measures(latency[latency["status"] != "failed"])
    reasons = _quality_reasons(measures, quality)
    poor_jobs = sorted(job for job, measured in by_job.items() if _quality_reasons(measured, quality))
    if reasons and poor_jobs:
        reasons.append(f"poor jobs: {', '.join(poor_jobs)}")
    retime = sum(job["retime_s"] for job in by_job.values()) if "retime_s" in latency else float("nan")
    return {
        **measures,
        "retime_s": float(retime),
        "poor": bool(reasons),
        "reasons": reasons,
        "poor_jobs": poor_jobs,
    }


def label_quality_by_job(latency: pd.DataFrame, quality: dict | None = None) -> dict[str, dict]:
    """Per timing job (``source``): its label quality (`_quality_measures`), its interference
    measures where it has them, and the warnings both raise."""
    quality = _thresholds(quality)
    present = [c for c in (*INTERFERENCE_COLUMNS, "retime_s") if c in latency.columns]
    by_job = {}
    for source, job in latency[latency["status"] != "failed"].groupby("source"):
        measures = {c: float(job[c].iloc[0]) for c in present}
        labels = _quality_measures(job)
        by_job[str(source)] = {
            **labels,
            **measures,
            "warnings": interference_warnings(measures) + _quality_reasons(labels, quality),
        }
    return by_job


def describe_label_quality(target: str, summary: dict) -> list[str]:
    """Lines for the end of a run and the report: a target's label quality, loud when poor."""
    q = summary.get("label_quality")
    if not q:
        return [f"labels of {target}: no quality measures (imported or timed before they existed)"]
    lines = [
        f"labels of {target}: {q['n_labels']} timed, noise floor {q['noise_floor']:.1%} (median "
        f"disagreement of a label's two best visits), {q['share_retimed']:.0%} re-timed "
        f"({q['retime_s']:.0f} s), {q['share_unstable']:.1%} left out as unstable"
    ]
    jobs = summary.get("label_quality_by_job", {})
    seen = [job for job, quality in jobs.items() if quality["warnings"]]
    if q["poor"]:
        lines.append(f"WARNING: labels of {target} are too poor for the predictors' quoted accuracy:")
        lines += [f"WARNING:   {reason}" for reason in q["reasons"]]
        lines += [f"WARNING:   {job}: {warning}" for job in seen for warning in jobs[job]["warnings"]]
    elif seen:
        # Context only: the labels' own noise floor says whether the interference harmed them.
        lines.append(
            f"  interference beside {len(seen)} of {len(jobs)} timing jobs (the labels held: see "
            "label_quality_by_job in the dataset summary)"
        )
    return lines


def split_of(spec_id: str, fractions: dict[str, float]) -> str:
    """The split of a spec, from a hash of its id alone."""
    u = int(hashlib.sha256(f"split:{spec_id}".encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for name in SPLITS:
        edge += fractions[name]
        if u < edge:
            return name
    return SPLITS[-1]


def split_labels(table: pd.DataFrame, fractions: dict[str, float]) -> pd.Series:
    """The split of every row of ``table`` (`split_of` its ``spec_id``)."""
    return table["spec_id"].map(lambda s: split_of(s, fractions))


def in_split(table: pd.DataFrame, fractions: dict[str, float], name: str) -> pd.DataFrame:
    """The rows of ``table`` whose spec falls in split ``name``, in their order."""
    return table[split_labels(table, fractions) == name].reset_index(drop=True)


def split_by_spec_id(table: pd.DataFrame, fractions: dict[str, float]) -> dict[str, pd.DataFrame]:
    labels = split_labels(table, fractions)
    return {
        name: table[labels == name].sort_values("spec_id", kind="stable").reset_index(drop=True)
        for name in SPLITS
    }


def check_splits(splits: dict[str, pd.DataFrame], fractions: dict[str, float], path) -> None:
    """Raise `DataError` naming the merged table ``path`` where a split that ``fractions`` asks
    for got no label: too few specs kept (unstable and failed ones are left out) for the split."""
    empty = [name for name in SPLITS if fractions.get(name, 0) > 0 and splits[name].empty]
    if empty:
        sizes = ", ".join(f"{name} {len(part)}" for name, part in splits.items())
        which = f"{' and '.join(empty)} split{'s' if len(empty) > 1 else ''}"
        raise DataError(
            f"{path}: no labels in the {which} ({sizes} of "
            f"{sum(len(p) for p in splits.values())} kept labels; the specs left out as unstable or "
            "failed are counted in summary.json beside it): time more specs (sampling.n_specs), "
            "on a quieter machine, or change datasets.split"
        )


def feature_columns(op_set_name: str, steps: int) -> list[str]:
    """Model inputs of a latency row: the cell shape, the batch size, the op probabilities."""
    return [*SHAPE_COLUMNS, "batch_size", *prob_columns(op_set(op_set_name), steps)]


def fit_normaliser(train: pd.DataFrame, op_set_name: str, steps: int) -> dict:
    """Per-feature mean and standard deviation and label statistics, from the training split only.

    Constant features get a standard deviation of 1 so that scaling leaves them at zero. The
    normaliser of a network-unit dataset says so (``unit``) and holds the rows' shape and batch
    features (``network_features``), which every predictor trained on it records.
    """
    if train.empty:
        raise DataError("the training split is empty: measure more specs or raise datasets.split.train")
    columns = feature_columns(op_set_name, steps)
    x = train[columns].astype(np.float64).to_numpy()
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std < 1e-12] = 1.0
    y = train["latency_ms"].to_numpy(np.float64)
    # A network-unit dataset (lenna.tables): every row is a whole network at one shape and batch.
    unit = {}
    if "unit" in train.columns and (train["unit"] == "network").all():
        unit = {"unit": "network", "network_features": x[0, : len(SHAPE_COLUMNS) + 1].tolist()}
    return {
        "schema_version": 1,
        "op_set": op_set_name,
        "steps": steps,
        **unit,
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
    edge is one-hot, else ``expected``), ``device_name``, and where and how the labels were
    measured (`TABLE_PROVENANCE_COLUMNS`, as a timing job writes them: a published dataset such
    as data/latency/ carries them). Any other column is an error, named.
    """
    path = str(path)
    table = read_table(path)
    table = table.copy()
    features = feature_columns(op_set_name, steps)
    _check_external_columns(path, table, features)
    probs = _edge_probabilities(path, table, features, len(op_set(op_set_name)))
    one_hot = np.isin(probs, (0.0, 1.0)).all(axis=(1, 2))
    if "label_kind" not in table:
        table["label_kind"] = np.where(one_hot, "discrete", "expected")
    if "spec_id" not in table:
        table["spec_id"] = _spec_ids(table, probs, op_set_name, steps)
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
        "n_resampled_dropped": 0,
        "by_label_kind": {k: int(v) for k, v in table["label_kind"].value_counts().sort_index().items()},
        "source": path,
    }
    return table, summary


def _check_external_columns(path: str, table: pd.DataFrame, features: list[str]) -> None:
    """Raise `DataError` naming ``path`` for an unknown or a missing column of an external table
    (`import_external_table`), no rows, or a label that is not positive and finite."""
    optional = ["spec_id", "label_kind", "device_name", *TABLE_PROVENANCE_COLUMNS]
    unknown = [c for c in table.columns if c not in (*features, "latency_ms", *optional)]
    if unknown:
        raise DataError(
            f"{path}: unknown column(s) {unknown}; allowed: the feature columns, latency_ms, "
            f"{optional[:3]} and provenance {optional[3:]}"
        )
    missing = [c for c in (*features, "latency_ms") if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing[:8]}{' ...' if len(missing) > 8 else ''}")
    if table.empty:
        raise DataError(f"{path}: no rows")
    lat = table["latency_ms"].to_numpy(np.float64)
    if not (np.isfinite(lat) & (lat > 0)).all():
        raise DataError(f"{path}: latency_ms must be positive and finite in every row")


def _edge_probabilities(path: str, table: pd.DataFrame, features: list[str], n_ops: int) -> np.ndarray:
    """The op probabilities of every row's edges (n_rows, n_edges, n_ops), from the feature
    columns after the shape and the batch size. Raises `DataError` naming ``path`` unless every
    edge's are non-negative and sum to 1."""
    probs = table[features[len(SHAPE_COLUMNS) + 1 :]].to_numpy(np.float64).reshape(len(table), -1, n_ops)
    if (probs < 0).any() or not np.allclose(probs.sum(axis=2), 1.0, atol=1e-6):
        raise DataError(f"{path}: the probabilities of every edge must be non-negative and sum to 1")
    return probs


def _spec_ids(table: pd.DataFrame, probs: np.ndarray, op_set_name: str, steps: int) -> list[str]:
    """The ``spec_id`` of every row of a table without them: from its cell shape, its op
    probabilities ``probs`` and its ``label_kind``, as the spec sampler computes it."""
    from lenna.space.cell import CellShape
    from lenna.space.specs import spec_id

    return [
        spec_id(
            op_set_name,
            steps,
            CellShape(**{c: (bool(r[c]) if c.startswith("reduction") else int(r[c])) for c in SHAPE_COLUMNS}),
            p,
            r["label_kind"],
        )
        for (_, r), p in zip(table.iterrows(), probs, strict=True)
    ]
