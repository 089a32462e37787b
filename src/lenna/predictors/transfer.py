"""A latency predictor for a device from a few of its measurements, learnt across other devices.

The transfer (chosen by measurement, docs/device-tables.md, "Few-shot targets"): a *source
model*, MLPs (three seeds, averaged: `merge_source_models`) from an architecture's features to its
standardised log latency on every source device at once, trained on the source devices' tables;
then, for the new device, a blend of the source model's outputs fitted on its n labels
(`BLENDS`; the default ``ensemble``: a ridge regression, its penalty by leave-one-out error,
averaged with each source's own affine map weighted by its leave-one-out error), on labels
chosen at random or by `choose_labels`. The new device is thus predicted as a learnt blend of the
(denoised) source devices. Composed, the two are one MLP whose last layer is the blend: a
predictor of kind ``mlp`` like any other, loadable by `load_predictor`, differentiable for the
search. Fine-tuning the source model on the n labels as well did not help on the public table
(benchmarks/NOTES.md), so it is not done.

`leave_one_device_out` scores it as the field does: each device of a table held out in turn,
its source model built from the other columns only (`source_table` drops the held-out column
before anything else is read), against the same MLP trained on the held-out device alone and
FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.linalg import block_diag
from scipy.stats import rankdata
from sklearn.cluster import KMeans
from sklearn.ensemble import HistGradientBoostingRegressor

from lenna.datasets import fit_normaliser, normalise
from lenna.predictors.baselines import fit_flops
from lenna.predictors.fitting import describe
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.mlp import fit_mlp, train_epoch
from lenna.predictors.model import N_SHAPE, LatencyPredictor
from lenna.space import nb201
from lenna.space.specs import prob_columns
from lenna.tables import (
    KEY_COLUMNS,
    NETWORK_SHAPE,
    Protocol,
    batch_size_of,
    device_columns,
    device_kind,
    network_dataset,
    pool_rows,
    sample_pool,
    score_rows,
)

# Ridge penalties tried by leave-one-out error on the device's labels.
PENALTIES = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)
# Three members (seeds averaged): with labels chosen `doptimal`, 0.961 from 20 labels in the
# leave-one-device-out against 0.960 with one MLP (docs/device-tables.md, "Choosing the blend and
# the labels").
DEFAULT_SOURCE = {"hidden": [256, 256], "epochs": 150, "lr": 1e-3, "batch_size": 256, "seed": 0, "members": 3}


def source_table(table: pd.DataFrame, target: str, sources: list[str] | None = None) -> pd.DataFrame:
    """The columns a transfer to ``target`` may learn from: the keys and the source devices
    (default: every other device of the table). The target's column is dropped here, first."""
    held_out = table.drop(columns=[target])
    available = device_columns(held_out)
    if sources is None:
        sources = available
    if target in sources:
        raise ValueError(f"device {target!r} is the target and cannot be one of its own sources")
    missing = [s for s in sources if s not in available]
    if missing:
        raise ValueError(f"source device(s) {missing} not in the table; it has {available}")
    if not sources:
        raise ValueError(f"no source device to transfer to {target!r} from")
    return held_out[[*KEY_COLUMNS, *sources]]


@dataclass
class SourceModel:
    """An MLP from standardised features to the standardised log latency of every source."""

    normaliser: dict
    layers: list[tuple[np.ndarray, np.ndarray]]  # (weight, bias) per layer, the last is the output
    sources: list[str]
    settings: dict
    final_loss: float

    def outputs(self, features: np.ndarray) -> np.ndarray:
        """(n, n_sources) standardised log latencies of raw feature rows."""
        h = (features - np.asarray(self.normaliser["mean"])) / np.asarray(self.normaliser["std"])
        for i, (w, b) in enumerate(self.layers):
            h = h @ w.T + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h


def fit_source_model(
    sources: pd.DataFrame, batch_size: int, settings: dict | None = None, log=lambda s: None
) -> SourceModel:
    """Train the source model on a `source_table` (its connected architectures), at the target's
    batch size (a constant feature: the shape and batch features of a network-unit row never vary):
    ``members`` MLPs of seeds ``seed``, ``seed + 1``, ..., their outputs averaged
    (`merge_source_models`: one wider MLP). Seeded and deterministic on a CPU."""
    settings = {**DEFAULT_SOURCE, **(settings or {})}
    columns = device_columns(sources)
    rows = network_dataset(sources, columns[0], batch_size, source="sources")
    keep = sources["index"].isin(rows["index"]).to_numpy()
    y = np.log(sources.loc[keep, columns].to_numpy(np.float64))
    mu, sd = y.mean(axis=0), y.std(axis=0)
    normaliser = fit_normaliser(rows, "nb201", nb201.STEPS)
    x = torch.as_tensor(normalise(rows, normaliser), dtype=torch.float32)
    target = torch.as_tensor((y - mu) / sd, dtype=torch.float32)
    members = []
    for member in range(settings["members"]):
        layers, loss = _fit_member(x, target, settings, settings["seed"] + member, log)
        # The output layer predicts log latency in ms directly.
        w, b = layers[-1]
        layers[-1] = (w * sd[:, None], b * sd + mu)
        members.append(SourceModel(normaliser, layers, columns, settings, loss))
    return merge_source_models(members)


def _fit_member(x: torch.Tensor, target: torch.Tensor, settings: dict, seed: int, log):
    """One MLP of the source model: its (weight, bias) per layer and its last epoch's loss."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    sizes = [x.shape[1], *settings["hidden"], target.shape[1]]
    linears = [torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    net = torch.nn.Sequential(*[m for lin in linears[:-1] for m in (lin, torch.nn.ReLU())], linears[-1])
    optimiser = torch.optim.Adam(net.parameters(), lr=settings["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings["epochs"])
    for epoch in range(settings["epochs"]):
        order = torch.randperm(len(x), generator=generator)
        losses = train_epoch(net, optimiser, x, target, order, settings["batch_size"])
        schedule.step()
        if epoch % 25 == 24:
            log(f"source model (seed {seed}) epoch {epoch + 1}: loss {np.mean(losses):.4f}")
    layers = [(lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()) for lin in linears]
    return layers, float(np.mean(losses))


def merge_source_models(models: list[SourceModel]) -> SourceModel:
    """One source model whose outputs are the mean of ``models``' (same normaliser, sources and
    depth): their hidden layers side by side (the first stacked, the deeper block-diagonal), the
    output layer their average. So an averaged source model is still one MLP (`fit_few_shot`)."""
    first = models[0]
    if any(m.sources != first.sources or len(m.layers) != len(first.layers) for m in models):
        raise ValueError("source models to merge must share their sources and depth")
    if len(models) == 1:
        return first

    def side_by_side(i: int) -> tuple[np.ndarray, np.ndarray]:
        weights, biases = zip(*(m.layers[i] for m in models), strict=True)
        return (np.vstack(weights) if i == 0 else block_diag(*weights)), np.concatenate(biases)

    layers = [side_by_side(i) for i in range(len(first.layers) - 1)]
    weights, biases = zip(*(m.layers[-1] for m in models), strict=True)
    layers.append((np.hstack(weights) / len(models), np.mean(biases, axis=0)))
    loss = float(np.mean([m.final_loss for m in models]))
    settings = {**first.settings, "members": len(models)}  # members fitted alone say 1 each
    return SourceModel(first.normaliser, layers, first.sources, settings, loss)


def ridge_loo(x: np.ndarray, y: np.ndarray, penalties=PENALTIES) -> tuple[np.ndarray, float, float]:
    """Ridge regression of y on x (intercept unpenalised), its penalty chosen by the exact
    leave-one-out error. Returns (coefficients, intercept, penalty)."""
    design = np.c_[np.ones(len(y)), x]
    fits = [(*_penalised_loo(design, y, 1, penalty), penalty) for penalty in penalties]
    coef, _, penalty = min(fits, key=lambda fit: fit[1])
    return coef[1:], float(coef[0]), float(penalty)


def _penalised_loo(x: np.ndarray, y: np.ndarray, free: int, penalty: float) -> tuple[np.ndarray, float]:
    """Least squares of y on x whose first ``free`` columns are unpenalised and the rest carry a
    ridge ``penalty`` (inf: left out); returns (coefficients, exact leave-one-out MSE)."""
    width = x.shape[1]
    if np.isinf(penalty):
        x = x[:, :free]
    penalties = np.r_[np.zeros(free), np.full(x.shape[1] - free, penalty)]
    gram = x.T @ x + np.diag(penalties) + 1e-10 * np.eye(x.shape[1])
    solve = np.linalg.solve(gram, x.T)
    coef = solve @ y
    leverage = np.einsum("ij,ji->i", x, solve)
    residual = (y - x @ coef) / np.maximum(1.0 - leverage, 1e-9)
    if np.isinf(penalty):
        coef = np.r_[coef, np.zeros(width - free)]
    return coef, float(np.mean(residual**2))


def blend_ridge(outputs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """Ridge on the centred outputs, the penalty by leave-one-out error (the blend until 2026-12)."""
    coef, intercept, penalty = ridge_loo(outputs, y)
    return coef, intercept, {"ridge_penalty": penalty}


def _mean_design(outputs: np.ndarray) -> np.ndarray:
    mean = outputs.mean(axis=1, keepdims=True)
    return np.hstack([np.ones_like(mean), mean, outputs - mean])


def blend_mean_shrink(outputs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """An affine map of the sources' mean, plus a ridge on each source's departure from the
    mean (penalty by leave-one-out error, inf among them): with few labels the device is
    priced like the average source; more labels can move it towards particular sources."""
    x = _mean_design(outputs)
    fits = {penalty: _penalised_loo(x, y, 2, penalty) for penalty in (*PENALTIES, np.inf)}
    penalty = min(fits, key=lambda k: fits[k][1])
    (intercept, scale, *departure), k = fits[penalty][0], outputs.shape[1]
    departure = np.asarray(departure)
    coef = scale / k + departure - departure.sum() / k
    return coef, float(intercept), {"ridge_penalty": float(penalty), "mean_scale": float(scale)}


def _single_sources(outputs: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, float]]:
    ones = np.ones((len(y), 1))
    return [_penalised_loo(np.hstack([ones, outputs[:, [k]]]), y, 2, np.inf) for k in range(outputs.shape[1])]


def blend_best_source(outputs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """An affine map of the one source whose leave-one-out error is least."""
    fits = _single_sources(outputs, y)
    k = int(np.argmin([f[1] for f in fits]))
    coef = np.zeros(outputs.shape[1])
    coef[k] = fits[k][0][1]
    return coef, float(fits[k][0][0]), {"source": k}


def blend_averaged(outputs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """Each source's affine map, averaged with weights by their leave-one-out errors (each
    weighted as a Gaussian likelihood of its n leave-one-out residuals)."""
    fits = _single_sources(outputs, y)
    loglik = -0.5 * len(y) * np.log([f[1] for f in fits])
    w = np.exp(loglik - loglik.max())
    w /= w.sum()
    a, b = np.array([f[0][0] for f in fits]), np.array([f[0][1] for f in fits])
    return w * b, float(w @ a), {"weights": w.round(4).tolist()}


def blend_ensemble(outputs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, dict]:
    """The mean of the `blend_ridge` and `blend_averaged` predictions (the default): the
    averaged single sources carry it at 10 labels, the ridge's free blend at 100."""
    (c1, i1, ridge), (c2, i2, averaged) = blend_ridge(outputs, y), blend_averaged(outputs, y)
    return (c1 + c2) / 2, (i1 + i2) / 2, {**ridge, "source_weights": averaged["weights"]}


# The blends of source outputs tried (benchmarks/few_shot_methods.py); ``ensemble`` is chosen by
# leave-one-device-out on the public table (docs/device-tables.md, "Choosing the blend").
BLENDS = {
    "ridge": blend_ridge,
    "mean_shrink": blend_mean_shrink,
    "best_source": blend_best_source,
    "averaged": blend_averaged,
    "ensemble": blend_ensemble,
}
DEFAULT_BLEND = "ensemble"


def fit_few_shot(
    source: SourceModel, train: pd.DataFrame, blend: str = DEFAULT_BLEND, **extra
) -> LatencyPredictor:
    """The few-shot predictor of a device from its labelled rows ``train`` (network-unit rows at
    the batch size the source model was built for): the source model with a blend (`BLENDS`) of
    its outputs as the last layer. One MLP, log-latency output."""
    if blend not in BLENDS:
        raise ValueError(f"few-shot blend {blend!r} is not one of {list(BLENDS)}")
    normaliser = source.normaliser
    features = train[normaliser["features"]].to_numpy(np.float64)
    if not np.allclose(features[:, :N_SHAPE], np.asarray(normaliser["mean"])[:N_SHAPE]):
        raise ValueError("the labelled rows differ in shape or batch size from the source model's")
    if len(train) < 2:
        raise ValueError(f"{len(train)} labelled architecture(s); a few-shot fit needs at least 2")
    outputs = source.outputs(features)
    coef, intercept, info = BLENDS[blend](outputs, np.log(train["latency_ms"].to_numpy(np.float64)))
    weights = {"mean": np.asarray(normaliser["mean"]), "std": np.asarray(normaliser["std"])}
    *hidden, (w_out, b_out) = source.layers
    for i, (w, b) in enumerate(hidden):
        weights[f"w{i}"], weights[f"b{i}"] = w, b
    weights[f"w{len(hidden)}"] = (coef @ w_out)[None, :]
    weights[f"b{len(hidden)}"] = np.array([coef @ b_out + intercept])
    desc = describe(
        "few_shot",
        "mlp",
        normaliser,
        "log",
        {"mean": 0.0, "std": 1.0},
        architecture={"hidden": [w.shape[0] for w, _ in hidden], "activation": "relu"},
        transfer={
            "method": f"source MLP over the source devices + {blend} blend of its outputs",
            "sources": source.sources,
            "source_settings": source.settings,
            "source_final_loss": source.final_loss,
            "n_labels": int(len(train)),
            "blend_kind": blend,
            **info,
            "blend": dict(zip(source.sources, coef.round(6).tolist(), strict=True)),
        },
        **extra,
    )
    return LatencyPredictor(desc, weights)


CHOICES = ("random", "diverse", "doptimal")
DEFAULT_CHOICE = "doptimal"


def choose_labels(
    source: SourceModel, pool: pd.DataFrame, n: int, method: str, seed: int, protocol: Protocol
) -> np.ndarray:
    """Row positions of the ``n`` architectures of a `network_dataset` a new device should time,
    from the protocol's pool: ``random`` (`sample_pool`, seeded); ``diverse``: k-means (seeded)
    with n centres in the source model's output space (every source device's standardised log
    latency), the pool architecture nearest each centre; ``doptimal`` (the default): a greedy
    D-optimal design in the same space (`doptimal_rows`). Both spread the labels over the ways the
    known devices price architectures, which is what the blend is fitted on."""
    if method not in CHOICES:
        raise ValueError(f"label choice {method!r} is not one of {list(CHOICES)}")
    if method == "random":
        return sample_pool(pool, n, seed, protocol)
    inside = np.sort(pool_rows(pool, n, protocol))
    if n >= len(inside):
        return inside
    outputs = source.outputs(pool.iloc[inside][source.normaliser["features"]].to_numpy(np.float64))
    outputs = (outputs - outputs.mean(axis=0)) / outputs.std(axis=0)
    if method == "doptimal":
        return np.sort(inside[doptimal_rows(outputs, n, seed)])
    centres = KMeans(n_clusters=n, n_init=10, random_state=seed).fit(outputs).cluster_centers_
    chosen: list[int] = []
    for centre in centres:  # nearest architecture to each centre, each architecture once
        order = np.argsort(((outputs - centre) ** 2).sum(axis=1))
        chosen.append(next(int(k) for k in order if k not in chosen))
    return np.sort(inside[chosen])


def doptimal_rows(outputs: np.ndarray, n: int, seed: int) -> list[int]:
    """``n`` rows of ``outputs`` (standardised source outputs, one row per candidate) chosen
    greedily for a D-optimal design of an affine model on their first ``min(n // 2, 10)``
    principal components (at least 2, at most n - 1): from a random first row (``seed``), each
    next row the one of largest prediction variance under the rows chosen so far, so that the
    labels span the directions in which devices differ most, at their extremes. Fewer components
    than labels leave room to repeat each direction; more than 10 chased minor directions and
    made some devices worse at 50 labels than at 10 (docs/device-tables.md)."""
    centred = outputs - outputs.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = min(max(2, n // 2), 10, n - 1, len(s))
    design = np.c_[np.ones(len(outputs)), u[:, :k] * s[:k]]
    chosen = [int(np.random.default_rng(seed).integers(len(outputs)))]
    while len(chosen) < n:
        picked = design[chosen]
        inverse = np.linalg.inv(picked.T @ picked + 1e-3 * np.eye(design.shape[1]))
        variance = np.einsum("ij,jk,ik->i", design, inverse, design)
        variance[chosen] = -np.inf
        chosen.append(int(np.argmax(variance)))
    return chosen


# The MLP trained on a held-out device's n labels alone (its hidden layers: the source model's).
ALONE = {
    "base": "ridge",
    "activation": "relu",
    "lr": 1e-3,
    "epochs": 300,
    "batch_size": 64,
    "weight_decay": 0.0,
    "patience": 30,
}


def leave_one_device_out(
    table: pd.DataFrame,
    device: str,
    n_labels: list[int],
    seeds: list[int],
    protocol: Protocol,
    source_settings: dict | None = None,
    alone_settings: dict | None = None,
    log=lambda s: None,
) -> pd.DataFrame:
    """Scores of the few-shot predictor of ``device`` (sources: every other column), the same
    MLP trained on the device alone, and FLOPs, for every n and seed (`score_held_out`)."""
    source = fit_source_model(source_table(table, device), batch_size_of(device), source_settings, log)
    return score_held_out(table, device, source, n_labels, seeds, protocol, alone_settings, log)


# Families of the public table's devices (NASFLAT's harder splits): held out whole, the sources
# are the other families only.
FAMILIES = {
    "phone": lambda column: device_kind(column) == "phone",
    "cpu": lambda column: device_kind(column) == "cpu",
    **{
        f"gpu_{b}": (lambda column, b=b: device_kind(column) == "gpu" and batch_size_of(column) == b)
        for b in (1, 32, 256)
    },
}


def family_devices(table: pd.DataFrame, family: str) -> list[str]:
    """The device columns of a `FAMILIES` family in a table."""
    if family not in FAMILIES:
        raise ValueError(f"device family {family!r} is not one of {list(FAMILIES)}")
    return [d for d in device_columns(table) if FAMILIES[family](d)]


def leave_family_out(
    table: pd.DataFrame,
    family: str,
    n_labels: list[int],
    seeds: list[int],
    protocol: Protocol,
    source_settings: dict | None = None,
    alone_settings: dict | None = None,
    log=lambda s: None,
) -> pd.DataFrame:
    """`score_held_out` for every device of a family, the source model (one per batch size)
    built from the devices of the other families only; rows tagged ``split`` family:<name>."""
    held = family_devices(table, family)
    others = [d for d in device_columns(table) if d not in held]
    if not held or not others:
        raise ValueError(f"family {family!r}: {len(held)} device(s) held out, {len(others)} source(s)")
    parts, sources = [], {}
    for device in held:
        batch = batch_size_of(device)
        if batch not in sources:
            own = source_table(table, device, others)
            sources[batch] = fit_source_model(own, batch, source_settings, log)
        scores = score_held_out(table, device, sources[batch], n_labels, seeds, protocol, alone_settings, log)
        parts.append(scores.assign(split=f"family:{family}"))
    return pd.concat(parts, ignore_index=True)


def held_out_data(table: pd.DataFrame, device: str, protocol: Protocol) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A held-out device's `network_dataset` and its rows the protocol scores on."""
    data = network_dataset(table, device, batch_size_of(device), source=device)
    scored = score_rows(table[device].to_numpy(np.float64), table["index"].to_numpy(), protocol)
    return data, data[data["index"].isin(table.loc[scored, "index"])]


def score_held_out(
    table: pd.DataFrame,
    device: str,
    source: SourceModel,
    n_labels: list[int],
    seeds: list[int],
    protocol: Protocol,
    alone_settings: dict | None = None,
    log=lambda s: None,
) -> pd.DataFrame:
    """One row per (method, n, seed) with Spearman's rho and the share within +-10% on the
    device's scored rows: ``few_shot`` (the default blend on n random labels: HELP's draw),
    ``few_shot_ridge`` (the ridge blend), ``few_shot_chosen`` (the default blend on n labels of the
    default choice, as a measurement kit holds them: `DEFAULT_CHOICE`), the same
    MLP trained on the n labels alone, and FLOPs; and the device's `ceiling`."""
    batch = batch_size_of(device)
    data, test = held_out_data(table, device, protocol)
    alone = {"hidden": source.settings["hidden"], **ALONE, "seed": 0, **(alone_settings or {})}
    rows = []
    for n in n_labels:
        for seed in seeds:
            train = data.iloc[sample_pool(data, n, seed, protocol)]
            chosen = data.iloc[choose_labels(source, data, n, DEFAULT_CHOICE, seed, protocol)]
            own = fit_normaliser(train, "nb201", nb201.STEPS)
            models = {
                "few_shot": fit_few_shot(source, train),
                "few_shot_ridge": fit_few_shot(source, train, blend="ridge"),
                "few_shot_chosen": fit_few_shot(source, chosen),
                # No other labels of the device exist: its training rows are its validation too.
                "alone": fit_mlp(train, train, own, transform="log", **alone)[0],
                "flops": fit_flops(train, [(NETWORK_SHAPE, batch)], own),
            }
            for method, predictor in models.items():
                scores = latency_metrics(test["latency_ms"], predictor.predict(test))
                keep = ("spearman", "within_10pct", "n_test")
                rows.append(
                    {"device": device, "method": method, "n_labels": n, "seed": seed, "n_train": len(train)}
                    | {k: scores[k] for k in keep}
                )
        log(f"{device}: n={n} done")
    rows.append({"device": device, "method": "ceiling", "seed": 0, **ceiling(data, test, protocol)})
    return pd.DataFrame(rows).assign(split="device")


def ceiling(data: pd.DataFrame, test: pd.DataFrame, protocol: Protocol) -> dict:
    """How well the device's own labels can be ranked at all: gradient-boosted trees on the log
    latency of every architecture of the device outside the scoring range (some 14,000), scored
    like the others. Far more labels than any method gets; what it misses is the column's noise."""
    lo, hi = protocol.score
    train = data[(data["index"] < lo) | (data["index"] >= hi)]
    probs = prob_columns(nb201.OPS, nb201.STEPS)
    model = HistGradientBoostingRegressor(max_iter=500, max_leaf_nodes=63, random_state=0)
    model.fit(train[probs].to_numpy(), np.log(train["latency_ms"].to_numpy()))
    scores = latency_metrics(test["latency_ms"], np.exp(model.predict(test[probs].to_numpy())))
    return {
        "n_labels": int(len(train)),
        "n_train": int(len(train)),
        "spearman": scores["spearman"],
        "within_10pct": scores["within_10pct"],
        "n_test": scores["n_test"],
    }


def rank_cap(latency_ms: np.ndarray) -> float:
    """The highest Spearman's rho any prediction can reach against ``latency_ms`` with its ties
    (whole-millisecond columns): that of its tied ranks against a tie-breaking order of them."""
    tied = rankdata(latency_ms)
    return float(np.corrcoef(tied, rankdata(latency_ms, method="ordinal"))[0, 1])


def summarise(scores: pd.DataFrame, table: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """Per device and n: each method's mean (and seed standard deviation) of rho and of the
    share within +-10%, with the device's kind, its rank cap and its `ceiling`; plus one ``mean``
    row per n, the leave-one-device-out mean."""
    ceilings = scores[scores["method"] == "ceiling"].set_index("device")
    scores = scores[scores["method"] != "ceiling"]
    per = (
        scores.groupby(["device", "n_labels", "method"])
        .agg(
            spearman=("spearman", "mean"),
            spearman_std=("spearman", "std"),
            within_10pct=("within_10pct", "mean"),
        )
        .unstack("method")
    )
    per.columns = [f"{method}_{metric}" for metric, method in per.columns]
    per = per.reset_index()
    caps = {}
    for device in per["device"].unique():
        scored = score_rows(table[device].to_numpy(np.float64), table["index"].to_numpy(), protocol)
        caps[device] = rank_cap(table.loc[scored, device].to_numpy(np.float64))
    per.insert(1, "kind", per["device"].map(device_kind))
    per["rank_cap"] = per["device"].map(caps)
    if len(ceilings):
        per["ceiling_spearman"] = per["device"].map(ceilings["spearman"])
        per["ceiling_within_10pct"] = per["device"].map(ceilings["within_10pct"])
    mean = per.drop(columns=["device", "kind"]).groupby("n_labels").mean().reset_index()
    mean.insert(0, "device", "mean")
    mean.insert(1, "kind", "all")
    return pd.concat([per, mean], ignore_index=True)
