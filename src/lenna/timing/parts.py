"""The parts of a cell, timed alone for the lookup-table baseline (ProxylessNAS).

A cell is seen as independent parts: the two preprocessing ops plus, on every edge, one op at
that edge's channels, pixels and stride. `all_parts` lists the distinct parts of the cell shapes
of a macro range, and `measure_lut` times each alone on the target's device.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import torch

from lenna.space import lenna_block
from lenna.space.cell import CellShape, edge_list
from lenna.space.layers import FactorizedReduce, ReLUConvBN, make_op
from lenna.space.lenna_layers import make_block_op
from lenna.space.ops import NONE
from lenna.space.spaces import get_space
from lenna.timing.clock import timed_ms
from lenna.timing.devices import as_input, place
from lenna.timing.protocol import Target, TimingProtocol

# A part of a cell, timed or counted alone: (op, c_in, c_out, height, stride). Preprocessing
# parts are named "preprocess" (1x1 ReLU-conv-BN) and "factorized_reduce".
Part = tuple[str, int, int, int, int]


LUT_COLUMNS = ["op", "c_in", "c_out", "height", "stride", "batch_size", "latency_ms"]


def cell_parts(shape: CellShape, op_names, steps: int) -> tuple[list[Part], list[list[Part | None]]]:
    """The preprocessing parts of a cell and, per edge, the part of each op (None for none, and
    for an op the edge cannot hold). NAS-Bench-201 cells and LENNA blocks have no preprocessing;
    a LENNA reduction block's edges from its input stride and double the channels."""
    c, h = shape.c, shape.height
    space = get_space(op_names, steps)
    if space.name == "lenna":  # c_in -> c_out per edge; the identity is no candidate on a strided edge
        mask = space.op_mask(shape)
        edges = []
        for k, edge in enumerate(space.edges()):
            c_in, c_out, stride = lenna_block.edge_channels(shape, edge)
            height = h if stride == 2 or not shape.reduction else h // 2
            edges.append(
                [(op, c_in, c_out, height, stride) if mask[k, j] else None for j, op in enumerate(op_names)]
            )
        return [], edges
    if space.inputs == 1:
        return [], [[None if op == NONE else (op, c, c, h, 1) for op in op_names] for _ in space.edges()]
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
    if op in lenna_block.OPS:
        return make_block_op(op, c_in, c_out, stride)
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
    """Each part timed alone (`label_of` its rounds x repeats passes) at the target's batch size."""
    rows = []
    for part in parts:
        module = place(target, build_part(part), device)
        x = as_input(target, torch.randn(target.batch_size, part[1], part[3], part[3]), device)
        rows.append([*part, target.batch_size, timed_ms(module, (x,), protocol)])
    return pd.DataFrame(rows, columns=LUT_COLUMNS)
