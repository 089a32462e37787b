"""Baselines that need no learning from labels beyond a fit of scale: constant, lookup table, FLOPs.

The lookup table and the FLOPs / parameter-count model see a cell as independent parts (the two
preprocessing ops plus, on every edge, the expected cost sum_op p(op) * cost(op at that edge's
channels, pixels and stride)). They are therefore linear in the probabilities for a fixed shape,
and are stored as `shape_linear` predictors: per shape a base cost and one coefficient per edge
and op.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from lenna.predictors.fitting import describe
from lenna.predictors.model import N_SHAPE, LatencyPredictor, shape_vector
from lenna.space.cell import CellShape
from lenna.space.ops import op_set
from lenna.space.parts import LUT_COLUMNS, Part, cell_parts
from lenna.space.spaces import get_space


def fit_constant(train: pd.DataFrame, normaliser: dict, **extra) -> LatencyPredictor:
    """Predicts the mean training latency for every spec: the floor every model must beat."""
    value = float(train["latency_ms"].mean())
    desc = describe("constant", "constant", normaliser, "linear", {"mean": 0.0, "std": 1.0}, **extra)
    return LatencyPredictor(desc, {"value": np.array([value])})


def _table_quantities(table: dict, x: np.ndarray) -> np.ndarray:
    """Per row of raw features, the quantities of a shape table (n, n_quantities)."""
    index = {tuple(row): i for i, row in enumerate(table["shapes"])}
    idx = np.array([index[tuple(row)] for row in x[:, :N_SHAPE]])
    return table["base"][idx] + np.einsum("nqf,nf->nq", table["coef"][idx], x[:, N_SHAPE:])


def fit_lut(lut: pd.DataFrame, shapes_with_batch, normaliser: dict, **extra) -> LatencyPredictor:
    """ProxylessNAS lookup table: a cell costs its preprocessing plus, per edge, sum_op p * LUT(op).
    Nothing is fitted; every part must have been timed."""
    lookup = {tuple(r[:-1]): r[-1] for r in lut[LUT_COLUMNS].itertuples(index=False, name=None)}

    def quantities(part, batch):
        key = (*part, batch)
        if key not in lookup:
            raise KeyError(
                f"the lookup table has no entry for {dict(zip(LUT_COLUMNS[:-1], key, strict=True))}"
            )
        return [lookup[key]]

    table = shape_table(shapes_with_batch, op_set(normaliser["op_set"]), normaliser["steps"], quantities)
    desc = describe(
        "lut", "shape_linear", normaliser, "linear", {"mean": 0.0, "std": 1.0}, quantities=["lut_ms"], **extra
    )
    return LatencyPredictor(desc, {**table, "scale": np.array([1.0]), "offset": np.array([0.0])})


def fit_flops(train: pd.DataFrame, shapes_with_batch, normaliser: dict, **extra) -> LatencyPredictor:
    """Least squares of latency (ms) on the cell's expected MFLOPs (times batch) and parameters."""
    from sklearn.linear_model import LinearRegression  # here: a second of import the other fits skip

    counts = {}

    def quantities(part, batch):
        if part not in counts:
            counts[part] = count_part(part)
        mflops, params = counts[part]
        return [mflops * batch, params]

    table = shape_table(shapes_with_batch, op_set(normaliser["op_set"]), normaliser["steps"], quantities)
    q = _table_quantities(table, train[normaliser["features"]].to_numpy(np.float64))
    model = LinearRegression().fit(q, train["latency_ms"].to_numpy(np.float64))
    desc = describe(
        "flops",
        "shape_linear",
        normaliser,
        "linear",
        {"mean": 0.0, "std": 1.0},
        quantities=["mflops", "params"],
        **extra,
    )
    weights = {**table, "scale": model.coef_.astype(np.float64), "offset": np.array([model.intercept_])}
    return LatencyPredictor(desc, weights)


def count_part(part: Part) -> tuple[float, float]:
    """(MFLOPs as multiply-adds of convolutions and window ops, parameters) of one part at batch 1,
    counted on the part built with torch (imported here: the other baselines need none)."""
    import torch

    from lenna.timing.parts import build_part

    module = build_part(part).eval()
    flops = [0.0]

    def hook(mod, inputs, output):
        if isinstance(mod, torch.nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            flops[0] += output.numel() * k
        elif isinstance(mod, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)):
            flops[0] += output.numel() * mod.kernel_size**2
        elif isinstance(mod, (torch.nn.BatchNorm2d, torch.nn.ReLU)):
            flops[0] += output.numel()

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    with torch.no_grad():
        module(torch.zeros(1, part[1], part[3], part[3]))
    for h in handles:
        h.remove()
    return flops[0] / 1e6, float(sum(p.numel() for p in module.parameters()))


def shape_table(
    shapes_with_batch: list[tuple[CellShape, int]],
    op_names,
    steps: int,
    quantities: Callable[[Part, int], list[float]],
) -> dict[str, np.ndarray]:
    """Per shape: its feature prefix, the base quantities (preprocessing) and per-edge, per-op
    quantity coefficients, for a `shape_linear` predictor."""
    n_f = get_space(op_names, steps).n_edges * len(op_names)
    keys, bases, coefs = [], [], []
    for shape, batch in shapes_with_batch:
        pre, edges = cell_parts(shape, op_names, steps)
        # the number of quantities, from any part (the first edge always holds one)
        n_q = len(quantities(next(p for p in edges[0] if p is not None), batch))
        base = np.sum([quantities(p, batch) for p in pre], axis=0) if pre else np.zeros(n_q)
        coef = np.zeros((len(base), n_f))
        for e, row in enumerate(edges):
            for o, part in enumerate(row):
                if part is not None:
                    coef[:, e * len(op_names) + o] = quantities(part, batch)
        keys.append(shape_vector(shape, batch))
        bases.append(base)
        coefs.append(coef)
    table = {"shapes": np.array(keys), "base": np.array(bases), "coef": np.array(coefs)}
    assert table["shapes"].shape[1] == N_SHAPE
    return table
