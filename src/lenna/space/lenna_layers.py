"""The torch modules of LENNA's space (`lenna.space.lenna_block` describes it): the candidate ops
of a block's edges, the gated block, LENNA's network and the masked softmax of its search."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from lenna.space.cell import CellShape, Edge, edges_from_probabilities
from lenna.space.layers import GatedCell
from lenna.space.lenna_block import EDGES, IDENTITY, LAYERS, OPS, cell_shapes, edge_channels, op_mask
from lenna.space.network import Macro


def masked_softmax(alpha: torch.Tensor, reduction: bool) -> torch.Tensor:
    """softmax(alpha) per edge over the ops the edge may hold (the others get probability 0)."""
    mask = torch.as_tensor(op_mask(reduction), device=alpha.device)
    return torch.softmax(alpha.masked_fill(~mask, float("-inf")), dim=-1)


class ConvLayer(nn.Sequential):
    """k x k conv (same padding, optional dilation), batch norm, ReLU."""

    def __init__(self, c_in, c_out, kernel, stride, dilation, affine=True):
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel // 2) * dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
            nn.ReLU(inplace=False),
        )


class DepthConvLayer(nn.Sequential):
    """Depthwise k x k conv (same padding, optional dilation), 1x1 conv, batch norm, ReLU."""

    def __init__(self, c_in, c_out, kernel, stride, dilation, affine=True):
        super().__init__(
            nn.Conv2d(
                c_in,
                c_in,
                kernel,
                stride,
                (kernel // 2) * dilation,
                dilation=dilation,
                groups=c_in,
                bias=False,
            ),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
            nn.ReLU(inplace=False),
        )


class PoolingExpandLayer(nn.Sequential):
    """2x2 pooling of stride 2, 1x1 conv to the output channels, batch norm, ReLU."""

    def __init__(self, c_in, c_out, kind, affine=True):
        pool = nn.MaxPool2d(2, 2) if kind == "max" else nn.AvgPool2d(2, 2, count_include_pad=False)
        super().__init__(
            pool,
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
            nn.ReLU(inplace=False),
        )


# The convolutions: (layer, kernel, dilation); and the pooling kind of the two pooling slots.
CONVS = {
    "3x3_Conv": (ConvLayer, 3, 1),
    "5x5_Conv": (ConvLayer, 5, 1),
    "3x3_ConvDW": (DepthConvLayer, 3, 1),
    "5x5_ConvDW": (DepthConvLayer, 5, 1),
    "3x3_dConv": (ConvLayer, 3, 2),
    "5x5_dConv": (ConvLayer, 5, 2),
    "3x3_dConvDW": (DepthConvLayer, 3, 2),
    "5x5_dConvDW": (DepthConvLayer, 5, 2),
}
POOLS = {"3x3_maxpool": "max", "3x3_avgpool": "avg"}


def make_block_op(name: str, c_in: int, c_out: int, stride: int, affine: bool = True) -> nn.Module:
    """Op ``name`` of an edge from ``c_in`` to ``c_out`` channels with ``stride`` (1, or 2 on the
    input edges of a reduction block, where the pooling slots are LENNA's 2x2 pooling + 1x1)."""
    if name not in OPS:
        raise KeyError(f"unknown LENNA op {name!r}; known: {list(OPS)}")
    if stride not in (1, 2) or (stride == 1 and c_in != c_out):
        raise ValueError(f"a LENNA edge keeps its channels or strides 2, not {c_in}->{c_out} stride {stride}")
    if name == IDENTITY:
        if stride != 1:
            raise ValueError("the identity cannot stride: it is not a candidate on a reduction edge")
        return nn.Identity()
    if name in POOLS:
        if stride == 2:
            return PoolingExpandLayer(c_in, c_out, POOLS[name], affine)
        if POOLS[name] == "max":
            return nn.MaxPool2d(3, 1, 1)
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    layer, kernel, dilation = CONVS[name]
    return layer(c_in, c_out, kernel, stride, dilation, affine)


class Block(GatedCell):
    """A LENNA block whose edges each run one of their candidate ops, chosen by a gate."""

    def __init__(self, shape: CellShape, edges: Sequence[Edge], affine: bool = True):
        super().__init__()
        if shape.c != (2 * shape.c_prev if shape.reduction else shape.c_prev):
            raise ValueError(f"a LENNA block keeps its channels, or doubles them if it reduces, not {shape}")

        def make_op(edge: Edge, op: str) -> nn.Module:
            return make_block_op(op, *edge_channels(shape, (edge.node, edge.input)), affine)

        self.hold_edges(shape, LAYERS, edges, make_op)

    def input_sizes(self) -> tuple[tuple[int, int, int], ...]:
        return ((self.shape.c_prev, self.shape.height, self.shape.width),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for layer in range(LAYERS):
            states.append(self.node_sum(layer, states))
        return states[-1]

    @classmethod
    def from_probabilities(cls, shape: CellShape, op_names, probs: np.ndarray, affine=True) -> Block:
        """A gated block holding every op with non-zero probability on each edge (an op the edge
        cannot hold must have probability 0); gates start at the most probable op of each edge."""
        probs = np.asarray(probs, dtype=np.float64)
        if tuple(op_names) != OPS:
            raise ValueError(f"a LENNA block's ops are {list(OPS)}, not {list(op_names)}")
        bad = (probs > 0) & ~op_mask(shape.reduction)
        if bad.any():
            k, j = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(
                f"edge {EDGES[k]} of a reduction block cannot hold {OPS[j]!r} (probability {probs[k, j]})"
            )
        block = cls(shape, edges_from_probabilities(EDGES, OPS, probs), affine=affine)
        block.op_names = list(OPS)
        block.set_gates([OPS[int(np.argmax(row))] for row in probs])
        return block


class LennaNetwork(nn.Module):
    """LENNA's network; ``make_block(shape)`` builds each block (`cell_shapes` order)."""

    def __init__(self, macro: Macro, make_block: Callable[[CellShape], nn.Module]):
        super().__init__()
        self.macro = macro
        c = macro.init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(macro.input_channels, c, 3, padding=1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=False),
        )
        shapes = cell_shapes(macro)
        self.cells = nn.ModuleList(make_block(shape) for shape in shapes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(shapes[-1].c, macro.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.classifier(self.global_pooling(x).flatten(1))
