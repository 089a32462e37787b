"""The DARTS cell: two inputs, ``steps`` intermediate nodes, one gated op per edge.

Edge ``(node, input)`` feeds intermediate node ``node`` (0-based) from state ``input``: states 0
and 1 are the preprocessed outputs of the cells k-2 and k-1, state ``2 + n`` is node ``n``. With
4 steps there are 2 + 3 + 4 + 5 = 14 edges, ordered by node, then input (the DARTS order).

A `Cell` holds, per edge, the ops that may run on it and a *gate* saying which one runs now
(``None``: the edge is ``none`` and costs nothing). Discrete cells have one op per edge; a cell
timed for an expected latency holds every op with non-zero probability and has its gates
re-sampled between timings (LENNA's binary gates), so only one op per edge ever runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from lenna.space.ops import NONE, FactorizedReduce, ReLUConvBN, make_op


@dataclass(frozen=True)
class CellShape:
    """Everything about a cell's place in a network that changes its latency.

    ``height`` x ``width`` (pixels) is the size of input s1 (the previous cell's output);
    input s0 is twice as large when the previous cell reduced. Channels are per input.
    """

    reduction: bool
    reduction_prev: bool
    c_prev_prev: int
    c_prev: int
    c: int
    height: int
    width: int

    def as_dict(self) -> dict:
        return asdict(self)

    def input_sizes(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """(channels, height, width) of s0 and s1."""
        scale = 2 if self.reduction_prev else 1
        return (
            (self.c_prev_prev, self.height * scale, self.width * scale),
            (self.c_prev, self.height, self.width),
        )

    def output_size(self, multiplier: int) -> tuple[int, int, int]:
        """(channels, height, width) of the cell output with ``multiplier`` concatenated nodes."""
        if self.reduction:
            return multiplier * self.c, -(-self.height // 2), -(-self.width // 2)
        return multiplier * self.c, self.height, self.width


def edge_list(steps: int, inputs: int = 2) -> list[tuple[int, int]]:
    """All ``(node, input)`` edges of a cell with ``inputs`` inputs and ``steps`` intermediate
    nodes, node by node, then input (the DARTS order; NAS-Bench-201's string order for 1 input)."""
    return [(node, inp) for node in range(steps) for inp in range(node + inputs)]


@dataclass(frozen=True)
class Edge:
    """One edge of a cell and the ops that may run on it (never ``none``)."""

    node: int
    input: int
    ops: tuple[str, ...]


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


def edges_from_probabilities(pairs, op_names: Sequence[str], probs) -> list[Edge]:
    """The gated edges of ``pairs`` ((node, input) each), each holding the ops of non-zero
    probability in its row of ``probs`` (n_edges, n_ops over ``op_names``; ``none`` never held)."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(pairs), len(op_names)):
        raise ValueError(f"probabilities of shape {probs.shape}, expected {(len(pairs), len(op_names))}")
    return [
        Edge(node, inp, tuple(op for op, p in zip(op_names, row, strict=True) if p > 0 and op != NONE))
        for (node, inp), row in zip(pairs, probs, strict=True)
    ]


def sample_gates(probs: np.ndarray, op_names: Sequence[str], rng: np.random.Generator) -> list[str]:
    """Draw one op per edge from the edge's probability row (a LENNA binary-gate reset)."""
    probs = np.asarray(probs, dtype=np.float64)
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cum[:, -1]
    idx = (u[:, None] < cum).argmax(axis=1)
    return [op_names[i] for i in idx]
