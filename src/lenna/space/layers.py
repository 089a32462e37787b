"""The torch modules of the DARTS space and what every gated cell shares: the candidate ops (the
layouts of the DARTS reference implementation, so parameter counts match it exactly), the gated
cell, the DARTS cell and network.

The descriptions they are built from (op names, `CellShape`, `Macro`) live in torch-free modules
(`lenna.space.ops`, `lenna.space.cell`, `lenna.space.network`), so a stage that only reads specs
or tables never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from lenna.space.cell import CellShape, Edge, edge_list, edges_from_probabilities
from lenna.space.network import Macro
from lenna.space.ops import NONE


class ReLUConvBN(nn.Sequential):
    """ReLU, conv k x k, batch norm: the 1x1 preprocessing of a cell's inputs."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise k x k with dilation, pointwise 1x1, batch norm."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class SepConv(nn.Sequential):
    """Two dilation-1 DilConv blocks; only the first one strides."""

    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halves height and width with two strided 1x1 convs on offset inputs, concatenated."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        # The offset branch pads odd sizes so both halves have ceil(H/2) x ceil(W/2) pixels.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, x.shape[3] % 2, 0, x.shape[2] % 2))
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the output shape (used by the search supernet)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


OpFactory = Callable[[int, int, bool], nn.Module]


OPS: dict[str, OpFactory] = {
    NONE: lambda c, stride, affine: Zero(stride),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(
        3, stride=stride, padding=1, count_include_pad=False
    ),
    "skip_connect": lambda c, stride, affine: (
        nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)
    ),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
    # NAS-Bench-201's convolutions: ReLU, conv, batch norm (its pool and skip are the ones above).
    "nor_conv_1x1": lambda c, stride, affine: ReLUConvBN(c, c, 1, stride, 0, affine),
    "nor_conv_3x3": lambda c, stride, affine: ReLUConvBN(c, c, 3, stride, 1, affine),
}


def make_op(name: str, channels: int, stride: int, affine: bool = True) -> nn.Module:
    """Instantiate op ``name`` on ``channels`` channels with the given stride."""
    try:
        factory = OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known: {sorted(OPS)}") from None
    return factory(channels, stride, affine)


def drop_path(x: torch.Tensor, prob: float) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``prob`` and scale the rest by 1 / (1 - prob)."""
    keep = 1.0 - prob
    mask = torch.empty(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class GatedCell(nn.Module):
    """What every searched cell shares: edges holding candidate ops and one gate per edge
    (the index of the op that runs, or ``None``: the edge is ``none`` and costs nothing).
    Subclasses build ``self.edges``, ``self.edge_ops`` and ``self.gates`` and run the nodes."""

    edges: list[Edge]
    gates: list[int | None]
    # DARTS drop-path: in training, each op output other than an identity is zeroed per sample
    # with this probability (and the kept ones scaled up); set by the final training.
    drop_prob: float = 0.0

    def hold_edges(self, shape: CellShape, steps: int, edges: Sequence[Edge], make_op) -> None:
        """Set up a cell with one input (the NAS-Bench-201 cell, the LENNA block): ``edges`` in
        `edge_list` order with ``make_op(edge, op)`` building each candidate; gates at each
        edge's first op."""
        self.shape, self.steps, self.edges = shape, steps, list(edges)
        expected = edge_list(steps, inputs=1)
        if [(e.node, e.input) for e in self.edges] != expected:
            raise ValueError(f"edges {[(e.node, e.input) for e in self.edges]}, expected {expected}")
        self.edge_ops = nn.ModuleList(nn.ModuleList(make_op(e, op) for op in e.ops) for e in self.edges)
        self.node_edges = [[i for i, e in enumerate(self.edges) if e.node == n] for n in range(steps)]
        self.gates = [0 if e.ops else None for e in self.edges]
        self.multiplier = 1

    def set_gates(self, ops: Sequence[str]) -> None:
        """Choose the op that runs on each edge (``"none"`` switches an edge off)."""
        if len(ops) != len(self.edges):
            raise ValueError(f"{len(ops)} gate values for {len(self.edges)} edges")
        gates: list[int | None] = []
        for edge, op in zip(self.edges, ops, strict=True):
            if op == NONE:
                gates.append(None)
            elif op in edge.ops:
                gates.append(edge.ops.index(op))
            else:
                raise ValueError(f"op {op!r} is not a candidate on edge {edge}")
        self.gates = gates

    def active_ops(self) -> list[str]:
        return [NONE if g is None else e.ops[g] for e, g in zip(self.edges, self.gates, strict=True)]

    def node_sum(self, node: int, states: list[torch.Tensor]) -> torch.Tensor | None:
        """The sum of the gated ops on the edges into ``node`` (None when every one is none)."""
        acc = None
        for i in self.node_edges[node]:
            gate = self.gates[i]
            if gate is None:
                continue
            op = self.edge_ops[i][gate]
            out = op(states[self.edges[i].input])
            if self.training and self.drop_prob > 0 and not isinstance(op, nn.Identity):
                out = drop_path(out, self.drop_prob)
            acc = out if acc is None else acc + out
        return acc


class Cell(GatedCell):
    """A DARTS cell whose edges each run at most one of their candidate ops, chosen by a gate."""

    def __init__(
        self,
        shape: CellShape,
        edges: Sequence[Edge],
        steps: int,
        concat: Sequence[int],
        affine: bool = True,
    ):
        super().__init__()
        self.shape = shape
        self.steps = steps
        self.concat = list(concat)
        self.edges = list(edges)
        c = shape.c
        if shape.reduction_prev:
            self.preprocess0 = FactorizedReduce(shape.c_prev_prev, c, affine)
        else:
            self.preprocess0 = ReLUConvBN(shape.c_prev_prev, c, 1, 1, 0, affine)
        self.preprocess1 = ReLUConvBN(shape.c_prev, c, 1, 1, 0, affine)
        self.edge_ops = nn.ModuleList()
        for edge in self.edges:
            if not 0 <= edge.input < edge.node + 2 or not 0 <= edge.node < steps:
                raise ValueError(f"edge {edge} does not fit a cell of {steps} nodes")
            stride = 2 if shape.reduction and edge.input < 2 else 1
            self.edge_ops.append(nn.ModuleList(make_op(op, c, stride, affine) for op in edge.ops))
        self.node_edges = [[i for i, e in enumerate(self.edges) if e.node == n] for n in range(steps)]
        self.gates: list[int | None] = [0 if e.ops else None for e in self.edges]
        self.multiplier = len(self.concat)

    def input_sizes(self) -> tuple[tuple[int, int, int], ...]:
        """(channels, height, width) of each input the cell takes."""
        return self.shape.input_sizes()

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for node in range(self.steps):
            acc = self.node_sum(node, states)
            if acc is None:  # every input edge is none: the node is zero
                _, h, w = self.shape.output_size(1)
                acc = s1.new_zeros(s1.shape[0], self.shape.c, h, w)
            states.append(acc)
        return torch.cat([states[i] for i in self.concat], dim=1)

    @classmethod
    def from_probabilities(
        cls, shape: CellShape, op_names: Sequence[str], probs: np.ndarray, steps: int, affine=True
    ) -> Cell:
        """A gated cell holding every op with non-zero probability on each edge.

        ``probs`` has shape (n_edges, n_ops) over ``op_names`` (edges in `edge_list` order).
        Gates start at the most probable op of each edge.
        """
        edges = edges_from_probabilities(edge_list(steps), op_names, probs)
        cell = cls(shape, edges, steps, concat=range(2, steps + 2), affine=affine)
        cell.op_names = list(op_names)
        cell.set_gates([op_names[int(np.argmax(row))] for row in probs])
        return cell


class Network(nn.Module):
    """Stem (3x3 conv + BN), cells, global average pooling, linear classifier."""

    def __init__(self, macro: Macro, make_cell: Callable[[CellShape], nn.Module], shapes: list[CellShape]):
        super().__init__()
        self.macro = macro
        c_stem = macro.stem_multiplier * macro.init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(macro.input_channels, c_stem, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_stem),
        )
        self.cells = nn.ModuleList(make_cell(shape) for shape in shapes)
        c_out = self.cells[-1].multiplier * shapes[-1].c
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_out, macro.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(self.global_pooling(s1).flatten(1))


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of a module."""
    return sum(p.numel() for p in module.parameters())
