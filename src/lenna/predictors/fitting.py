"""Fitting the learned latency predictors on a target's dataset splits, in closed form: what every
predictor file describes, ElasticNet, and the linear bases the MLP (`lenna.predictors.mlp`, the
torch half) learns the residual of."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
from pathlib import Path

import numpy as np
import pandas as pd

import lenna
from lenna.datasets import normalise
from lenna.predictors.model import (
    FORMAT,
    FORMAT_VERSION,
    N_SHAPE,
    LatencyPredictor,
    cell_floors,
)
from lenna.space.spaces import Space, get_space


def file_sha256(*paths) -> str:
    """One hash over the bytes of the training files: which data a model was fitted on."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def describe(model: str, kind: str, normaliser: dict, transform: str, label: dict, **extra) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model,
        "kind": kind,
        "op_set": normaliser["op_set"],
        "steps": normaliser["steps"],
        "features": list(normaliser["features"]),
        **{k: normaliser[k] for k in ("unit", "network_features") if k in normaliser},
        "transform": transform,
        "label": label,
        "versions": {
            "lenna": lenna.__version__,
            "torch": importlib.metadata.version("torch"),
            "numpy": np.__version__,
            "scikit_learn": importlib.metadata.version("scikit-learn"),
            "python": platform.python_version(),
        },
        **extra,
    }


def with_floor(predictor: LatencyPredictor, train: pd.DataFrame) -> LatencyPredictor:
    """``predictor`` with the `cell_floors` of its training table (a cell predictor only)."""
    floors = cell_floors(train, predictor.features) if predictor.unit == "cell" else {}
    if floors:
        predictor.weights.update(floors)
        predictor.description["floor"] = {
            "rule": "at least the lowest label of the all-none cells timed at the cell's shape",
            "n_shapes": len(floors["floor_ms"]),
        }
    return predictor


def _scaling(normaliser: dict) -> dict[str, np.ndarray]:
    return {"mean": np.asarray(normaliser["mean"]), "std": np.asarray(normaliser["std"])}


def _standardised(y: np.ndarray, transform: str) -> tuple[dict, np.ndarray]:
    """The label statistics of latencies ``y`` (mean and standard deviation, after the log with
    ``transform`` log) and the (log) latencies standardised by them: what a model learns."""
    t = np.log(y) if transform == "log" else y
    label = {"mean": float(t.mean()), "std": float(t.std()) or 1.0}
    return label, (t - label["mean"]) / label["std"]


def fit_elasticnet(
    train: pd.DataFrame, normaliser: dict, l1_ratio: list[float], cv: int, seed: int, **extra
) -> LatencyPredictor:
    """ElasticNet on standardised shape and probability features, predicting latency in ms:
    the additive model L(cell) = sum of per-op, per-edge costs. alpha and l1_ratio by CV."""
    from sklearn.linear_model import ElasticNetCV  # here: a second of import every other job skips

    z = normalise(train, normaliser)
    y = train["latency_ms"].to_numpy(np.float64)
    label, t = _standardised(y, "linear")
    model = ElasticNetCV(l1_ratio=l1_ratio, cv=cv, random_state=seed, max_iter=20_000, alphas=50)
    model.fit(z, t)
    desc = describe(
        "elasticnet",
        "linear",
        normaliser,
        "linear",
        label,
        hyperparameters={"alpha": float(model.alpha_), "l1_ratio": float(model.l1_ratio_), "cv": cv},
        **extra,
    )
    weights = {
        "coef": model.coef_.astype(np.float64),
        "intercept": np.array([model.intercept_]),
        **_scaling(normaliser),
    }
    return with_floor(LatencyPredictor(desc, weights), train)


# The MLP's base (`predictors.mlp.base`): the MLP learns the residual of a linear model fitted
# first (closed form), so where training cells are few (the cheap cells a latency-aware search
# ends in) the prediction falls back on an additive law of op costs instead of the training
# data's level. ridge: one ridge regression on the standardised features (penalty
# BASE_RIDGE_ALPHA). shape: per cell shape and batch of the training cells, a ridge regression
# on the cell's op counts (its probabilities summed over the edges that read a cell input, and
# over the others; penalty SHAPE_BASE_ALPHA): each op's cost at each shape, what a lookup table
# holds, but fitted on the cells' own labels; at a shape no training cell had, the ridge base.
# none: LENNA's plain MLP.
BASE_RIDGE_ALPHA = 1.0
SHAPE_BASE_ALPHA = 0.1
MLP_BASES = ("ridge", "shape", "none")


def ridge_base(x: np.ndarray, t: np.ndarray, alpha: float = BASE_RIDGE_ALPHA) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of the ridge regression of ``t`` on ``x`` (intercept not
    penalised), in closed form: the linear base under the MLP."""
    a = np.c_[x, np.ones(len(x))]
    penalty = alpha * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    solution = np.linalg.solve(a.T @ a + penalty, a.T @ t)
    return solution[:-1], float(solution[-1])


def op_counts(space: Space) -> np.ndarray:
    """(n_edges * n_ops, 2 * n_ops): maps a cell's probability columns (edge-major) to its op
    counts on the edges that read a cell input (which stride in a reduction cell) and on the
    others."""
    n_ops = len(space.ops)
    counts = np.zeros((space.n_edges * n_ops, 2 * n_ops))
    for e, (_, inp) in enumerate(space.edges()):
        side = 0 if inp < space.inputs else 1
        counts[e * n_ops : (e + 1) * n_ops, side * n_ops : (side + 1) * n_ops] = np.eye(n_ops)
    return counts


def shape_base(x: np.ndarray, t: np.ndarray, space: Space, alpha: float = SHAPE_BASE_ALPHA) -> dict:
    """The per-shape weights of the ``shape`` base (`lenna.predictors.model.base_output`) for raw
    feature rows ``x`` and their standardised label ``t``: per distinct shape and batch, the ridge
    regression of ``t`` on the op counts (`op_counts`), its coefficients spread back over the
    probability columns."""
    counts = op_counts(space)
    keys, rows = np.unique(x[:, :N_SHAPE], axis=0, return_inverse=True)
    rows = rows.ravel()
    # A shape needs twice as many training cells as op counts to pin its law; with fewer (a tiny
    # run, a learning curve's first share) it gets the ridge base, as a shape never timed does.
    enough = np.flatnonzero(np.bincount(rows, minlength=len(keys)) >= 2 * counts.shape[1])
    coef, intercept = np.zeros((len(enough), x.shape[1] - N_SHAPE)), np.zeros(len(enough))
    for i, k in enumerate(enough):
        at = rows == k
        c, intercept[i] = ridge_base(x[at, N_SHAPE:] @ counts, t[at], alpha)
        coef[i] = counts @ c
    return {"shape_keys": keys[enough], "shape_coef": coef, "shape_intercept": intercept}


def fit_base(base: str, x: np.ndarray, z: np.ndarray, t: np.ndarray, normaliser: dict) -> dict:
    """The weights of the MLP's ``base`` (one of `MLP_BASES`) fitted to raw features ``x``,
    standardised ones ``z`` and the standardised label ``t``."""
    if base not in MLP_BASES:
        raise ValueError(f"predictors.mlp.base: {base!r}, expected one of {list(MLP_BASES)}")
    if base == "none":
        return {}
    coef, intercept = ridge_base(z, t)
    weights = {"base_coef": coef, "base_intercept": np.array([intercept])}
    if base == "shape":
        space = get_space(normaliser["op_set"], normaliser["steps"])
        weights |= shape_base(x, t, space)
    return weights
