"""The LENNA MLP, trained with torch on a target's dataset splits (Adam, early stopping on the
validation RMSE, on the closed-form base of `lenna.predictors.fitting`), and the learning curve
of ElasticNet and the MLP. Kept apart from the closed-form fits so that those, and every job that
only loads a predictor, import no torch."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import torch

from lenna.datasets import normalise
from lenna.predictors.fitting import (
    BASE_RIDGE_ALPHA,
    SHAPE_BASE_ALPHA,
    _scaling,
    _standardised,
    describe,
    fit_base,
    fit_elasticnet,
    with_floor,
)
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.model import LatencyPredictor, base_output


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


class _MLP(torch.nn.Module):
    """Layers of ``hidden`` units, one output: what the MLP adds to its base."""

    def __init__(self, n_in: int, hidden: list[int], activation: str):
        super().__init__()
        sizes = [n_in, *hidden, 1]
        self.layers = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.act = {"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh(), "gelu": torch.nn.GELU()}[activation]

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = self.act(x)
        return x[:, 0]


def _base_of(base: str, weights: dict, table: pd.DataFrame, z: np.ndarray, normaliser: dict) -> torch.Tensor:
    """The base's output (float32) for the rows of ``table`` (standardised: ``z``)."""
    x = torch.as_tensor(table[normaliser["features"]].to_numpy(np.float64))
    return base_output(base, weights, x, torch.as_tensor(z, dtype=torch.float64)).float()


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
    base: str = "shape",
    **extra,
) -> tuple[LatencyPredictor, pd.DataFrame]:
    """The LENNA MLP: Adam on the standardised (log) latency, early stopping on validation RMSE
    (ms); seeded and deterministic on a CPU, on the linear ``base`` of `MLP_BASES`. Returns the
    best epoch's model and the history."""
    label, base_weights, (x_train, target), (x_val, offset_val) = _residual_data(
        train, val, normaliser, transform, base
    )
    torch.manual_seed(seed)
    net = _MLP(x_train.shape[1], hidden, activation)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    step = partial(train_epoch, net, optimiser, x_train, target, batch_size=batch_size)
    y_val = val["latency_ms"].to_numpy(np.float64)
    validate = partial(_val_rmse, net, x_val, offset_val, y_val, label, transform)
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
            **({"base_ridge_alpha": BASE_RIDGE_ALPHA} if base != "none" else {}),
            **({"shape_base_alpha": SHAPE_BASE_ALPHA} if base == "shape" else {}),
            **stopped,
        },
        **extra,
    )
    weights = _mlp_weights(best, normaliser, len(hidden) + 1) | base_weights
    predictor = with_floor(LatencyPredictor(desc, weights), train)
    return predictor, pd.DataFrame(history)


def _residual_data(train: pd.DataFrame, val: pd.DataFrame, normaliser: dict, transform: str, base: str):
    """What the MLP learns: the label statistics, the ``base``'s weights fitted on ``train``, the
    training features (standardised, float32) with their label less the base's output, and the
    validation features with the base's output."""
    z_train, z_val = normalise(train, normaliser), normalise(val, normaliser)
    label, t_train = _standardised(train["latency_ms"].to_numpy(np.float64), transform)
    x_raw = train[normaliser["features"]].to_numpy(np.float64)
    weights = fit_base(base, x_raw, z_train, t_train, normaliser)
    as_tensor = partial(torch.as_tensor, dtype=torch.float32)
    target = as_tensor(t_train) - _base_of(base, weights, train, z_train, normaliser)
    offset_val = _base_of(base, weights, val, z_val, normaliser)
    return label, weights, (as_tensor(z_train), target), (as_tensor(z_val), offset_val)


def _val_rmse(
    net: _MLP, x_val: torch.Tensor, offset: torch.Tensor, y_val: np.ndarray, label: dict, transform: str
) -> float:
    """The RMSE (ms) of the latency ``net`` on its base's output ``offset`` gives the validation
    features ``x_val``, in eval mode: mapped back from the standardised (log) latency it learns."""
    net.eval()
    with torch.no_grad():
        out = (net(x_val) + offset).double().numpy() * label["std"] + label["mean"]
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
    """The weights of a predictor file of the MLP (``w{i}``, ``b{i}`` per layer) from a state of
    `_MLP`, with the feature scaling."""
    weights = _scaling(normaliser)
    for i in range(n_layers):
        weights[f"w{i}"] = state[f"layers.{i}.weight"].double().numpy()
        weights[f"b{i}"] = state[f"layers.{i}.bias"].double().numpy()
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
