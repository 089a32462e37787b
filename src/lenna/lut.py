"""Per-op baselines: the ProxylessNAS lookup table and a FLOPs / parameter-count model.

Both see a cell as independent parts: the two preprocessing ops plus, on every edge, the
expected cost sum_op p(op) * cost(op at that edge's channels, pixels and stride). They are
therefore linear in the probabilities for a fixed shape, and are stored as `shape_linear`
predictors: per shape a base cost and one coefficient per edge and op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from lenna.cell import CellShape, edge_list
from lenna.measure import Target, TimingProtocol, median_ms
from lenna.ops import NONE, FactorizedReduce, ReLUConvBN, make_op
from lenna.predictor import N_SHAPE, shape_vector

# A part of a cell, timed or counted alone: (op, c_in, c_out, height, stride). Preprocessing
# parts are named "preprocess" (1x1 ReLU-conv-BN) and "factorized_reduce".
Part = tuple[str, int, int, int, int]
LUT_COLUMNS = ["op", "c_in", "c_out", "height", "stride", "batch_size", "latency_ms"]


def cell_parts(shape: CellShape, op_names, steps: int) -> tuple[list[Part], list[list[Part | None]]]:
    """The preprocessing parts of a cell and, per edge, the part of each op (None for none)."""
    c, h = shape.c, shape.height
    if shape.reduction_prev:
        pre0 = ("factorized_reduce", shape.c_prev_prev, c, 2 * h, 2)
    else:
        pre0 = ("preprocess", shape.c_prev_prev, c, h, 1)
    pre = [pre0, ("preprocess", shape.c_prev, c, h, 1)]
    inner = -(-h // 2) if shape.reduction else h
    edges = []
    for _, inp in edge_list(steps):
        stride = 2 if shape.reduction and inp < 2 else 1
        height = h if inp < 2 else inner
        edges.append([None if op == NONE else (op, c, c, height, stride) for op in op_names])
    return pre, edges


def build_part(part: Part) -> torch.nn.Module:
    op, c_in, c_out, _, stride = part
    if op == "preprocess":
        return ReLUConvBN(c_in, c_out, 1, 1, 0)
    if op == "factorized_reduce":
        return FactorizedReduce(c_in, c_out)
    return make_op(op, c_in, stride)


def all_parts(shapes: Iterable[CellShape], op_names, steps: int) -> list[Part]:
    parts = set()
    for shape in shapes:
        pre, edges = cell_parts(shape, op_names, steps)
        parts.update(pre)
        parts.update(p for row in edges for p in row if p is not None)
    return sorted(parts)


def measure_lut(
    parts: list[Part], target: Target, device: torch.device, protocol: TimingProtocol
) -> pd.DataFrame:
    """Each part timed alone (median of rounds x repeats passes) at the target's batch size."""
    rows = []
    dtype = getattr(torch, target.dtype)
    for part in parts:
        module = build_part(part).to(device=device, dtype=dtype).eval()
        x = torch.randn(target.batch_size, part[1], part[3], part[3], dtype=dtype).to(device)
        rows.append([*part, target.batch_size, median_ms(module, (x,), protocol)])
    return pd.DataFrame(rows, columns=LUT_COLUMNS)


def count_part(part: Part) -> tuple[float, float]:
    """(MFLOPs as multiply-adds of convolutions and window ops, parameters) of one part at batch 1."""
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
    n_f = len(edge_list(steps)) * len(op_names)
    keys, bases, coefs = [], [], []
    for shape, batch in shapes_with_batch:
        pre, edges = cell_parts(shape, op_names, steps)
        base = np.sum([quantities(p, batch) for p in pre], axis=0)
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
