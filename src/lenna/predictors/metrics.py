"""Accuracy of latency predictions, the same metrics for every model and every check."""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

METRIC_KEYS = ("rmse_ms", "mape", "median_ape", "within_5pct", "within_10pct", "spearman", "n_test")


def latency_metrics(true_ms, pred_ms) -> dict:
    """RMSE (ms), mean and median absolute percentage error (fractions), share of predictions
    with |pred - true| / true <= 5% and <= 10%, Spearman rank correlation, and n."""
    true_ms = np.asarray(true_ms, dtype=np.float64)
    pred_ms = np.asarray(pred_ms, dtype=np.float64)
    if true_ms.shape != pred_ms.shape or true_ms.ndim != 1:
        raise ValueError(f"true and predicted latencies differ in shape: {true_ms.shape} vs {pred_ms.shape}")
    if len(true_ms) == 0:
        raise ValueError("no latencies to score")
    ape = np.abs(pred_ms - true_ms) / true_ms
    # A constant prediction (the constant baseline) has no rank order: rho is undefined.
    ranked = len(true_ms) > 1 and np.ptp(pred_ms) > 0 and np.ptp(true_ms) > 0
    rho = spearmanr(true_ms, pred_ms).statistic if ranked else float("nan")
    return {
        "rmse_ms": float(np.sqrt(np.mean((pred_ms - true_ms) ** 2))),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_5pct": float(np.mean(ape <= 0.05)),
        "within_10pct": float(np.mean(ape <= 0.10)),
        "spearman": float(rho),
        "n_test": int(len(true_ms)),
    }
