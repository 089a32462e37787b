"""LENNA's own search space (the public meowpunch/LENNA code, ``lenna_net.py`` and its search
network): a *block* of one input and 5 layers, layer i summing one op applied to the block input
and to every earlier layer, so 1 + 2 + 3 + 4 + 5 = 15 edges; the block's output is its last layer.

There are no ``none`` ops: every edge runs one of 11 candidates (LENNA's ``normal_ops``, in its
order): 3x3 and 5x5 convolutions, depthwise-separable convolutions (``DW``), dilated convolutions
(``d``, dilation 2) and dilated depthwise-separable ones, 3x3 max and average pooling (stride 1,
no batch norm) and the identity. Convolutions are conv, batch norm, ReLU (LENNA's
``weight_bn_act``); a depthwise-separable one is a depthwise k x k, then a 1x1 to the output
channels, then batch norm and ReLU.

A *reduction* block doubles the channels and halves the pixels: the 5 edges from its input stride
2 and map C to 2C, and hold LENNA's ``reduction_ops`` instead: the same 8 convolutions, and in the
two pooling slots a 2x2 pooling of stride 2 followed by a 1x1 conv, batch norm and ReLU (its
``PoolingExpandLayer``); the identity cannot stride or widen, so its probability there is always 0
(`op_mask`). A block's feature vector is therefore its shape plus 15 x 11 probabilities, LENNA's
167 columns (block type, channels, 15 x 11) plus the shape columns the other spaces have.

The network (LENNA's ``SuperDartsRecastingNet``): a 3x3 conv stem with C channels, batch norm and
ReLU, then three stages of N blocks: the first stage all normal blocks at C; each later stage one
reduction block, which doubles the channels, and N - 1 normal blocks; then global pooling and a
linear classifier. In a `Macro`, ``init_channels`` is C and ``layers`` is N (blocks *per stage*;
LENNA searched N = 4 at C = 16 on 32x32 CIFAR-10, batch 64). A searched architecture, `Arch`, is
one normal and one reduction block shared by all blocks of their kind, as DARTS shares its cells.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lenna.space.cell import CellShape, edge_list
from lenna.space.nb201 import format_nodes, parse_nodes
from lenna.space.network import Macro
from lenna.space.ops import OP_SETS

# LENNA's normal_ops, in its order. On the input edges of a reduction block the two pooling slots
# hold its reduction_ops' 2x2_maxpool and 2x2_avgpool (pooling, then a 1x1 expansion).
OPS = OP_SETS["lenna"]
IDENTITY = "Identity"
LAYERS = 5
EDGES = edge_list(LAYERS, inputs=1)  # (layer, input): input 0 is the block input, i > 0 layer i - 1
STAGES = 3


class ArchError(ValueError):
    """A LENNA architecture (text or JSON) that does not describe a block pair; says what is wrong."""


def strided(edge: tuple[int, int], reduction: bool) -> bool:
    """Whether an edge of a block strides: the edges from the input of a reduction block."""
    return reduction and edge[1] == 0


def op_mask(reduction: bool) -> np.ndarray:
    """(15, 11) booleans: the ops an edge of a normal / reduction block may hold."""
    mask = np.ones((len(EDGES), len(OPS)), dtype=bool)
    if reduction:
        mask[[k for k, e in enumerate(EDGES) if strided(e, True)], OPS.index(IDENTITY)] = False
    return mask


def edge_channels(shape: CellShape, edge: tuple[int, int]) -> tuple[int, int, int]:
    """(c_in, c_out, stride) of an edge of a block at ``shape``."""
    if strided(edge, shape.reduction):
        return shape.c_prev, shape.c, 2
    return shape.c, shape.c, 1


def block_shape(c_in: int, size: int, reduction: bool) -> CellShape:
    """The shape of a block: its input of ``c_in`` channels x ``size`` pixels; a reduction block
    outputs 2 * c_in channels (``c``). There is no second input (``c_prev_prev`` 0)."""
    return CellShape(reduction, False, 0, c_in, 2 * c_in if reduction else c_in, size, size)


def cell_shapes(macro: Macro) -> list[CellShape]:
    """The shape of every block of the network, in order (N per stage, three stages)."""
    if macro.stem_multiplier != 1:
        raise ValueError(f"a LENNA stem has C channels: stem_multiplier is {macro.stem_multiplier}, not 1")
    if macro.input_size % 2 ** (STAGES - 1):
        raise ValueError(
            f"a LENNA network halves its input twice: input_size {macro.input_size} is not a multiple of 4"
        )
    shapes, c, size = [], macro.init_channels, macro.input_size
    for stage in range(STAGES):
        for k in range(macro.layers):
            reduction = stage > 0 and k == 0
            shapes.append(block_shape(c, size, reduction))
            if reduction:
                c, size = 2 * c, size // 2
    return shapes


def _block_text(ops: Sequence[str]) -> str:
    return format_nodes(ops, LAYERS)


def _parse_block(text: str, what: str) -> tuple[str, ...]:
    """One block in NAS-Bench-201's notation: node j (layer j) lists ``op~i`` for i = 0 (the
    block input) and every earlier layer i = 1 .. j - 1."""
    return parse_nodes(text.strip(), LAYERS, OPS, what, ArchError)


@dataclass(frozen=True)
class Arch:
    """A discrete LENNA architecture: one op per edge (`EDGES` order) of the normal block and of
    the reduction block."""

    normal: tuple[str, ...]
    reduce: tuple[str, ...]

    def __post_init__(self):
        for name in ("normal", "reduce"):
            ops = getattr(self, name)
            if len(ops) != len(EDGES):
                raise ArchError(f"{name}: {len(ops)} ops for the {len(EDGES)} edges of a block")
            mask = op_mask(name == "reduce")
            for k, op in enumerate(ops):
                if op not in OPS:
                    raise ArchError(f"{name}: edge {EDGES[k]}: unknown op {op!r}; known: {list(OPS)}")
                if not mask[k, OPS.index(op)]:
                    raise ArchError(f"{name}: edge {EDGES[k]} strides, and {op!r} cannot")

    @classmethod
    def parse(cls, text: str) -> Arch:
        """``normal=<block> reduce=<block>``, each block as `_parse_block` reads it; or the JSON
        of `to_dict`."""
        text = text.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)["lenna"]
                return cls(_parse_block(data["normal"], "normal"), _parse_block(data["reduce"], "reduce"))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise ArchError(f"not a LENNA architecture document: {err!r}") from None
        fields = dict(part.partition("=")[::2] for part in text.split())
        if sorted(fields) != ["normal", "reduce"]:
            raise ArchError(f"{text!r}: expected 'normal=<block> reduce=<block>'")
        return cls(_parse_block(fields["normal"], "normal"), _parse_block(fields["reduce"], "reduce"))

    def __str__(self) -> str:
        return f"normal={_block_text(self.normal)} reduce={_block_text(self.reduce)}"

    def to_dict(self) -> dict:
        return {"lenna": {"normal": _block_text(self.normal), "reduce": _block_text(self.reduce)}}

    def probs(self, reduction: bool) -> np.ndarray:
        """The one-hot (15, 11) probability matrix of the normal or reduction block."""
        ops = self.reduce if reduction else self.normal
        probs = np.zeros((len(EDGES), len(OPS)))
        probs[np.arange(len(EDGES)), [OPS.index(op) for op in ops]] = 1.0
        return probs

    @classmethod
    def from_probs(cls, normal, reduce) -> Arch:
        """The most probable op of every edge that the edge may hold (a search's derivation)."""
        picked = []
        for probs, reduction in ((normal, False), (reduce, True)):
            probs = np.asarray(probs, dtype=np.float64)
            if probs.shape != (len(EDGES), len(OPS)):
                raise ArchError(f"probabilities of shape {probs.shape}, expected {(len(EDGES), len(OPS))}")
            allowed = np.where(op_mask(reduction), probs, -np.inf)
            picked.append(tuple(OPS[int(k)] for k in allowed.argmax(axis=1)))
        return cls(*picked)

    def cell_shapes(self, macro: Macro) -> list[CellShape]:
        return cell_shapes(macro)

    def identities(self) -> int:
        """Identity edges of the normal block (the skip count a search reports)."""
        return sum(op == IDENTITY for op in self.normal)


def random_arch(rng: np.random.Generator, weights: np.ndarray | None = None) -> Arch:
    """An op drawn for each edge of both blocks from those the edge may hold: uniformly, or by
    ``weights`` (one per op of `OPS`) renormalised over them."""
    blocks = []
    for reduction in (False, True):
        mask = op_mask(reduction)
        blocks.append(tuple(OPS[_draw(rng, np.flatnonzero(row), weights)] for row in mask))
    return Arch(*blocks)


def _draw(rng: np.random.Generator, allowed: np.ndarray, weights: np.ndarray | None) -> int:
    if weights is None or weights[allowed].sum() <= 0:
        return rng.choice(allowed)
    return rng.choice(allowed, p=weights[allowed] / weights[allowed].sum())
