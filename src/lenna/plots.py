"""Figures of predictor accuracy (matplotlib, SVG)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def predicted_vs_measured(true_ms, pred_ms, labels, title: str, path) -> None:
    """Scatter of predicted against measured latency with the +-10% band, by label kind."""
    true_ms, pred_ms, labels = np.asarray(true_ms), np.asarray(pred_ms), np.asarray(labels)
    fig, ax = plt.subplots(figsize=(5, 5))
    lo, hi = float(min(true_ms.min(), pred_ms.min())), float(max(true_ms.max(), pred_ms.max()))
    grid = np.linspace(lo, hi, 2)
    ax.plot(grid, grid, color="black", lw=1, label="exact")
    ax.fill_between(grid, grid * 0.9, grid * 1.1, color="grey", alpha=0.25, label="±10%")
    for kind in sorted(set(labels)):
        mask = labels == kind
        ax.scatter(true_ms[mask], pred_ms[mask], s=8, alpha=0.7, label=f"{kind} (n={mask.sum()})")
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def relative_errors(true_ms, pred_ms, title: str, path) -> None:
    """Histogram of relative errors (pred - true) / true, with the +-5% and +-10% bounds."""
    rel = (np.asarray(pred_ms) - np.asarray(true_ms)) / np.asarray(true_ms)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.hist(rel * 100, bins=40, color="tab:blue", alpha=0.8)
    for bound, style in ((5, ":"), (10, "--")):
        for sign in (-1, 1):
            ax.axvline(sign * bound, color="black", ls=style, lw=1)
    ax.set_xlabel("relative error (%)")
    ax.set_ylabel("test specs")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def learning_curve(table, title: str, path) -> None:
    """Test RMSE and share within +-10% against training-set size, one line per model."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for model, part in table.groupby("model"):
        left.plot(part["n_train"], part["rmse_ms"], marker="o", label=model)
        right.plot(part["n_train"], part["within_10pct"], marker="o", label=model)
    left.set_xscale("log")
    right.set_xscale("log")
    left.set_xlabel("training specs")
    right.set_xlabel("training specs")
    left.set_ylabel("test RMSE (ms)")
    right.set_ylabel("test share within ±10%")
    left.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
