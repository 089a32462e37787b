"""Adaptive sampling: which specs of a candidate pool to time next, so that fewer timed specs
reach the accuracy of many random ones.

A round fits the predictor on the specs timed so far and scores every candidate (specs of the
same stream, not yet timed) by how unsure or wrong the predictor is there:

- ``committee``: the disagreement of a small ensemble (MLPs of the configured architecture, each
  on a bootstrap sample of the training specs, each with its own seed): the standard deviation of
  their log predictions (query by committee);
- ``nearest_error``: the error the predictor makes on the validation specs nearest to the
  candidate (mean absolute log error of its ``k`` nearest validation specs in the normalised
  feature space): nn-Meter's "sample more where the predictor errs".

The batch is spread over the candidates' cell shapes: each shape gets a share of the batch in
proportion to its candidates' summed scores (so a uniform score keeps the pool's mix of shapes),
and within a shape the highest scores win. Everything is seeded: the same labels choose the same
specs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lenna.datasets import fit_normaliser, merge_latency, normalise, split_by_spec_id
from lenna.io import read_metadata, read_parquet
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.mlp import fit_mlp
from lenna.space.specs import SHAPE_COLUMNS

METHODS = ("committee", "nearest_error", "random")


def shape_keys(table: pd.DataFrame) -> np.ndarray:
    """One key per row: its cell shape and batch size (the rows a cell predictor tells apart by
    shape)."""
    columns = [*SHAPE_COLUMNS, "batch_size"]
    return table[columns].astype(np.int64).astype(str).agg("-".join, axis=1).to_numpy()


def spread_over_shapes(keys: np.ndarray, scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` rows: each shape (``keys``) gets a share of ``n`` in proportion to its
    rows' summed ``scores`` (largest remainders; never more than it has), its highest scores first.
    Ties break by row order, so the choice is deterministic."""
    n = min(int(n), len(keys))
    scores = np.clip(np.nan_to_num(np.asarray(scores, dtype=np.float64)), 0.0, None) + 1e-12
    groups = pd.Series(np.arange(len(keys))).groupby(keys, sort=True)
    order = {k: idx.to_numpy()[np.argsort(-scores[idx.to_numpy()], kind="stable")] for k, idx in groups}
    quota = {k: 0 for k in order}
    left = n
    while left > 0:  # hand out the remainder to shapes with candidates left, by score mass
        open_keys = [k for k in order if quota[k] < len(order[k])]
        mass = np.array([scores[order[k][quota[k] :]].sum() for k in open_keys])
        share = mass / mass.sum() * left
        give = np.floor(share).astype(int)
        if give.sum() == 0:
            give[np.argsort(-(share - give), kind="stable")[:left]] += 1
        for k, g in zip(open_keys, give, strict=True):
            g = min(int(g), len(order[k]) - quota[k], left)
            quota[k] += g
            left -= g
    return np.sort(np.concatenate([order[k][: quota[k]] for k in order]))


def fit_first_transform(train: pd.DataFrame, val: pd.DataFrame, normaliser: dict, mlp: dict, **override):
    """The MLP of the config's settings (``mlp``) with its first transform, fitted on ``train``
    (early stopping on ``val``); ``override`` replaces settings (a committee member's seed)."""
    settings = {k: v for k, v in mlp.items() if k != "transforms"} | override
    predictor, _ = fit_mlp(train, val, normaliser, transform=mlp.get("transforms", ["log"])[0], **settings)
    return predictor


def committee_scores(
    train: pd.DataFrame,
    val: pd.DataFrame,
    pool: pd.DataFrame,
    normaliser: dict,
    mlp: dict,
    size: int,
    seed: int,
) -> np.ndarray:
    """Per candidate: the standard deviation of the log predictions of ``size`` MLPs, each fitted
    on a bootstrap sample of ``train`` with its own seed (early stopping on ``val``)."""
    rng = np.random.default_rng(seed)
    logs = []
    for member in range(size):
        sample = train.iloc[rng.integers(0, len(train), len(train))]
        member_seed = int(mlp.get("seed", 0)) + 1000 * (member + 1)
        predictor = fit_first_transform(sample, val, normaliser, mlp, seed=member_seed)
        logs.append(np.log(np.clip(predictor.predict(pool), 1e-9, None)))
    return np.std(np.stack(logs), axis=0)


def nearest_error_scores(
    predictor, val: pd.DataFrame, pool: pd.DataFrame, normaliser: dict, k: int
) -> np.ndarray:
    """Per candidate: the mean absolute log error of ``predictor`` on the ``k`` validation specs
    nearest to it in the normalised feature space."""
    error = np.abs(np.log(np.clip(predictor.predict(val), 1e-9, None) / val["latency_ms"].to_numpy()))
    z_val, z_pool = normalise(val, normaliser), normalise(pool, normaliser)
    k = min(k, len(val))
    scores = np.empty(len(pool))
    for start in range(0, len(pool), 1024):  # distances in blocks: memory stays small
        block = z_pool[start : start + 1024]
        d = ((block[:, None, :] - z_val[None, :, :]) ** 2).sum(axis=2)
        nearest = np.argpartition(d, k - 1, axis=1)[:, :k]
        scores[start : start + len(block)] = error[nearest].mean(axis=1)
    return scores


def choose(
    method: str,
    train: pd.DataFrame,
    val: pd.DataFrame,
    pool: pd.DataFrame,
    normaliser: dict,
    mlp: dict,
    n: int,
    seed: int,
    committee: int = 3,
    neighbours: int = 5,
    predictor=None,
) -> np.ndarray:
    """Indices (into ``pool``, sorted) of the ``n`` candidates to time next by ``method``
    (`METHODS`; ``random``: a uniform draw), given the timed ``train`` and ``val`` specs;
    ``nearest_error`` uses ``predictor`` where given (the MLP fitted on them), else fits it."""
    if method not in METHODS:
        raise ValueError(f"unknown adaptive sampling method {method!r}; known: {list(METHODS)}")
    n = min(int(n), len(pool))
    if method == "random":
        return np.sort(np.random.default_rng(seed).choice(len(pool), n, replace=False))
    if method == "committee":
        scores = committee_scores(train, val, pool, normaliser, mlp, committee, seed)
    else:
        if predictor is None:
            predictor = fit_first_transform(train, val, normaliser, mlp)
        scores = nearest_error_scores(predictor, val, pool, normaliser, neighbours)
    return spread_over_shapes(shape_keys(pool), scores, n)


def spec_cost_s(latency: pd.DataFrame, elapsed_s: dict[str, float]) -> pd.Series:
    """Timing seconds each spec cost its job (spec_id -> s): the job's wall time (``elapsed_s`` by
    shard) shared among its specs in proportion to their timed passes times their label. A proxy:
    building cells and the reference cell's visits are spread the same way."""
    work = latency["n_timed"].clip(lower=1) * latency["latency_ms"]
    share = work / work.groupby(latency["shard"]).transform("sum")
    return pd.Series((share * latency["shard"].map(elapsed_s)).to_numpy(), index=latency["spec_id"])


def timing_seconds(latency_paths) -> float:
    """Wall time of the timing jobs that wrote ``latency_paths`` (their ``elapsed_s``)."""
    return float(sum(read_metadata(path)["elapsed_s"] for path in latency_paths))


def plan_round(
    round_: int,
    spec_paths,
    latency_paths,
    pool: pd.DataFrame,
    settings: dict,
    datasets: dict,
    mlp: dict,
    seed: int,
) -> tuple[pd.DataFrame, dict]:
    """Round ``round_`` of adaptive sampling: the specs of ``pool`` to time next and the decision.

    The labels timed so far (``spec_paths`` / ``latency_paths``, merged and calibrated as the
    dataset will be, split by spec id) fit the MLP (``mlp``: the config's settings; its first
    transform) on the training split; its validation accuracy and the timing seconds spent decide
    whether to stop (``settings``: ``target_within_10pct``, ``budget_s``); otherwise the
    ``batch`` candidates of ``pool`` (training-split specs not timed yet) that ``method`` ranks
    highest are chosen. Returns the chosen specs (empty where the rounds stop) and the decision.
    """
    merged, _ = merge_latency(spec_paths, latency_paths, datasets["calibrate"], datasets["label_quality"])
    splits = split_by_spec_id(merged, datasets["split"])
    train, val = splits["train"], splits["val"]
    op_set, steps = str(merged["op_set"].iloc[0]), int(merged["steps"].iloc[0])
    normaliser = fit_normaliser(train, op_set, steps)
    predictor = fit_first_transform(train, val, normaliser, mlp)
    scores = latency_metrics(val["latency_ms"], predictor.predict(val))
    spent = timing_seconds(latency_paths)
    # The candidates not timed yet, at the target's batch size (a feature of every label). Not
    # merged is not untimed: a spec the merge left out (unstable, failed) was timed all the same.
    scheduled = pd.concat([read_parquet(path)["spec_id"] for path in spec_paths])
    candidates = pool[~pool["spec_id"].isin(scheduled)].reset_index(drop=True)
    candidates = candidates.assign(batch_size=int(merged["batch_size"].iloc[0]))
    decision = {
        "round": round_,
        "method": settings["method"],
        "n_timed": int(len(merged)),
        "n_train": int(len(train)),
        "timing_s": round(spent, 2),
        "val_within_10pct": float(scores["within_10pct"]),
        "val_median_ape": float(scores["median_ape"]),
        "n_candidates": int(len(candidates)),
    }
    reason = _stop_reason(settings, scores["within_10pct"], spent, candidates.empty)
    if reason is not None:
        return pool.iloc[:0], {**decision, "stop": True, "reason": reason, "n_chosen": 0}
    picked = choose(
        settings["method"],
        train,
        val,
        candidates,
        normaliser,
        mlp,
        settings["batch"],
        seed + round_,
        settings.get("committee", 3),
        settings.get("neighbours", 5),
        predictor,
    )
    chosen = candidates.iloc[picked].drop(columns="batch_size").reset_index(drop=True)
    return chosen, {**decision, "stop": False, "reason": "", "n_chosen": int(len(chosen))}


def _stop_reason(settings: dict, within_10pct: float, spent_s: float, exhausted: bool) -> str | None:
    """Why the rounds stop before this one (None: they go on)."""
    target, budget = settings.get("target_within_10pct"), settings.get("budget_s")
    if target is not None and within_10pct >= target:
        return f"validation within ±10% {within_10pct:.3f} >= target {target}"
    if budget is not None and spent_s >= budget:
        return f"timing {spent_s:.0f} s >= budget {budget} s"
    if exhausted:
        return "the candidate pool is exhausted"
    return None
