"""The NAS-Bench-201 search space (Dong & Yang, ICLR 2020): its cell, network and string.

A cell has one input (node 0) and three more nodes; node j sums one op applied to every earlier
node i < j, so there are 1 + 2 + 3 = 6 edges, and the cell's output is node 3. Edges are ordered
node by node, then input, which is the order of the architecture string::

    |nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|

In the gated cells of this package, edge ``(node, input)`` of `edge_list(3, inputs=1)` feeds
node ``node + 1`` from node ``input``.

The network (``TinyNetwork`` of the benchmark): a 3x3 conv stem with ``C`` channels and batch
norm, three stages of ``N`` cells at C / 2C / 4C channels with a residual reduction block between
stages, batch norm and ReLU, global pooling and a linear classifier. In a `Macro`,
``init_channels`` is C and ``layers`` is N, the cells *per stage* (the benchmark: C=16, N=5 on
32x32 RGB images).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lenna.space.cell import CellShape, edge_list
from lenna.space.network import Macro
from lenna.space.ops import NONE, OP_SETS

OPS = OP_SETS["nb201"]
STEPS = 3  # nodes after the input node
EDGES = edge_list(STEPS, inputs=1)

# The public latency table of every architecture on 21 devices (MIT licence, see its README);
# it also gives each architecture's official benchmark index.
# The cell NAS-Bench-201's authors report as the best on CIFAR-10 (94.37% test accuracy).
BEST_CIFAR10 = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
PUBLIC_TABLE = Path(__file__).resolve().parents[3] / "resources" / "nb201-latency" / "latency.parquet"


class ArchError(ValueError):
    """A NAS-Bench-201 architecture string that does not describe a cell; says what is wrong."""


def parse_nodes(text: str, steps: int, ops: Sequence[str], what: str, error=ArchError) -> tuple[str, ...]:
    """The ops of a one-input cell written in the benchmark's notation: ``steps`` nodes joined by
    ``+``, node j listing ``op~i`` for every earlier node i (0 is the input). Returns one op per
    edge in `edge_list` order; a problem is ``error`` naming ``what`` and the node."""
    nodes = text.split("+")
    if len(nodes) != steps:
        raise error(f"{what}: {len(nodes)} node(s), a cell has {steps} after its input")
    found = []
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|") and len(node) > 1):
            raise error(f"{what}: node {j} is {node!r}, not of the form |op~i|...|")
        edges = {}
        for token in node[1:-1].split("|"):
            op, sep, inp = token.partition("~")
            if not sep or not inp.isdigit():
                raise error(f"{what}: node {j}: {token!r} is not of the form op~i")
            i = int(inp)
            if i >= j:
                raise error(f"{what}: node {j}: edge from node {i}, which is not an earlier node")
            if i in edges:
                raise error(f"{what}: node {j}: two edges from node {i}")
            if op not in ops:
                raise error(f"{what}: node {j} <- {i}: unknown op {op!r}; known: {list(ops)}")
            edges[i] = op
        if sorted(edges) != list(range(j)):
            missing = sorted(set(range(j)) - set(edges))
            raise error(f"{what}: node {j} lacks the edge(s) from node(s) {missing}")
        found.extend(edges[i] for i in range(j))
    return tuple(found)


def format_nodes(ops: Sequence[str], steps: int) -> str:
    """A one-input cell's ops (`edge_list` order) in the benchmark's notation."""
    parts, k = [], 0
    for j in range(1, steps + 1):
        parts.append("|" + "|".join(f"{ops[k + i]}~{i}" for i in range(j)) + "|")
        k += j
    return "+".join(parts)


@dataclass(frozen=True)
class Arch:
    """A discrete NAS-Bench-201 cell: one op per edge, in `EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self):
        if len(self.ops) != len(EDGES):
            raise ArchError(f"{len(self.ops)} ops for the {len(EDGES)} edges of a cell")
        for op, (node, inp) in zip(self.ops, EDGES, strict=True):
            if op not in OPS:
                raise ArchError(f"node {node + 1} <- {inp}: unknown op {op!r}; known: {list(OPS)}")

    @classmethod
    def parse(cls, text: str) -> Arch:
        """Parse the benchmark's string; each node lists ``op~i`` for every earlier node i."""
        text = text.strip()
        return cls(parse_nodes(text, STEPS, OPS, repr(text), ArchError))

    def __str__(self) -> str:
        return format_nodes(self.ops, STEPS)

    def to_dict(self) -> dict:
        """The JSON form of a derived architecture: its string and official index."""
        return {"nb201": str(self), "index": self.index}

    @property
    def index(self) -> int | None:
        """The official benchmark index, from the public table (None if it is not there)."""
        return official_indices().get(str(self))

    def probs(self) -> np.ndarray:
        """The one-hot (edges, ops) probability matrix of a spec of this cell."""
        probs = np.zeros((len(EDGES), len(OPS)))
        probs[np.arange(len(EDGES)), [OPS.index(op) for op in self.ops]] = 1.0
        return probs

    @property
    def connected(self) -> bool:
        """Whether some path of non-``none`` ops leads from the input to the output (node 3).
        If none does, the cell outputs zeros whatever its input, and so its network ignores the
        image: a classifier of constant output, at chance accuracy."""
        reached = {0}  # edges come node by node, so every input of a node is settled first
        for (node, inp), op in zip(EDGES, self.ops, strict=True):
            if op != NONE and inp in reached:
                reached.add(node + 1)
        return STEPS in reached

    @classmethod
    def from_probs(cls, probs) -> Arch:
        """The most probable op on every edge, ``none`` included: the benchmark's reference rule
        (its DARTS runs), which a latency term can drive to a disconnected cell."""
        probs = _check_probs(probs)
        return cls(tuple(OPS[int(k)] for k in probs.argmax(axis=1)))

    @classmethod
    def connected_from_probs(cls, probs) -> Arch:
        """The derivation of a search: the most probable cell by the (edges, ops) probabilities
        (the largest product over edges of the chosen op's probability) among the `connected`
        ones. That is `from_probs` whenever the argmax cell is connected; otherwise an exact
        search over which edges hold ``none``, each other edge taking its most probable op
        other than ``none`` (2^6 patterns, so exact and cheap). A probability of 0 counts as the
        smallest positive float, so even the one-hot matrix of a disconnected cell has a best
        connected one: the fewest edges changed."""
        probs = _check_probs(probs)
        argmax = cls.from_probs(probs)
        if argmax.connected:
            return argmax
        logp = np.log(np.maximum(probs.astype(np.float64), np.finfo(np.float64).tiny))
        none = OPS.index(NONE)
        others = [j for j in range(len(OPS)) if j != none]
        best_other = np.array(others)[logp[:, others].argmax(axis=1)]
        best, best_score = None, -np.inf
        for pattern in itertools.product((True, False), repeat=len(EDGES)):  # True: the edge is none
            picks = [none if off else int(j) for off, j in zip(pattern, best_other, strict=True)]
            arch = cls(tuple(OPS[j] for j in picks))
            score = logp[np.arange(len(EDGES)), picks].sum()
            if arch.connected and score > best_score:
                best, best_score = arch, score
        return best


def _check_probs(probs) -> np.ndarray:
    probs = np.asarray(probs)
    if probs.shape != (len(EDGES), len(OPS)):
        raise ArchError(f"probabilities of shape {probs.shape}, expected {(len(EDGES), len(OPS))}")
    return probs


@functools.cache
def public_table() -> pd.DataFrame:
    """The public latency table (`PUBLIC_TABLE`): index, arch and one column per device (ms)."""
    return pd.read_parquet(PUBLIC_TABLE)


@functools.cache
def official_indices() -> dict[str, int]:
    table = public_table()
    return dict(zip(table["arch"], table["index"].astype(int), strict=True))


def cell_shape(channels: int, size: int) -> CellShape:
    """The shape of a NAS-Bench-201 cell: one input of ``channels`` x ``size`` x ``size``
    (``c_prev_prev`` is 0: there is no second input; cells never reduce)."""
    return CellShape(False, False, 0, channels, channels, size, size)


def cell_shapes(macro: Macro) -> list[CellShape]:
    """The shape of every cell of the network, in order (N per stage, three stages)."""
    if macro.stem_multiplier != 1:
        raise ValueError(
            f"a NAS-Bench-201 stem has C channels: stem_multiplier is {macro.stem_multiplier}, not 1"
        )
    shapes = []
    for stage in range(3):
        size = macro.input_size
        for _ in range(stage):
            size = -(-size // 2)
        shapes += [cell_shape(macro.init_channels * 2**stage, size)] * macro.layers
    return shapes
