"""The parts of a cell: what the lookup-table and FLOPs baselines see a cell as (ProxylessNAS).

A cell is seen as independent parts: the two preprocessing ops plus, on every edge, one op at
that edge's channels, pixels and stride. `all_parts` lists the distinct parts of the cell shapes
of a macro range; `lenna.timing.parts` builds and times each alone on the target's device.
"""

from __future__ import annotations

from collections.abc import Iterable

from lenna.space import lenna_block
from lenna.space.cell import CellShape, edge_list
from lenna.space.ops import NONE
from lenna.space.spaces import get_space

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


def all_parts(shapes: Iterable[CellShape], op_names, steps: int) -> list[Part]:
    parts = set()
    for shape in shapes:
        pre, edges = cell_parts(shape, op_names, steps)
        parts.update(pre)
        parts.update(p for row in edges for p in row if p is not None)
    return sorted(parts)
