"""The torch modules of NAS-Bench-201 (`lenna.space.nb201` describes the space): the gated cell,
the residual reduction block between stages and the benchmark's network (``TinyNetwork``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from lenna.space.cell import CellShape, Edge, edges_from_probabilities
from lenna.space.layers import GatedCell, ReLUConvBN, make_op
from lenna.space.nb201 import EDGES, STEPS, cell_shapes
from lenna.space.network import Macro


class NB201Cell(GatedCell):
    """A NAS-Bench-201 cell whose edges each run at most one of their candidate ops."""

    def __init__(self, shape: CellShape, edges: Sequence[Edge], affine: bool = True):
        super().__init__()
        if shape.reduction or shape.c_prev != shape.c:
            raise ValueError(f"a NAS-Bench-201 cell keeps its input's size and channels, not {shape}")
        self.hold_edges(shape, STEPS, edges, lambda edge, op: make_op(op, shape.c, 1, affine))

    def input_sizes(self) -> tuple[tuple[int, int, int], ...]:
        return ((self.shape.c, self.shape.height, self.shape.width),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for node in range(STEPS):
            acc = self.node_sum(node, states)
            states.append(x.mul(0.0) if acc is None else acc)  # every input edge none: zero
        return states[-1]

    @classmethod
    def from_probabilities(cls, shape: CellShape, op_names, probs: np.ndarray, affine=True) -> NB201Cell:
        """A gated cell holding every op with non-zero probability on each edge; gates start at
        the most probable op of each edge."""
        cell = cls(shape, edges_from_probabilities(EDGES, op_names, probs), affine=affine)
        cell.op_names = list(op_names)
        cell.set_gates([op_names[int(np.argmax(row))] for row in probs])
        return cell


class ResNetBasicBlock(nn.Module):
    """The reduction block between stages: two 3x3 ReLU-conv-BN (the first strides 2) plus a
    shortcut of 2x2 average pooling and a 1x1 conv."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The benchmark's network; ``make_cell(shape)`` builds each cell (`cell_shapes` order).
    ``layers`` holds the cells and the two reduction blocks in network order."""

    def __init__(self, macro: Macro, make_cell: Callable[[CellShape], nn.Module]):
        super().__init__()
        self.macro = macro
        c = macro.init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(macro.input_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        )
        shapes = cell_shapes(macro)
        layers = []
        for k, shape in enumerate(shapes):
            if k and k % macro.layers == 0:
                layers.append(ResNetBasicBlock(shapes[k - 1].c, shape.c))
            layers.append(make_cell(shape))
        self.layers = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(shapes[-1].c), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(shapes[-1].c, macro.num_classes)

    @property
    def cells(self) -> list[nn.Module]:
        return [m for m in self.layers if not isinstance(m, ResNetBasicBlock)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))
