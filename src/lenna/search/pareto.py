"""Accuracy against measured latency of every searched network; the Pareto front and headline.

One row per (predictor model, lambda, seed): the final network's test accuracy, its latency
measured on the target, and the latency the predictor gave it. lambda 0 is plain DARTS. A found
network that is *degenerate* (`degenerate_reason`: disconnected, or no better than chance) is
flagged with its reason and kept off the front: its low latency is no trade-off.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lenna.predictors.metrics import spearman

PARETO_COLUMNS = [
    "model",
    "lambda",
    "seed",
    "test_accuracy",
    "latency_ms",
    "predicted_latency_ms",
    "on_front",
    "degenerate",
    "degenerate_reason",
]

# A network whose test accuracy is within this many points of chance (1 / num_classes) learned
# nothing from its images.
CHANCE_MARGIN_POINTS = 1.0


def paired_p_value(diff) -> float:
    """Two-sided p-value of a one-sample t-test that the paired differences ``diff`` have mean 0."""
    from scipy.stats import ttest_1samp  # here: the figure jobs that import this module need no scipy

    return float(ttest_1samp(diff, 0.0).pvalue)


def on_front(accuracy, latency) -> np.ndarray:
    """True where no other point is at least as accurate and at least as fast, and better in one."""
    acc, lat = np.asarray(accuracy, float), np.asarray(latency, float)
    front = np.ones(len(acc), dtype=bool)
    for i in range(len(acc)):
        dominated = (acc >= acc[i]) & (lat <= lat[i]) & ((acc > acc[i]) | (lat < lat[i]))
        front[i] = not dominated.any()
    return front


def degenerate_reason(row: dict) -> str:
    """Why a found network (a row of the table) is degenerate, "" if it is not: ``disconnected``
    (where the row has it: no path of non-``none`` ops from input to output, so the network
    ignores its input), or test accuracy within `CHANCE_MARGIN_POINTS` of chance, 1 /
    ``num_classes`` (where the row has it); both are joined by "; "."""
    reasons = []
    if pd.notna(row.get("disconnected")) and bool(row["disconnected"]):
        reasons.append("disconnected: no path of non-none ops from input to output")
    if pd.notna(row.get("num_classes")):
        chance = 1.0 / row["num_classes"]
        if row["test_accuracy"] <= chance + CHANCE_MARGIN_POINTS / 100:
            reasons.append(
                f"test accuracy {100 * row['test_accuracy']:.1f}%, within {CHANCE_MARGIN_POINTS:g} "
                f"point of chance ({100 * chance:.1f}%)"
            )
    return "; ".join(reasons)


def pareto_table(rows: list[dict]) -> pd.DataFrame:
    """One row per searched network, sorted, with `degenerate` and its `degenerate_reason`, and
    `on_front` among the networks that are not degenerate."""
    table = pd.DataFrame(rows)
    table = table.sort_values(["model", "lambda", "seed"], ignore_index=True)
    table["degenerate_reason"] = [degenerate_reason(row) for row in table.to_dict("records")]
    table["degenerate"] = table["degenerate_reason"] != ""
    kept = ~table["degenerate"]
    table["on_front"] = False
    table.loc[kept, "on_front"] = on_front(table.loc[kept, "test_accuracy"], table.loc[kept, "latency_ms"])
    return table[PARETO_COLUMNS + [c for c in table.columns if c not in PARETO_COLUMNS]]


def paired_change(group: pd.DataFrame) -> pd.DataFrame:
    """Per lambda, its test accuracy against lambda 0's seed by seed (the same seed: the same
    data order and initialisation): the mean and standard deviation of the paired differences
    in points, the number of seeds paired, and whether the mean difference exceeds that spread
    (``beyond_seed_noise``; never with fewer than two pairs), with the two-sided p-value of a
    paired t-test for a stricter reading (two or three seeds rarely reach 0.05). Lambda 0 itself
    has no row."""
    acc = group.pivot_table(index="seed", columns="lambda", values="test_accuracy")
    columns = ["lambda", "change_sd_points", "change_p_value", "paired_seeds", "beyond_seed_noise"]
    rows = []
    if 0.0 not in acc.columns:
        return pd.DataFrame(columns=columns)
    for lam in acc.columns:
        if lam == 0.0:
            continue
        diff = 100 * (acc[lam] - acc[0.0]).dropna()
        sd = float(diff.std()) if len(diff) > 1 else float("nan")
        p_value = paired_p_value(diff) if len(diff) > 1 and sd > 0 else float("nan")
        rows.append(
            {
                "lambda": lam,
                "change_sd_points": sd,
                "change_p_value": p_value,
                "paired_seeds": len(diff),
                "beyond_seed_noise": bool(len(diff) > 1 and abs(diff.mean()) > sd),
            }
        )
    return pd.DataFrame(rows, columns=columns)  # a sweep of lambda 0 alone: no rows


def _none_if_nan(value) -> float | None:
    return None if pd.isna(value) else float(value)


def prediction_accuracy(group: pd.DataFrame) -> dict | None:
    """How well the search's predictor foresaw the measured latency of the networks it found:
    their number, the share within ±10% and the median |predicted / measured - 1|, of the whole
    network's prediction (``predicted``: `LatencyPredictor.predict_network`) and, where the table
    has it, of the plain sum of cells and parts (``sum``). Where some labels are ``unstable``
    (``latency_status``: the timing protocol's verdict, `lenna.search.found.found_latencies`), the
    prediction is also scored over the stable ones alone (``stable``, with ``n_unstable``): a miss
    there is the model's, not a label's. None when no network has a prediction (a device-table
    target)."""
    errors = {
        key: (group[column] / group["latency_ms"] - 1).abs()
        for key, column in (("predicted", "predicted_latency_ms"), ("sum", "predicted_sum_ms"))
        if column in group and not group[column].isna().all()
    }
    if "predicted" not in errors:
        return None
    out = {key: _score(error.dropna()) for key, error in errors.items()}
    unstable = (group["latency_status"] == "unstable") if "latency_status" in group else None
    if unstable is not None and unstable.any():
        stable = errors["predicted"][~unstable].dropna()
        out["stable"] = {**_score(stable), "n_unstable": int(unstable.sum())}
    return out


def _score(error: pd.Series) -> dict:
    """The number of networks, the share within ±10% and the median of relative errors ``error``."""
    if error.empty:
        return {"n": 0, "within_10pct": float("nan"), "median_ape": float("nan")}
    within = float((error <= 0.1).mean())
    return {"n": len(error), "within_10pct": within, "median_ape": float(error.median())}


def headline(table: pd.DataFrame, tolerance_points: float = 0.5) -> dict:
    """Per predictor model: the mean and seed standard deviation of accuracy and measured latency
    of every lambda, with its `paired_change` against lambda 0; the fastest lambda > 0 whose mean
    accuracy is within ``tolerance_points`` accuracy points of lambda 0, its latency as a ratio
    to lambda 0's and whether its accuracy change is beyond seed noise; and the Spearman
    correlation between lambda and mean latency over the sweep (negative: latency falls as
    lambda grows). Every degenerate network (`degenerate_reason`) is listed under
    ``degenerate`` with its lambda, seed and reason, and counted per lambda in the sweep."""
    out = {}
    for model, group in table.groupby("model"):
        sweep = _sweep(group)
        entry = {"sweep": sweep.replace({np.nan: None}).to_dict(orient="records")}
        entry["prediction"] = prediction_accuracy(group)
        entry["degenerate"] = [
            {"lambda": float(row["lambda"]), "seed": int(row["seed"]), "reason": row["degenerate_reason"]}
            for _, row in group[group["degenerate"]].iterrows()
        ]
        if len(sweep) > 1:
            rho = spearman(sweep["lambda"], sweep["latency_ms"])
            entry["spearman_lambda_latency"] = None if np.isnan(rho) else float(rho)
        base = sweep[sweep["lambda"] == 0]
        if len(base):
            entry.update(_against_baseline(sweep, base.iloc[0], tolerance_points))
        out[model] = entry
    return out


def _sweep(group: pd.DataFrame) -> pd.DataFrame:
    """Per lambda of one predictor's searches: the mean and seed standard deviation of accuracy
    and measured latency, the mean predicted latency, the seeds and the degenerate networks
    counted, and its `paired_change` against lambda 0."""
    sweep = (
        group.groupby("lambda")
        .agg(
            test_accuracy=("test_accuracy", "mean"),
            accuracy_std=("test_accuracy", "std"),
            latency_ms=("latency_ms", "mean"),
            latency_std=("latency_ms", "std"),
            predicted_latency_ms=("predicted_latency_ms", "mean"),
            seeds=("seed", "count"),
            degenerate=("degenerate", "sum"),
        )
        .reset_index()
    )
    return sweep.merge(paired_change(group), on="lambda", how="left")


def _against_baseline(sweep: pd.DataFrame, base: pd.Series, tolerance_points: float) -> dict:
    """The sweep against its lambda 0 row ``base``: the baseline's accuracy and latency, the
    fastest lambda > 0 within ``tolerance_points`` of its accuracy (``best``, None if none is),
    and the fastest lambda of all (``fastest``), latencies as ratios to the baseline's."""
    within = sweep[
        (sweep["lambda"] > 0) & (sweep["test_accuracy"] >= base["test_accuracy"] - tolerance_points / 100)
    ]
    out = {
        "baseline": {"test_accuracy": float(base["test_accuracy"]), "latency_ms": float(base["latency_ms"])},
        "tolerance_points": tolerance_points,
        "best": None,
    }
    if len(within):
        best = within.loc[within["latency_ms"].idxmin()]
        out["best"] = {
            "lambda": float(best["lambda"]),
            "test_accuracy": float(best["test_accuracy"]),
            "latency_ms": float(best["latency_ms"]),
            "latency_ratio": float(best["latency_ms"] / base["latency_ms"]),
            "accuracy_change_points": float(100 * (best["test_accuracy"] - base["test_accuracy"])),
            "change_sd_points": _none_if_nan(best["change_sd_points"]),
            "change_p_value": _none_if_nan(best["change_p_value"]),
            "paired_seeds": int(best["paired_seeds"]),
            "beyond_seed_noise": bool(best["beyond_seed_noise"]),
            "degenerate": int(best["degenerate"]),
        }
    fastest = sweep.loc[sweep["latency_ms"].idxmin()]
    out["fastest"] = {
        "lambda": float(fastest["lambda"]),
        "latency_ratio": float(fastest["latency_ms"] / base["latency_ms"]),
        "accuracy_change_points": float(100 * (fastest["test_accuracy"] - base["test_accuracy"])),
        "degenerate": int(fastest["degenerate"]),
    }
    return out
