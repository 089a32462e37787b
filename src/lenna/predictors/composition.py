"""Whole networks from their cells: the network-level model of a predictor.

A network spends more than the sum of its cells timed alone: the stem, the head and, in
NAS-Bench-201, the residual reduction blocks, and between and around its cells the work that
a cell timed on its own does not see (tensors handed from cell to cell, caches, the framework's
per-module overhead). `fit_network_model` learns that from whole networks timed by the cells'
protocol (`lenna.timing.networks`): the parts outside cells, each a linear function of its
multiply-accumulates (from their timings, so no device is needed later), and a composition of
the cells' predicted latency ``c``, the parts' ``p`` and the network's structure:

- ``sum``: ``c + p``, the plain sum;
- ``affine``: ``a (c + p) + b``, a calibrated composition (scale and offset);
- ``overhead``: ``a c + p + o n_cells + r n_reductions + b``, an overhead per cell and per
  reduction;
- ``features``: a ridge regression on network-level features (``c``, ``p``, cells, reductions,
  channels, pixels and the activations the cells hand on).

Every candidate is fitted for relative error (Huber's loss) and the one with the lowest median
relative error on networks it was not fitted on is kept (the simpler where two are within half a
point): leave-one-macro-out over the training and validation networks where they span several
macros, else on the validation networks. A fitting macro with enough networks of its own also
gets a calibration fitted on them (a scale on the pooled candidate, or a scale and an offset
where its networks span a wide range of latency), kept where it predicts them better than the
pooled candidate alone (`fit_macro_calibrations`), and may lend it to macros of the same cells
that have no networks of their own (`fit_lending`). All are affine in ``c`` at a given macro
(`NetworkModel.affine`), so the search's expected latency stays differentiable in the alphas.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pandas as pd

from lenna.datasets import split_of
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.network import (
    CANDIDATES,
    FEATURES,
    FORMAT,
    FORMAT_VERSION,
    PARTS,
    NetworkModel,
    NetworkModelError,
    affine_terms,
    macro_of_row,
    nearest_same_cells,
    part_macs,
    structure,
)
from lenna.space.network import Macro
from lenna.space.spaces import Space, get_space, parse_architecture

RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


# -- the network dataset -----------------------------------------------------------------------------
def network_dataset(
    measured: pd.DataFrame,
    nominal_reference_ms: float,
    calibrate: bool,
    fractions: dict[str, float],
    path,
    space: Space | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The timed networks as a dataset: failed and unstable ones left out (and counted), labels
    and parts calibrated as the cells' are (`lenna.datasets.merge_latency`: scaled by the cell
    jobs' median reference timing over this job's), and a split: random networks at the fitting
    macros by a hash of architecture and macro (train / val / test in ``fractions``), the others
    by their group (``held_out``, ``published``). Given the networks' ``space``, each network's
    parts' multiply-accumulates too (``{part}_macs``, `part_macs`: counted here, once per macro,
    so that the network models fitted on the table build no network)."""
    needed = ["name", "group", "network", "genotype", "status", "latency_ms", "reference_ms", "batch_size"]
    missing = [c for c in needed + [f"{p}_ms" for p in PARTS] if c not in measured.columns]
    if missing:
        raise NetworkModelError(f"{path}: not a table of timed networks: lacks column(s) {missing}")
    if not np.isfinite(nominal_reference_ms) or nominal_reference_ms <= 0:
        raise NetworkModelError(f"{path}: the cell jobs' reference timing is {nominal_reference_ms}")
    table = measured[measured["status"] == "ok"].copy()
    table["speed_factor"] = table["reference_ms"] / nominal_reference_ms if calibrate else 1.0
    table["latency_ms_raw"] = table["latency_ms"]
    for column in ["latency_ms", *(f"{p}_ms" for p in PARTS)]:
        table[column] = table[column] / table["speed_factor"]
    macro = [c for c in table.columns if c.startswith("macro_")]
    keys = table["genotype"] + "@" + table[macro].astype(str).agg(",".join, axis=1)
    hashed = keys.map(lambda k: hashlib.sha256(k.encode()).hexdigest()[:16])
    table["split"] = np.where(
        table["group"] == "random", hashed.map(lambda h: split_of(h, fractions)), table["group"]
    )
    if space is not None:
        macs = [part_macs(space, macro_of_row(row)) for _, row in table.iterrows()]
        for part in PARTS:
            table[f"{part}_macs"] = [float(m[part]) for m in macs]
    summary = {
        "n_timed": int(len(measured)),
        "n_ok": int(len(table)),
        "n_unstable": int((measured["status"] == "unstable").sum()),
        "n_failed": int((measured["status"] == "failed").sum()),
        "noise_floor": float(measured["uncertainty"].median()) if "uncertainty" in measured else float("nan"),
        "speed_factor": float(table["speed_factor"].median()) if len(table) else float("nan"),
        "by_split": {str(k): int(v) for k, v in table["split"].value_counts().sort_index().items()},
    }
    return table.reset_index(drop=True), summary


# -- fitting -----------------------------------------------------------------------------------------
NETWORK_COLUMNS = [
    "name",
    "group",
    "split",
    "network",
    "genotype",
    "latency_ms",
    "batch_size",
    *(f"{p}_ms" for p in PARTS),
]


def check_network_table(table: pd.DataFrame, path) -> None:
    """A network table (`lenna.timing.networks` rows, merged) fit for the model: the columns,
    positive finite labels, training networks; else an error naming ``path``."""
    missing = [c for c in NETWORK_COLUMNS if c not in table.columns]
    macro = [c for c in table.columns if c.startswith("macro_")]
    if missing or not macro:
        raise NetworkModelError(f"{path}: not a network table: lacks column(s) {missing or ['macro_*']}")
    bad = ~(np.isfinite(table["latency_ms"]) & (table["latency_ms"] > 0))
    if bad.any():
        raise NetworkModelError(
            f"{path}: {int(bad.sum())} network(s) with a non-positive or missing latency_ms "
            f"(first: {table.loc[bad, 'name'].iloc[0]} at {table.loc[bad, 'network'].iloc[0]})"
        )
    if not (table["split"] == "train").any():
        raise NetworkModelError(
            f"{path}: no training networks (split 'train') to fit a network model on; networks "
            "labelled unstable or failed are left out (counted in the summary.json beside it): "
            "time more networks (networks.n_architectures) or on a quieter machine"
        )


def network_inputs(table: pd.DataFrame, predictor, space: Space) -> pd.DataFrame:
    """Per network: the cells' predicted latency, the structure features and the parts'
    multiply-accumulates (the table's ``{part}_macs``, or counted where it has none)."""
    rows = []
    for _, row in table.iterrows():
        macro = macro_of_row(row)
        cells = predictor.predict_cells(parse_architecture(row["genotype"]), macro, int(row["batch_size"]))
        macs = {p: row[f"{p}_macs"] for p in PARTS} if f"{PARTS[0]}_macs" in row else part_macs(space, macro)
        rows.append({"cells_ms": cells, **structure(space, macro), **macs})
    return pd.DataFrame(rows, index=table.index)


def counted_macs(table: pd.DataFrame, inputs: pd.DataFrame) -> list[dict]:
    """The parts' multiply-accumulates of every macro of ``table`` (from `network_inputs`), as a
    network model keeps them (`NetworkModel.macs`)."""
    out = {}
    for (_, row), (_, x) in zip(table.iterrows(), inputs.iterrows(), strict=True):
        macro = dataclasses.asdict(macro_of_row(row))
        out.setdefault(json.dumps(macro, sort_keys=True), {"macro": macro, **{p: float(x[p]) for p in PARTS}})
    return [out[k] for k in sorted(out)]


def fit_parts(table: pd.DataFrame, inputs: pd.DataFrame) -> dict:
    """Each part's latency as ``coef * macs + intercept``, fitted for relative error over the
    training networks' macros (the median of the part's labels per macro); a constant where
    the training networks have fewer than two macros of different size."""
    out = {}
    for part in PARTS:
        frame = pd.DataFrame({"macs": inputs[part], "ms": table[f"{part}_ms"]})[table["split"] == "train"]
        frame = frame[frame["macs"] > 0]
        per_macro = frame.groupby("macs")["ms"].median()
        if len(per_macro) >= 2:
            x = np.stack([per_macro.index.to_numpy(float), np.ones(len(per_macro))], axis=1)
            w = 1 / per_macro.to_numpy()
            coef, intercept = np.linalg.lstsq(x * w[:, None], per_macro.to_numpy() * w, rcond=None)[0]
        else:
            coef, intercept = 0.0, float(per_macro.mean()) if len(per_macro) else 0.0
        out[part] = {
            "coef": float(coef),
            "intercept": float(intercept),
            "timed_ms": {str(int(k)): float(v) for k, v in per_macro.items()},
        }
    return out


HUBER_DELTA = 0.03  # relative error beyond which a network's weight in the fit falls off


def _relative_lstsq(x: np.ndarray, y: np.ndarray, offset: np.ndarray, alpha: float = 0.0) -> np.ndarray:
    """``x @ w + offset ~ y`` in relative error, robustly: Huber's loss (quadratic within
    `HUBER_DELTA`, linear beyond, by iteratively reweighted least squares), so that a network
    timed during a slow spell does not pull the fit; a ridge ``alpha`` on the standardised
    columns (none on a constant column)."""
    a, b = x / y[:, None], (y - offset) / y
    scale = np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
    a = a / scale
    penalty = alpha * len(y) * np.diag((x.std(axis=0) > 0).astype(float))
    weights = np.ones(len(y))
    for _ in range(20):
        aw = a * weights[:, None]
        # least squares, not solve: a fold of one macro makes the structure columns collinear
        coef = np.linalg.lstsq(aw.T @ a + penalty, aw.T @ b, rcond=None)[0]
        residual = np.abs(a @ coef - b)
        weights = np.minimum(1.0, HUBER_DELTA / np.maximum(residual, 1e-12))
    return coef / scale


def fit_candidate(kind: str, x: pd.DataFrame, y: np.ndarray, alpha: float = 0.0) -> dict:
    """Parameters of candidate ``kind`` fitted on inputs ``x`` (`FEATURES` columns) and labels."""
    c, p = x["cells_ms"].to_numpy(), x["parts_ms"].to_numpy()
    ones = np.ones(len(y))
    if kind == "sum":
        return {}
    if kind == "affine":
        a, b = _relative_lstsq(np.stack([c + p, ones], 1), y, 0 * y)
        return {"a": float(a), "b": float(b)}
    if kind == "overhead":
        cols = np.stack([c, x["n_cells"].to_numpy(), x["n_reductions"].to_numpy(), ones], 1)
        a, o, r, b = _relative_lstsq(cols, y, p)
        return {"a": float(a), "o": float(o), "r": float(r), "b": float(b)}
    cols = np.stack([x[f].to_numpy() for f in FEATURES] + [ones], 1)
    coef = _relative_lstsq(cols, y, 0 * y, alpha)
    return {
        "weights": {f: float(v) for f, v in zip(FEATURES, coef[:-1], strict=True)},
        "intercept": float(coef[-1]),
        "alpha": alpha,
    }


# The floor: a network predicted at least the plain sum of its cells' predicted latency and its
# parts, where the fitting networks bear it out (at most FLOOR_SHARE of them measured under
# FLOOR_RATIO of that sum). A composition fitted for the median network can price the cheapest
# below it: an `affine` with an own calibration at the search macro took a 0.33 ms NAS-Bench-201
# network of `none` cells 18% under its measured latency. Measured over the sum, the timed
# networks of five runs were 0.92-1.27 (NAS-Bench-201, under 0.95 for 0-4% of them) and
# 1.04-1.18 (the default space), with the MLP's shape base (docs/networks.md). Where the cell
# predictor prices cells too high the networks fall below the sum, and the floor is off.
FLOOR_RATIO = 0.95
FLOOR_SHARE = 0.05


def floor_holds(table: pd.DataFrame, inputs: pd.DataFrame, y: np.ndarray) -> dict:
    """Whether the floor holds on the training and validation networks of ``table``: ``used``,
    and the share of them measured under `FLOOR_RATIO` of their cells' and parts' sum."""
    fitting = table["split"].isin(["train", "val"]).to_numpy()
    plain = (inputs["cells_ms"] + inputs["parts_ms"]).to_numpy()
    share = float((y[fitting] < FLOOR_RATIO * plain[fitting]).mean()) if fitting.any() else 1.0
    return {"used": share <= FLOOR_SHARE, "share_under": share, "ratio": FLOOR_RATIO}


def floored(pred: np.ndarray, x: pd.DataFrame) -> np.ndarray:
    """``pred`` raised to each network's ``floor_ms`` where inputs ``x`` hold one."""
    return np.maximum(pred, x["floor_ms"].to_numpy()) if "floor_ms" in x else pred


def predict_rows(kind: str, params: dict, x: pd.DataFrame, floor: bool = True) -> np.ndarray:
    """Candidate ``kind``'s prediction of the networks of inputs ``x``, `floored` unless not
    ``floor`` (what a macro's own ``scale`` multiplies, as `NetworkModel.predict` does)."""
    out = []
    for _, row in x.iterrows():
        k, m = affine_terms(kind, params, row.to_dict())
        out.append(k * row["cells_ms"] + m)
    return floored(np.array(out), x) if floor else np.array(out)


def _score(y: np.ndarray, pred: np.ndarray) -> dict:
    return _score_errors(np.abs(pred / y - 1))


def _score_errors(rel: np.ndarray) -> dict:
    return {
        "median_ape": float(np.median(rel)),
        "mean_ape": float(rel.mean()),
        "within_10pct": float((rel <= 0.1).mean()),
        "n": int(len(rel)),
    }


def _cross_macro(kind: str, inputs: pd.DataFrame, y: np.ndarray, keys: np.ndarray, fitting, alpha) -> dict:
    """Score of candidate ``kind`` on each macro of the ``fitting`` networks when fitted on the
    others' (leave one macro out): how it predicts a macro it was not fitted on."""
    errors = []
    for macro in sorted(set(keys[fitting])):
        rest, held = fitting & (keys != macro), fitting & (keys == macro)
        params = fit_candidate(kind, inputs[rest], y[rest], alpha)
        errors.append(np.abs(predict_rows(kind, params, inputs[held]) / y[held] - 1))
    return _score_errors(np.concatenate(errors))


def _fit_candidates(table: pd.DataFrame, inputs: pd.DataFrame, y: np.ndarray) -> tuple[dict, str]:
    """Every candidate's parameters and the score it is chosen by. Where the training and
    validation networks span two macros or more, each candidate (and the ridge strength of
    ``features``) is scored leave-one-macro-out over all of them and then fitted on all of them:
    a few validation networks at the fitting macros cannot tell a model that extrapolates to
    another macro from one that does not. Otherwise fitted on the training networks and scored
    on the validation ones (on the training ones where a tiny run has none)."""
    train, val = (table["split"] == "train").to_numpy(), (table["split"] == "val").to_numpy()
    keys = table["network"].to_numpy()  # the macro's name (`lenna.timing.networks.macro_name`)
    by_macro = len(set(keys[train | val])) >= 2
    fitting = train | val if by_macro else train
    select = val if val.any() else train
    candidates = {}
    for kind in CANDIDATES:
        alphas = RIDGE_ALPHAS if kind == "features" else (0.0,)
        if by_macro:
            tries = [(_cross_macro(kind, inputs, y, keys, fitting, a), a) for a in alphas]
            score, alpha = min(tries, key=lambda t: t[0]["median_ape"])
            params = fit_candidate(kind, inputs[fitting], y[fitting], alpha)
        else:
            tries = [fit_candidate(kind, inputs[train], y[train], a) for a in alphas]
            scored = [(_score(y[select], predict_rows(kind, q, inputs[select])), q) for q in tries]
            score, params = min(scored, key=lambda t: t[0]["median_ape"])
        candidates[kind] = {
            "params": params,
            "train": _score(y[fitting], predict_rows(kind, params, inputs[fitting])),
            "selection": score,
        }
    if by_macro:
        return candidates, "leave-one-macro-out median_ape (train and val networks)"
    return candidates, "val median_ape" if val.any() else "train median_ape (no validation networks)"


# A macro gets its own calibration only with this many training and validation networks: its two
# parameters are then fitted on a few networks each of several folds.
MIN_MACRO_NETWORKS = 8
MACRO_FOLDS = 5


def _fold_of(name: str) -> int:
    """The cross-validation fold of an architecture (the same at every macro it was timed at)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % MACRO_FOLDS


# A macro's own calibration fits an offset only where its networks span this factor of latency
# (90th over 10th percentile); elsewhere a scale.
MIN_OFFSET_SPREAD = 2.0


def fit_macro_calibrations(
    table: pd.DataFrame, inputs: pd.DataFrame, y: np.ndarray, chosen: str, params: dict
) -> dict:
    """Per fitting macro, a calibration of the pooled model ``chosen`` fitted on the macro's own
    networks, kept (``used``) where it predicts them better than the pooled model does.

    The pooled model is chosen for macros it was not fitted on, so it must share one form across
    all of them; at a macro with networks of its own, the cell predictor's errors there (of one
    sign at one resolution, of the other at another, as NAS-Bench-201's) and the network's fixed
    costs can differ from the pooled fit's compromise. Two forms (`_own_forms`):
    - ``scale``: ``s`` times the pooled prediction, ``s`` the median of the macro's networks'
      measured over pooled latency;
    - ``affine``: ``a (c + p) + b``, only where the macro's networks span a wide range of latency
      (`MIN_OFFSET_SPREAD`). Over a narrow range a slope and an offset trade off against each
      other: fitted on the default config's random networks at its final macro (8-16 ms), an
      offset of -0.9 ms priced the 2-3 ms networks its latency-aware searches found 17-23% low.

    Each form is scored by cross-validation over architectures (`MACRO_FOLDS` folds, an
    architecture in the same fold at every macro): per fold the pooled model is refitted on every
    other fold's networks, and the form on that macro's among them. The better form is kept where
    its median relative error is lower than the pooled model's by more than half a point and its
    latency grows with the cells'. Only where the training and validation networks span two
    macros or more (with one, the pooled model is that macro's own)."""
    keys = table["network"].to_numpy()
    fitting = table["split"].isin(["train", "val"]).to_numpy()
    if len(set(keys[fitting])) < 2:
        return {}
    forms = {key: _own_forms(y[fitting & (keys == key)]) for key in set(keys[fitting])}
    pooled, own = _cross_validate_own(table, inputs, y, fitting, forms, chosen, params.get("alpha", 0.0))
    everywhere = predict_rows(chosen, params, inputs, floor=False)
    out = {}
    for key in sorted(set(keys[fitting])):
        at = fitting & (keys == key)
        if at.sum() < MIN_MACRO_NETWORKS:
            continue
        scored = {form: at & np.isfinite(own[form]) & np.isfinite(pooled) for form in forms[key]}
        scores = {form: _score(y[rows], own[form][rows]) for form, rows in scored.items()}
        form = min(scores, key=lambda f: scores[f]["median_ape"])
        fitted = _fit_own(form, inputs[at], y[at], everywhere[at])
        rows = scored[form]
        selection = {"own": scores[form], "pooled": _score(y[rows], pooled[rows])}
        better = selection["own"]["median_ape"] < selection["pooled"]["median_ape"] - 0.005
        out[str(key)] = {
            "macro": dataclasses.asdict(macro_of_row(table[at].iloc[0])),
            "form": form,
            "params": fitted,
            "selection": selection,
            "forms": scores,
            "used": bool(better and (form == "scale" or _increasing("affine", {"params": fitted}))),
        }
    return out


def _cross_validate_own(table, inputs, y, fitting, forms, chosen, alpha) -> tuple[np.ndarray, dict]:
    """Each fitting network's prediction by the pooled model ``chosen`` and by each of its
    macro's ``forms`` of own calibration, all fitted on the other folds' networks."""
    keys, folds = table["network"].to_numpy(), table["name"].map(_fold_of).to_numpy()
    pooled = np.full(len(y), np.nan)
    own = {form: np.full(len(y), np.nan) for form in ("scale", "affine")}
    for fold in range(MACRO_FOLDS):
        rest, held = fitting & (folds != fold), fitting & (folds == fold)
        if not held.any() or not rest.any():
            continue
        refitted = fit_candidate(chosen, inputs[rest], y[rest], alpha)
        predicted = predict_rows(chosen, refitted, inputs, floor=False)  # own scales multiply it
        pooled[held] = floored(predicted[held], inputs[held])
        for key in set(keys[held]):
            at, here = rest & (keys == key), held & (keys == key)
            if at.sum() >= 2:
                for form in forms[key]:
                    fitted = _fit_own(form, inputs[at], y[at], predicted[at])
                    own[form][here] = _predict_own(form, fitted, inputs[here], predicted[here])
    return pooled, own


def _own_forms(latency: np.ndarray) -> tuple[str, ...]:
    """The forms of a macro's own calibration its networks' latencies can pin down."""
    low, high = np.quantile(latency, [0.1, 0.9])
    return ("scale", "affine") if high >= MIN_OFFSET_SPREAD * low else ("scale",)


def _fit_own(form: str, x: pd.DataFrame, y: np.ndarray, pooled: np.ndarray) -> dict:
    """Calibration ``form`` of a macro's networks ``x``; ``pooled`` unfloored (`predict_rows`)."""
    if form == "scale":  # the median of measured over pooled latency
        return {"scale": float(np.median(y / pooled))}
    return fit_candidate("affine", x, y)


def _predict_own(form: str, params: dict, x: pd.DataFrame, pooled: np.ndarray) -> np.ndarray:
    """``x``'s networks by own calibration ``form``, on the unfloored ``pooled`` prediction."""
    return floored(params["scale"] * pooled, x) if form == "scale" else predict_rows("affine", params, x)


def fit_lending(
    table: pd.DataFrame, inputs: pd.DataFrame, y: np.ndarray, chosen: str, params: dict, macros: dict
) -> dict:
    """Whether a macro without networks of its own (the held-out macro, any a user asks for) takes
    the calibration of the fitting macro of the same cells nearest in layers (`same_cells`).

    The cell predictor's error is a property of the cells' shapes (NAS-Bench-201's is of one sign
    at 8 pixels and of the other at 32): a network of three cells per stage errs as one of five
    at the same channels and resolution. Or a macro's own law may be its own (an overhead of that
    network alone), which its siblings do not share. Decided on the fitting macros that have a
    sibling of the same cells: each is predicted by its nearest sibling's calibration and by
    the pooled model, both fitted without its networks; lending is ``used`` where the borrowed
    calibration's median relative error is lower by more than half a point. Without two fitting
    macros of the same cells there is no such evidence, and the cells' shapes decide: lent. In
    two runs of `config/nb201.yaml` (one fitting macro per resolution), the held-out macro's
    networks were 95% and 79% within ±10% by the pooled model, and 100% and 100% with the
    calibration of the 32-px fitting macro lent to it (docs/networks.md)."""
    keys = table["network"].to_numpy()
    fitting = table["split"].isin(["train", "val"]).to_numpy()
    nearest = {key: nearest_same_cells(macros, Macro(**entry["macro"])) for key, entry in macros.items()}
    pairs = [(key, found[0]) for key, found in nearest.items() if found is not None]
    if not pairs:
        return {"used": True, "pairs": [], "selection": None}
    alpha = params.get("alpha", 0.0)
    borrowed, pooled = [], []
    for key, name in pairs:
        rest, held, lender = fitting & (keys != key), fitting & (keys == key), fitting & (keys == name)
        refitted = fit_candidate(chosen, inputs[rest], y[rest], alpha)
        predicted = predict_rows(chosen, refitted, inputs, floor=False)  # own scales multiply it
        form = macros[name]["form"]
        own = _fit_own(form, inputs[lender], y[lender], predicted[lender])
        borrowed.append(np.abs(_predict_own(form, own, inputs[held], predicted[held]) / y[held] - 1))
        pooled.append(np.abs(floored(predicted[held], inputs[held]) / y[held] - 1))
    selection = {
        "borrowed": _score_errors(np.concatenate(borrowed)),
        "pooled": _score_errors(np.concatenate(pooled)),
    }
    better = selection["borrowed"]["median_ape"] < selection["pooled"]["median_ape"] - 0.005
    return {"used": bool(better), "pairs": [list(p) for p in pairs], "selection": selection}


def _increasing(kind: str, candidate: dict) -> bool:
    """Whether the candidate's latency grows with its cells' (its scale on cells_ms positive)."""
    params = candidate["params"]
    if kind == "sum":
        return True
    return (params["a"] if kind in ("affine", "overhead") else params["weights"]["cells_ms"]) > 0


def fit_network_model(
    table: pd.DataFrame, predictor, path="network table"
) -> tuple[NetworkModel, pd.DataFrame]:
    """Fit the parts on the training networks of ``table`` (merged rows of
    `lenna.timing.networks.measure_networks` with a ``split``) and every candidate
    (`_fit_candidates`), keep the candidate of the lowest median relative error on networks it
    was not fitted on, and return the model with the inputs of every network."""
    check_network_table(table, path)
    if table["batch_size"].nunique() != 1:
        raise NetworkModelError(
            f"{path}: networks at several batch sizes {sorted(table['batch_size'].unique())}"
        )
    space = get_space(predictor.description["op_set"], predictor.steps)
    inputs = network_inputs(table, predictor, space)
    parts = fit_parts(table, inputs)
    macs = counted_macs(table, inputs)
    draft = NetworkModel({"op_set": space.op_set, "steps": space.steps, "parts": parts, "part_macs": macs})
    inputs["parts_ms"] = [sum(draft.parts_ms(macro_of_row(row)).values()) for _, row in table.iterrows()]
    y = table["latency_ms"].to_numpy(float)
    floor = floor_holds(table, inputs, y)
    inputs["floor_ms"] = (inputs["cells_ms"] + inputs["parts_ms"]) if floor["used"] else 0.0
    candidates, chosen_by = _fit_candidates(table, inputs, y)
    # By the median: a network timed in a slow spell is the label's error, not the model's. The
    # simpler of two candidates within half a point of each other (CANDIDATES is in that order).
    # Never one whose latency falls as its cells get slower (a scale on the cells of 0 or less,
    # as a few noisy networks can fit): it would price a slow network below zero. `sum` always holds.
    errors = {
        k: candidates[k]["selection"]["median_ape"] for k in CANDIDATES if _increasing(k, candidates[k])
    }
    chosen = next(k for k in errors if errors[k] <= min(errors.values()) + 0.005)
    macros = fit_macro_calibrations(table, inputs, y, chosen, candidates[chosen]["params"])
    lending = fit_lending(table, inputs, y, chosen, candidates[chosen]["params"], macros)
    description = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "op_set": space.op_set,
        "steps": space.steps,
        "batch_size": int(table["batch_size"].iloc[0]),
        "chosen": chosen,
        "chosen_by": chosen_by,
        "candidates": candidates,
        "parts": parts,
        "part_macs": macs,
        "macros": macros,
        "lending": lending,
        "floor": "sum" if floor["used"] else "none",
        "floor_check": floor,
        "predictor_weights_sha256": predictor.description.get("weights_sha256", ""),
        "n_networks": {str(k): int(v) for k, v in table["split"].value_counts().items()},
    }
    return NetworkModel(description), inputs


def score_networks(table: pd.DataFrame, model: NetworkModel, inputs: pd.DataFrame) -> pd.DataFrame:
    """The network table with each network's predictions: ``predicted_cells_ms``,
    ``predicted_sum_ms`` (the plain sum of cells and parts) and ``predicted_ms`` (the model, by
    `NetworkModel.predict`: the very path of the API and the search, floor included)."""
    out = table.drop(columns=["genotype"]).copy()
    out["predicted_cells_ms"] = inputs["cells_ms"]
    out["predicted_parts_ms"] = inputs["parts_ms"]
    out["predicted_sum_ms"] = predict_rows("sum", {}, inputs, floor=False)
    out["predicted_ms"] = [
        model.predict(float(cells), macro_of_row(row), int(row["batch_size"]))
        for cells, (_, row) in zip(inputs["cells_ms"], table.iterrows(), strict=True)
    ]
    return out


# -- scoring -----------------------------------------------------------------------------------------
SCORED = ("test", "held_out", "published")


def network_metrics(scored: pd.DataFrame, model: NetworkModel) -> dict:
    """How well whole networks are predicted, by the model and by the plain sum: over every
    network no model was fitted or chosen on (the test split, the held-out macro, the published
    architectures) at the top level, and per split and per macro."""

    def both(rows: pd.DataFrame) -> dict:
        return {
            "model": latency_metrics(rows["latency_ms"], rows["predicted_ms"]),
            "sum": latency_metrics(rows["latency_ms"], rows["predicted_sum_ms"]),
        }

    held = scored[scored["split"].isin(SCORED)]
    if not len(held):
        held = scored  # a tiny run may have no network outside the training split
    overall = both(held)
    return {
        **overall["model"],
        "sum": overall["sum"],
        "chosen": model.chosen,
        "chosen_by": model.description["chosen_by"],
        "name": model.name,
        "macros": {
            k: {"used": v["used"], "form": v["form"], "params": v["params"], "selection": v["selection"]}
            for k, v in model.description.get("macros", {}).items()
        },
        "lending": model.description.get("lending"),
        "candidates": {
            k: {"selection": v["selection"], "train": v["train"]}
            for k, v in model.description["candidates"].items()
        },
        "by_split": {str(k): both(rows) for k, rows in scored.groupby("split")},
        "by_network": {str(k): both(rows) for k, rows in held.groupby("network")},
    }
