"""Accuracy of latency predictions, the same metrics for every model and every check."""

from __future__ import annotations

import numpy as np

METRIC_KEYS = ("rmse_ms", "mape", "median_ape", "within_5pct", "within_10pct", "spearman", "n_test")


def mean_ranks(x) -> np.ndarray:
    """1-based ranks of ``x``, tied values at the mean of their ranks."""
    _, inverse, counts = np.unique(np.asarray(x, np.float64), return_inverse=True, return_counts=True)
    return (np.cumsum(counts) - (counts - 1) / 2)[inverse.ravel()]


def spearman(a, b) -> float:
    """Spearman's rank correlation of ``a`` and ``b``, as `scipy.stats.spearmanr` gives it, without
    importing scipy (half a second of every short job that scores or draws); NaN where either is
    constant."""
    ra, rb = mean_ranks(a), mean_ranks(b)
    if len(ra) < 2 or np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


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
    # A constant prediction (the constant baseline) has no rank order: rho is NaN (`spearman`).
    rho = spearman(true_ms, pred_ms)
    return {
        "rmse_ms": float(np.sqrt(np.mean((pred_ms - true_ms) ** 2))),
        "mape": float(ape.mean()),
        "median_ape": float(np.median(ape)),
        "within_5pct": float(np.mean(ape <= 0.05)),
        "within_10pct": float(np.mean(ape <= 0.10)),
        "spearman": float(rho),
        "n_test": int(len(true_ms)),
    }
