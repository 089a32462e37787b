"""The search supernets and the derivation of a discrete architecture from their alphas.

A supernet mixes every candidate op on every edge with softmax(alpha) weights. DARTS: one alpha
matrix (n_edges, n_ops) shared by all normal cells and one by all reduction cells. NAS-Bench-201
(as the benchmark ran DARTS): one alpha matrix (6, 5) shared by every cell, the reduction blocks
fixed; the benchmark derived the argmax op of every edge, ``none`` included, which under a
latency term can leave no path from input to output (a network that ignores its image), so the
derived cell here is the most probable *connected* one (`Arch.connected_from_probs`), the argmax
cell whenever that is connected, and the history records when it was not (`argmax_disconnected`).
LENNA: one alpha matrix (15, 11) shared by all normal blocks and one by all reduction blocks, the
identity masked out of a reduction block's strided edges, and the derived blocks the argmax op of
every edge (LENNA has no ``none``: its blocks are always connected; nor can a DARTS genotype hold
``none``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from lenna.space import lenna_block, nb201
from lenna.space.build import alpha_probs
from lenna.space.cell import CellShape, edge_list
from lenna.space.genotype import Genotype
from lenna.space.layers import FactorizedReduce, ReLUConvBN, make_op
from lenna.space.lenna_layers import LennaNetwork, make_block_op
from lenna.space.nb201 import Arch
from lenna.space.nb201_layers import NB201Network, ResNetBasicBlock
from lenna.space.network import Macro, cell_shapes
from lenna.space.ops import NONE
from lenna.space.spaces import Space, get_space

SKIP = "skip_connect"


class MixedOp(nn.Module):
    """Every candidate op of an edge, summed with the edge's softmax weights (pools get a BN, as in
    the reference)."""

    def __init__(self, c: int, stride: int, op_names: Sequence[str], pool_bn: bool = True):
        super().__init__()
        self.ops = nn.ModuleList()
        for name in op_names:
            op = make_op(name, c, stride, affine=False)
            if pool_bn and "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            self.ops.append(op)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        return sum(w * op(x) for w, op in zip(weights, self.ops, strict=True))


class SearchCell(nn.Module):
    def __init__(self, shape: CellShape, steps: int, op_names: Sequence[str]):
        super().__init__()
        self.shape, self.steps = shape, steps
        c = shape.c
        if shape.reduction_prev:
            self.preprocess0 = FactorizedReduce(shape.c_prev_prev, c, affine=False)
        else:
            self.preprocess0 = ReLUConvBN(shape.c_prev_prev, c, 1, 1, 0, affine=False)
        self.preprocess1 = ReLUConvBN(shape.c_prev, c, 1, 1, 0, affine=False)
        self.edges = edge_list(steps)
        self.mixed = nn.ModuleList(
            MixedOp(c, 2 if shape.reduction and inp < 2 else 1, op_names) for _, inp in self.edges
        )
        self.multiplier = steps

    def forward(self, s0, s1, weights: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        k = 0
        for node in range(self.steps):
            out = 0
            for inp in range(node + 2):
                out = out + self.mixed[k](states[inp], weights[k])
                k += 1
            states.append(out)
        return torch.cat(states[2:], dim=1)


class SuperNet(nn.Module):
    """The DARTS search network at macro settings ``macro`` with architecture parameters
    ``alpha_normal`` and ``alpha_reduce`` (initialised 1e-3 * randn, as in the reference)."""

    def __init__(self, macro: Macro, op_names: Sequence[str], steps: int, generator: torch.Generator):
        super().__init__()
        self.macro, self.op_names, self.steps = macro, tuple(op_names), steps
        c_stem = macro.stem_multiplier * macro.init_channels
        self.stem = nn.Sequential(
            nn.Conv2d(macro.input_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem)
        )
        shapes = cell_shapes(macro, steps, steps)
        self.cells = nn.ModuleList(SearchCell(s, steps, op_names) for s in shapes)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(steps * shapes[-1].c, macro.num_classes)
        n_edges = len(edge_list(steps))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(n_edges, len(op_names), generator=generator))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(n_edges, len(op_names), generator=generator))

    def alphas(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    def weights(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("alpha_")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal = torch.softmax(self.alpha_normal, dim=-1)
        w_reduce = torch.softmax(self.alpha_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.shape.reduction else w_normal)
        return self.classifier(self.global_pooling(s1).flatten(1))


class NB201SearchCell(nn.Module):
    """A NAS-Bench-201 cell whose 6 edges mix every op (no batch norm after pools, as in the
    benchmark's search cell)."""

    def __init__(self, shape: CellShape, op_names: Sequence[str]):
        super().__init__()
        self.shape = shape
        self.edges = nb201.EDGES
        self.mixed = nn.ModuleList(MixedOp(shape.c, 1, op_names, pool_bn=False) for _ in self.edges)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [x]
        for node in range(nb201.STEPS):
            states.append(
                sum(
                    self.mixed[k](states[inp], weights[k])
                    for k, (n, inp) in enumerate(self.edges)
                    if n == node
                )
            )
        return states[-1]


class NB201SuperNet(nn.Module):
    """The NAS-Bench-201 search network at ``macro`` (the benchmark's network with search cells)
    and its one alpha matrix ``alpha_normal`` (1e-3 * randn)."""

    steps = nb201.STEPS

    def __init__(self, macro: Macro, op_names: Sequence[str], generator: torch.Generator):
        super().__init__()
        self.macro, self.op_names = macro, tuple(op_names)
        self.body = NB201Network(macro, lambda shape: NB201SearchCell(shape, op_names))
        self.alpha_normal = nn.Parameter(
            1e-3 * torch.randn(len(nb201.EDGES), len(op_names), generator=generator)
        )

    def alphas(self) -> list[nn.Parameter]:
        return [self.alpha_normal]

    def weights(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("alpha_")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.alpha_normal, dim=-1)
        body = self.body
        x = body.stem(x)
        for layer in body.layers:
            x = layer(x) if isinstance(layer, ResNetBasicBlock) else layer(x, w)
        return body.classifier(body.global_pooling(body.lastact(x)).flatten(1))


class LennaSearchBlock(nn.Module):
    """A LENNA block whose 15 edges mix every op the edge may hold (no batch norm after the
    stride-1 pools, as in LENNA's supernet)."""

    def __init__(self, shape: CellShape):
        super().__init__()
        self.shape = shape
        mask = lenna_block.op_mask(shape.reduction)
        self.allowed = [np.flatnonzero(row).tolist() for row in mask]
        self.mixed = nn.ModuleList()
        for edge, allowed in zip(lenna_block.EDGES, self.allowed, strict=True):
            c_in, c_out, stride = lenna_block.edge_channels(shape, edge)
            ops = [make_block_op(lenna_block.OPS[j], c_in, c_out, stride, affine=False) for j in allowed]
            self.mixed.append(nn.ModuleList(ops))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        states = [x]
        for layer in range(lenna_block.LAYERS):
            out = 0
            for k, (n, inp) in enumerate(lenna_block.EDGES):
                if n == layer:
                    w = weights[k]
                    out = out + sum(
                        w[j] * op(states[inp]) for j, op in zip(self.allowed[k], self.mixed[k], strict=True)
                    )
            states.append(out)
        return states[-1]


class LennaSuperNet(nn.Module):
    """LENNA's search network at ``macro`` with ``alpha_normal`` and ``alpha_reduce`` (15, 11)
    each (1e-3 * randn); a reduction block's weights are masked by `Space.probs`."""

    steps = lenna_block.LAYERS

    def __init__(self, macro: Macro, op_names: Sequence[str], generator: torch.Generator):
        super().__init__()
        self.macro, self.op_names = macro, tuple(op_names)
        self.body = LennaNetwork(macro, LennaSearchBlock)
        shape = (len(lenna_block.EDGES), len(op_names))
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(*shape, generator=generator))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(*shape, generator=generator))

    def alphas(self) -> list[nn.Parameter]:
        return [self.alpha_normal, self.alpha_reduce]

    def weights(self) -> list[tuple[str, nn.Parameter]]:
        return [(n, p) for n, p in self.named_parameters() if not n.startswith("alpha_")]

    def probs(self) -> tuple[torch.Tensor, torch.Tensor]:
        space = get_space(self.op_names, self.steps)
        return alpha_probs(space, self.alpha_normal, False), alpha_probs(space, self.alpha_reduce, True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w_normal, w_reduce = self.probs()
        body = self.body
        x = body.stem(x)
        for block in body.cells:
            x = block(x, w_reduce if block.shape.reduction else w_normal)
        return body.classifier(body.global_pooling(x).flatten(1))


def make_supernet(space: Space, macro: Macro, generator: torch.Generator) -> nn.Module:
    """The search network of the space."""
    if space.name == "nb201":
        return NB201SuperNet(macro, space.ops, generator)
    if space.name == "lenna":
        return LennaSuperNet(macro, space.ops, generator)
    return SuperNet(macro, space.ops, space.steps, generator)


def _on_host(values: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Alphas (or their probabilities) as a CPU tensor outside autograd, wherever the supernet
    runs: numpy cannot read a GPU tensor."""
    return values.detach().cpu() if torch.is_tensor(values) else torch.as_tensor(values)


def derive_cell(alpha: torch.Tensor | np.ndarray, op_names: Sequence[str], steps: int, max_skip=None):
    """The DARTS derivation: per node the 2 input edges with the largest non-none weight, on each
    the argmax op other than none. With ``max_skip``, while the cell has more skip connections than
    that, the skip with the smallest weight is forbidden and the cell derived again (the skip cap
    remedy against skip-connect collapse). Returns the (op, input) pairs."""
    weights = torch.softmax(_on_host(alpha).to(torch.float64), dim=-1).numpy().copy()
    edges = edge_list(steps)
    banned = np.zeros_like(weights, dtype=bool)
    banned[:, list(op_names).index(NONE)] = True
    while True:
        masked = np.where(banned, -np.inf, weights)
        pairs, chosen = [], []
        for node in range(steps):
            ks = [k for k, (n, _) in enumerate(edges) if n == node]
            best = sorted(ks, key=lambda k: -masked[k].max())[:2]
            for k in sorted(best, key=lambda k: edges[k][1]):
                j = int(masked[k].argmax())
                pairs.append((op_names[j], edges[k][1]))
                chosen.append((k, j))
        skips = [(weights[k, j], k, j) for k, j in chosen if op_names[j] == SKIP]
        if max_skip is None or len(skips) <= max_skip:
            return tuple(pairs)
        _, k, j = min(skips)
        banned[k, j] = True


def derive_genotype(
    net: SuperNet | NB201SuperNet | LennaSuperNet, max_skip_normal: int | None = None
) -> Genotype | Arch | lenna_block.Arch:
    """The discrete architecture of the alphas: a DARTS genotype (with the skip cap), the most
    probable connected NAS-Bench-201 cell, or the LENNA blocks of the most probable op on every
    edge (neither of the last two has a cap)."""
    if isinstance(net, NB201SuperNet):
        return Arch.connected_from_probs(_nb201_probs(net))
    if isinstance(net, LennaSuperNet):
        with torch.no_grad():
            return lenna_block.Arch.from_probs(*(_on_host(p).numpy() for p in net.probs()))
    concat = tuple(range(2, net.steps + 2))
    with torch.no_grad():
        normal = derive_cell(net.alpha_normal, net.op_names, net.steps, max_skip_normal)
        reduce = derive_cell(net.alpha_reduce, net.op_names, net.steps)
    return Genotype(normal=normal, normal_concat=concat, reduce=reduce, reduce_concat=concat)


def _nb201_probs(net: NB201SuperNet) -> np.ndarray:
    with torch.no_grad():
        return torch.softmax(_on_host(net.alpha_normal), dim=-1).numpy()


def argmax_disconnected(net: SuperNet | NB201SuperNet | LennaSuperNet) -> bool:
    """Whether the argmax op of every edge (the benchmark's rule) would give a NAS-Bench-201 cell
    with no path of non-``none`` ops from input to output: the collapse that the connected
    derivation hides. Never in the other spaces, whose derivations never pick ``none``."""
    return isinstance(net, NB201SuperNet) and not Arch.from_probs(_nb201_probs(net)).connected


def alpha_table(net: SuperNet | NB201SuperNet) -> dict:
    """softmax(alpha) of every cell type as flat columns ``{normal,reduce}_e{k:02d}_{op}``
    (NAS-Bench-201: its one cell type, ``normal``)."""
    row = {}
    cells = [("normal", net.alpha_normal)]
    if not isinstance(net, NB201SuperNet):
        cells.append(("reduce", net.alpha_reduce))
    space = get_space(net.op_names, net.steps)
    with torch.no_grad():
        for cell, alpha in cells:
            probs = alpha_probs(space, _on_host(alpha), cell == "reduce")
            for k in range(probs.shape[0]):
                for j, op in enumerate(net.op_names):
                    row[f"{cell}_e{k:02d}_{op}"] = float(probs[k, j])
    return row
