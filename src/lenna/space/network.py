"""Whole DARTS networks: stem, a stack of cells with two reductions, pooling and a classifier.

`cell_shapes` is the single description of where cells sit in a network; the spec sampler, the
discrete networks and the search supernet all use it, so a latency predictor trained on sampled
specs covers exactly the cells those networks contain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from lenna.space.cell import CellShape


@dataclass(frozen=True)
class Macro:
    """The macro settings of one network: channels of the first cell, cells, input pixels."""

    init_channels: int
    layers: int
    input_size: int
    input_channels: int = 3
    num_classes: int = 10
    stem_multiplier: int = 3


def reduction_layers(layers: int) -> tuple[int, int]:
    """Indices of the two reduction cells (DARTS: layers//3 and 2*layers//3)."""
    return layers // 3, 2 * layers // 3


def cell_shapes(macro: Macro, normal_multiplier: int = 4, reduce_multiplier: int = 4) -> list[CellShape]:
    """The shape of every cell of a network, in order.

    ``*_multiplier`` is the number of nodes a normal / reduction cell concatenates (4 in DARTS).
    """
    c_curr = macro.stem_multiplier * macro.init_channels
    c_prev_prev, c_prev, c_curr = c_curr, c_curr, macro.init_channels
    size = macro.input_size
    reductions = reduction_layers(macro.layers)
    shapes = []
    reduction_prev = False
    for i in range(macro.layers):
        reduction = i in reductions
        if reduction:
            c_curr *= 2
        shapes.append(CellShape(reduction, reduction_prev, c_prev_prev, c_prev, c_curr, size, size))
        multiplier = reduce_multiplier if reduction else normal_multiplier
        c_prev_prev, c_prev = c_prev, multiplier * c_curr
        if reduction:
            size = -(-size // 2)
        reduction_prev = reduction
    return shapes


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


def network_macro(macro: dict, name: str) -> dict:
    """The complete settings of network ``name`` ("search" or "final") of the config's ``macro``
    section, as keyword arguments of `Macro`."""
    common = ("input_channels", "num_classes", "stem_multiplier")
    return {**macro[name], **{k: macro[k] for k in common}}
