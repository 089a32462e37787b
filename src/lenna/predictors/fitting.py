"""Fitting the learned latency predictors on a target's dataset splits: ElasticNet and the MLP
(LENNA's model), and the learning curve of both."""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import torch
from sklearn.linear_model import ElasticNetCV

import lenna
from lenna.datasets import normalise
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.model import FORMAT, FORMAT_VERSION, LatencyPredictor, cell_floors


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
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit_learn": sklearn.__version__,
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


def train_epoch(net, optimiser, x: torch.Tensor, target: torch.Tensor, order, batch_size: int) -> list[float]:
    """One epoch of mean-squared-error steps over ``order`` in batches; the batches' losses."""
    losses = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        loss = torch.nn.functional.mse_loss(net(x[idx]), target[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


# The MLP's base (`predictors.mlp.base`). ridge: the MLP learns the residual of a ridge
# regression fitted first (closed form, this penalty on standardised features and label), so
# where training cells are few (the cheap cells a latency-aware search ends in) the prediction
# falls back on the additive law of op costs instead of the training data's level; none: LENNA's
# plain MLP.
BASE_RIDGE_ALPHA = 1.0
MLP_BASES = ("ridge", "none")


def ridge_base(x: np.ndarray, t: np.ndarray, alpha: float = BASE_RIDGE_ALPHA) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of the ridge regression of ``t`` on ``x`` (intercept not
    penalised), in closed form: the linear base under the MLP."""
    a = np.c_[x, np.ones(len(x))]
    penalty = alpha * np.eye(a.shape[1])
    penalty[-1, -1] = 0.0
    solution = np.linalg.solve(a.T @ a + penalty, a.T @ t)
    return solution[:-1], float(solution[-1])


class _MLP(torch.nn.Module):
    """Layers of ``hidden`` units; with a ``base`` (coefficients, intercept) the output is the
    network's plus that fixed linear function of the input, so the network learns the residual."""

    def __init__(self, n_in: int, hidden: list[int], activation: str, base=None):
        super().__init__()
        sizes = [n_in, *hidden, 1]
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.act = {"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh(), "gelu": torch.nn.GELU()}[activation]
        if base is not None:
            self.register_buffer("base_coef", torch.as_tensor(base[0], dtype=torch.float32))
            self.register_buffer("base_intercept", torch.tensor([base[1]], dtype=torch.float32))

    def forward(self, x):
        z = x
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        if hasattr(self, "base_coef"):
            return x[:, 0] + z @ self.base_coef + self.base_intercept
        return x[:, 0]


def _new_mlp(z: np.ndarray, t: np.ndarray, hidden: list[int], activation: str, base: str) -> _MLP:
    """An untrained `_MLP` for standardised features ``z`` and label ``t``, on the ``base``
    (one of `MLP_BASES`) fitted to them."""
    if base not in MLP_BASES:
        raise ValueError(f"predictors.mlp.base: {base!r}, expected one of {list(MLP_BASES)}")
    return _MLP(z.shape[1], hidden, activation, ridge_base(z, t) if base == "ridge" else None)


def fit_mlp(
    train: pd.DataFrame,
    val: pd.DataFrame,
    normaliser: dict,
    *,
    hidden: list[int],
    activation: str,
    lr: float,
    epochs: int,
    batch_size: int,
    weight_decay: float,
    patience: int,
    seed: int,
    transform: str,
    base: str = "ridge",
    **extra,
) -> tuple[LatencyPredictor, pd.DataFrame]:
    """The LENNA MLP: Adam on the standardised (log) latency, early stopping on validation RMSE
    (ms); seeded and deterministic on a CPU, on the linear ``base`` of `MLP_BASES`. Returns the
    best epoch's model and the history."""
    torch.manual_seed(seed)
    z_train = normalise(train, normaliser)
    x_train = torch.as_tensor(z_train, dtype=torch.float32)
    label, t_train = _standardised(train["latency_ms"].to_numpy(np.float64), transform)
    target = torch.as_tensor(t_train, dtype=torch.float32)
    x_val = torch.as_tensor(normalise(val, normaliser), dtype=torch.float32)
    y_val = val["latency_ms"].to_numpy(np.float64)

    net = _new_mlp(z_train, t_train, hidden, activation, base)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    step = partial(train_epoch, net, optimiser, x_train, target, batch_size=batch_size)
    validate = partial(_val_rmse, net, x_val, y_val, label, transform)
    best, stopped, history = _early_stopping(net, step, validate, len(x_train), epochs, patience, seed)
    if best is None:  # no validation spec, or none the network could predict (NaN)
        raise ValueError(
            f"the MLP has no finite validation RMSE to keep a model by ({len(val)} validation specs); "
            "time more specs, or fewer unstable ones (the merge's label_quality)"
        )
    desc = describe(
        "mlp",
        "mlp",
        normaliser,
        transform,
        label,
        architecture={"hidden": list(hidden), "activation": activation, "base": base},
        hyperparameters={
            "lr": lr,
            "epochs": epochs,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "patience": patience,
            "seed": seed,
            **({"base_ridge_alpha": BASE_RIDGE_ALPHA} if base == "ridge" else {}),
            **stopped,
        },
        **extra,
    )
    predictor = with_floor(LatencyPredictor(desc, _mlp_weights(best, normaliser, len(hidden) + 1)), train)
    return predictor, pd.DataFrame(history)


def _val_rmse(net: _MLP, x_val: torch.Tensor, y_val: np.ndarray, label: dict, transform: str) -> float:
    """The RMSE (ms) of the latency ``net`` gives the validation features ``x_val``, in eval
    mode: its output mapped back from the standardised (log) latency it learns."""
    net.eval()
    with torch.no_grad():
        out = net(x_val).double().numpy() * label["std"] + label["mean"]
    pred = np.exp(out) if transform == "log" else out
    return float(np.sqrt(np.mean((pred - y_val) ** 2)))


def _early_stopping(
    net: _MLP,
    step: Callable[[torch.Tensor], list[float]],
    validate: Callable[[], float],
    n_train: int,
    epochs: int,
    patience: int,
    seed: int,
) -> tuple[dict | None, dict, list[dict]]:
    """Up to ``epochs`` epochs of ``step`` (in train mode, over the ``n_train`` training rows in
    a seeded random order; the batches' losses), each scored by ``validate`` (a validation RMSE),
    until ``patience`` epochs in a row bring no lower one. Returns the best epoch's state of
    ``net`` (None when no RMSE was finite), that epoch and its RMSE (``best_epoch``,
    ``val_rmse_ms``; none without a best epoch), and every epoch's."""
    generator = torch.Generator().manual_seed(seed)
    best, best_rmse, stale, history = None, np.inf, 0, []
    for epoch in range(epochs):
        net.train()
        losses = step(torch.randperm(n_train, generator=generator))
        rmse = validate()
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_rmse_ms": rmse})
        if rmse < best_rmse:
            best_rmse, stale = rmse, 0
            best = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best is None:
        return None, {}, history
    best_epoch = int(np.argmin([h["val_rmse_ms"] for h in history]))
    return best, {"best_epoch": best_epoch, "val_rmse_ms": best_rmse}, history


def _mlp_weights(state: dict, normaliser: dict, n_layers: int) -> dict[str, np.ndarray]:
    """The weights of a predictor file of the MLP (``w{i}``, ``b{i}`` per layer, ``base_coef`` and
    ``base_intercept`` with a linear base) from a state of `_MLP`, with the feature scaling."""
    weights = _scaling(normaliser)
    for i in range(n_layers):
        weights[f"w{i}"] = state[f"layers.{i}.weight"].double().numpy()
        weights[f"b{i}"] = state[f"layers.{i}.bias"].double().numpy()
    for name in ("base_coef", "base_intercept"):
        if name in state:
            weights[name] = state[name].double().numpy()
    return weights


def fit_mlp_choosing_transform(train, val, normaliser, transforms: list[str], **kwargs):
    """Fit one MLP per target transform and keep the one with the lower validation RMSE (ms);
    the description records every candidate's validation metrics and why it won. A transform
    the MLP cannot fit (no finite validation RMSE in any epoch: on a few validation specs the
    log transform's exponential can overflow) is left out and its error recorded; an error only
    where no transform fits."""
    fits, failed = {}, {}
    for t in transforms:
        try:
            fits[t] = fit_mlp(train, val, normaliser, transform=t, **kwargs)
        except ValueError as err:
            if "no finite validation RMSE" not in str(err):
                raise
            failed[t] = str(err)
    if not fits:
        raise ValueError(f"no transform of {list(transforms)} could be fitted: {failed}")
    scores = {t: latency_metrics(val["latency_ms"], p.predict(val)) for t, (p, _) in fits.items()}
    chosen = min(scores, key=lambda t: scores[t]["rmse_ms"])
    predictor, history = fits[chosen]
    predictor.description["transform_selection"] = {
        "chosen": chosen,
        "rule": "lowest validation RMSE (ms)",
        "validation": scores,
        **({"failed": failed} if failed else {}),
    }
    return predictor, history


def learning_curve(
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    normaliser: dict,
    fractions: list[float],
    elasticnet: dict,
    mlp: dict,
) -> pd.DataFrame:
    """Test metrics of ElasticNet and the MLP trained on nested shares of the training split.

    Subsets are nested (the first n specs in spec_id order), so each point adds data to the
    last. The normaliser stays the full training split's: only the fitted data shrinks.
    """
    ordered = train.sort_values("spec_id", kind="stable").reset_index(drop=True)
    mlp = dict(mlp)
    transforms = mlp.pop("transforms")
    rows = []
    for fraction in fractions:
        part = ordered.iloc[: max(int(round(fraction * len(ordered))), 2 * elasticnet["cv"])]
        fits = {
            "elasticnet": fit_elasticnet(part, normaliser, **elasticnet),
            "mlp": fit_mlp_choosing_transform(part, val, normaliser, transforms, **mlp)[0],
        }
        for name, predictor in fits.items():
            scores = latency_metrics(test["latency_ms"], predictor.predict(test))
            rows.append({"model": name, "fraction": fraction, "n_train": len(part), **scores})
    return pd.DataFrame(rows)
