"""The cells of the search spaces as data. The DARTS cell: two inputs, ``steps`` intermediate
nodes, one gated op per edge.

Edge ``(node, input)`` feeds intermediate node ``node`` (0-based) from state ``input``: states 0
and 1 are the preprocessed outputs of the cells k-2 and k-1, state ``2 + n`` is node ``n``. With
4 steps there are 2 + 3 + 4 + 5 = 14 edges, ordered by node, then input (the DARTS order).

A cell (`lenna.space.layers.Cell`) holds, per edge, the ops that may run on it and a *gate*
saying which one runs now (``None``: the edge is ``none`` and costs nothing). Discrete cells have
one op per edge; a cell timed for an expected latency holds every op with non-zero probability
and has its gates re-sampled between timings (LENNA's binary gates), so only one op per edge ever
runs. The torch modules are in `lenna.space.layers`; this module imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lenna.space.ops import NONE


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
