"""The torch modules of an architecture or a space: one entry point for every search space.

`build_network` and `build_cell` turn an architecture (a DARTS `Genotype`, a NAS-Bench-201 `Arch`,
a LENNA block pair) into its network or its discrete cell at a shape; `gated_cell` builds the cell
of a space that holds every op of non-zero probability (what a timing job times); `alpha_probs`
is the search's softmax over the ops each edge may hold; `network_parts` the modules of a network
outside its searched cells.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from lenna.space import lenna_block, nb201
from lenna.space.cell import CellShape, Edge
from lenna.space.genotype import Genotype
from lenna.space.layers import Cell, GatedCell, Network
from lenna.space.lenna_layers import Block, LennaNetwork, masked_softmax
from lenna.space.nb201_layers import NB201Cell, NB201Network, ResNetBasicBlock
from lenna.space.network import Macro
from lenna.space.spaces import Space

Architecture = Genotype | nb201.Arch | lenna_block.Arch


def build_cell(arch: Architecture, shape: CellShape, affine: bool = True) -> GatedCell:
    """The discrete cell of ``arch`` at ``shape`` (a DARTS genotype's reduce cell, or LENNA's
    reduction block, where the shape reduces)."""
    if isinstance(arch, nb201.Arch):
        return NB201Cell.from_probabilities(shape, nb201.OPS, arch.probs(), affine=affine)
    if isinstance(arch, lenna_block.Arch):
        return Block.from_probabilities(shape, lenna_block.OPS, arch.probs(shape.reduction), affine=affine)
    pairs = arch.reduce if shape.reduction else arch.normal
    concat = arch.reduce_concat if shape.reduction else arch.normal_concat
    edges = [Edge(k // 2, inp, (op,)) for k, (op, inp) in enumerate(pairs)]
    return Cell(shape, edges, steps=len(pairs) // 2, concat=concat, affine=affine)


def build_network(arch: Architecture, macro: Macro) -> nn.Module:
    """The discrete network of ``arch`` at the given macro settings."""
    make_cell = functools.partial(build_cell, arch)
    if isinstance(arch, nb201.Arch):
        return NB201Network(macro, make_cell)
    if isinstance(arch, lenna_block.Arch):
        return LennaNetwork(macro, make_cell)
    return Network(macro, make_cell, arch.cell_shapes(macro))


def gated_cell(space: Space, shape: CellShape, probs: np.ndarray, affine: bool = True) -> GatedCell:
    """The gated cell of ``space`` at ``shape`` holding every op of non-zero probability on each
    edge (``probs``: n_edges x n_ops), its gates at each edge's most probable op."""
    if space.name == "nb201":
        return NB201Cell.from_probabilities(shape, space.ops, probs, affine=affine)
    if space.name == "lenna":
        return Block.from_probabilities(shape, space.ops, probs, affine=affine)
    return Cell.from_probabilities(shape, space.ops, probs, space.steps, affine=affine)


def alpha_probs(space: Space, alpha: torch.Tensor, reduction: bool = False) -> torch.Tensor:
    """softmax(alpha) per edge over the ops the edge of a normal / reduction cell of ``space`` may
    hold (`Space.op_mask`; the others get probability 0), differentiable in ``alpha``."""
    if space.name == "lenna":
        return masked_softmax(alpha, reduction)
    return torch.softmax(alpha, dim=-1)


class _Head(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.pool, self.classifier = net.global_pooling, net.classifier
        self.lastact = getattr(net, "lastact", nn.Identity())

    def forward(self, x):
        return self.classifier(self.pool(self.lastact(x)).flatten(1))


def network_parts(net, x: torch.Tensor) -> dict[str, list[tuple[nn.Module, torch.Tensor]]]:
    """The modules of a network that are not searched cells, each with the input it gets inside
    the network: the stem, the head (last activation, pooling, classifier) and NAS-Bench-201's
    residual reduction blocks (empty elsewhere)."""
    with torch.inference_mode():
        h = stem_out = net.stem(x)
        blocks = []
        if isinstance(net, NB201Network):
            for layer in net.layers:
                if isinstance(layer, ResNetBasicBlock):
                    blocks.append((layer, h))
                h = layer(h)
        elif isinstance(net, LennaNetwork):
            for cell in net.cells:
                h = cell(h)
        else:
            s0 = stem_out
            for cell in net.cells:
                s0, h = h, cell(s0, h)
    return {"stem": [(net.stem, x)], "head": [(_Head(net), h)], "blocks": blocks}
