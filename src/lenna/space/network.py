"""Whole DARTS networks: stem, a stack of cells with two reductions, pooling and a classifier.

`cell_shapes` is the single description of where cells sit in a network; the spec sampler, the
discrete networks and the search supernet all use it, so a latency predictor trained on sampled
specs covers exactly the cells those networks contain. The torch module of a network is
`lenna.space.layers.Network`; this module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def network_macro(macro: dict, name: str) -> dict:
    """The complete settings of network ``name`` ("search" or "final") of the config's ``macro``
    section, as keyword arguments of `Macro`."""
    common = ("input_channels", "num_classes", "stem_multiplier")
    return {**macro[name], **{k: macro[k] for k in common}}
