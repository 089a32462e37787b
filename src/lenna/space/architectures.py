"""Discrete architectures of every space as whole networks: random ones, published ones, their
text form in tables, and the parts of their networks that are not searched cells."""

from __future__ import annotations

import json

import numpy as np

from lenna.space import genotype as darts_genotypes
from lenna.space import lenna_block, nb201
from lenna.space.genotype import Genotype
from lenna.space.nb201 import Arch
from lenna.space.ops import NONE, op_set
from lenna.space.spaces import Space, get_space


def random_architecture(
    rng: np.random.Generator, op_set_name: str, steps: int, concentration: float | None = None
):
    """A random discrete architecture of the space: a derived-style DARTS genotype, a
    NAS-Bench-201 cell, or LENNA blocks. With ``concentration`` None every edge draws its op
    uniformly (any of the 15,625 NAS-Bench-201 cells alike); with a float the architecture first
    draws its own op probabilities from a symmetric Dirichlet of that concentration and every
    edge draws from them, so a small value gives architectures dominated by one op (nearly all
    ``none``, all skips, all convolutions): the cheap and dear extremes a search can end in."""
    space = get_space(op_set_name, steps).name
    if space == "nb201":
        n, size = len(nb201.OPS), len(nb201.EDGES)
        weights = _op_weights(rng, n, concentration)
        ops = rng.integers(n, size=size) if weights is None else rng.choice(n, size=size, p=weights)
        return Arch(tuple(nb201.OPS[k] for k in ops))
    if space == "lenna":
        return lenna_block.random_arch(rng, _op_weights(rng, len(lenna_block.OPS), concentration))
    return random_genotype(rng, op_set_name, steps, concentration)


def _op_weights(rng: np.random.Generator, n_ops: int, concentration: float | None) -> np.ndarray | None:
    """One architecture's op probabilities (None: uniform, drawing nothing from ``rng``)."""
    return None if concentration is None else rng.dirichlet(np.full(n_ops, float(concentration)))


def architecture_text(arch) -> str:
    """How an architecture is stored in a table: genotype JSON, the NAS-Bench-201 string, or the
    LENNA ``normal=... reduce=...`` text (read back by `lenna.space.spaces.parse_architecture`)."""
    if isinstance(arch, Arch | lenna_block.Arch):
        return str(arch)
    return json.dumps(arch.to_dict(), sort_keys=True)


def random_genotype(
    rng: np.random.Generator, op_set_name: str, steps: int, concentration: float | None = None
) -> Genotype:
    """A derived-style genotype: per node two distinct inputs, each with a non-none op (drawn
    uniformly, or from the genotype's own Dirichlet op weights as in `random_architecture`)."""
    ops = [op for op in op_set(op_set_name) if op != NONE]
    weights = _op_weights(rng, len(ops), concentration)

    def cell():
        pairs = []
        for node in range(steps):
            for inp in sorted(rng.choice(node + 2, size=2, replace=False)):
                k = rng.integers(len(ops)) if weights is None else rng.choice(len(ops), p=weights)
                pairs.append((ops[k], int(inp)))
        return tuple(pairs)

    concat = tuple(range(2, steps + 2))
    return Genotype(normal=cell(), normal_concat=concat, reduce=cell(), reduce_concat=concat)


def published_architectures(space: Space) -> dict:
    """The published architectures of a space that its predictors can express: DARTS's and
    PC-DARTS's genotypes (the DARTS op set with 4 nodes), NAS-Bench-201's best CIFAR-10 cell.
    LENNA's space has none; its found blocks are scored with the sweep."""
    if space.name == "darts" and space.op_set == "darts" and space.steps == 4:
        return dict(darts_genotypes.PUBLISHED)
    if space.name == "nb201":
        return {"NB201_BEST_CIFAR10": Arch.parse(nb201.BEST_CIFAR10)}
    return {}
