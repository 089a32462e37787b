"""The search spaces: what differs between DARTS cells, NAS-Bench-201 cells and LENNA blocks, in
one place.

An op set belongs to exactly one space (`SPACE_OF_OP_SET`), so a spec table, a dataset or a
predictor that names its op set and node count (``steps``) names its space too; `get_space`
turns either into a `Space`. The stages ask the space for the cell's edges, the cell shapes of a
network and the ops each edge may hold; `lenna.space.build` builds its torch modules (the gated
cell that is timed, the probabilities of the search's alphas). This module imports no torch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lenna.space import lenna_block, nb201
from lenna.space.cell import CellShape, edge_list
from lenna.space.genotype import Genotype, GenotypeError
from lenna.space.network import Macro, cell_shapes
from lenna.space.ops import OP_SETS, op_set

SPACES = ("darts", "nb201", "lenna")

SPACE_OF_OP_SET = {"darts": "darts", "nb201": "nb201", "lenna": "lenna"}

# Cell inputs per space (DARTS: the outputs of the two previous cells; NAS-Bench-201 and LENNA:
# one) and the node count a space fixes (None: any, set by search_space.steps).
INPUTS = {"darts": 2, "nb201": 1, "lenna": 1}
FIXED_STEPS = {"darts": None, "nb201": 3, "lenna": lenna_block.LAYERS}
DEFAULT_STEPS = {"darts": 4, "nb201": 3, "lenna": lenna_block.LAYERS}


@dataclass(frozen=True)
class Space:
    name: str
    op_set: str
    steps: int

    @property
    def ops(self) -> tuple[str, ...]:
        return op_set(self.op_set)

    @property
    def inputs(self) -> int:
        return INPUTS[self.name]

    def edges(self) -> list[tuple[int, int]]:
        """``(node, input)`` per edge, in the order of the spec columns (`edge_list`)."""
        return edge_list(self.steps, self.inputs)

    @property
    def n_edges(self) -> int:
        return len(self.edges())

    def cell_shapes(self, macro: Macro) -> list[CellShape]:
        """The shape of every searched cell of a network at ``macro``, in order."""
        if self.name == "nb201":
            return nb201.cell_shapes(macro)
        if self.name == "lenna":
            return lenna_block.cell_shapes(macro)
        return cell_shapes(macro, self.steps, self.steps)

    def op_mask(self, shape: CellShape) -> np.ndarray:
        """(n_edges, n_ops) booleans: the ops each edge of a cell at ``shape`` may hold (all but
        the identity on a LENNA reduction block's strided edges; every op elsewhere)."""
        if self.name == "lenna":
            return lenna_block.op_mask(shape.reduction)
        return np.ones((self.n_edges, len(self.ops)), dtype=bool)


def get_space(op_set_or_ops: str | Sequence[str], steps: int) -> Space:
    """The space of an op set (its name, or its ops in order) with ``steps`` nodes per cell."""
    if isinstance(op_set_or_ops, str):
        name = op_set_or_ops
        op_set(name)  # a KeyError naming the known sets
    else:
        ops = tuple(op_set_or_ops)
        names = [k for k, v in OP_SETS.items() if v == ops]
        if not names:
            raise KeyError(f"ops {list(ops)} are not a known op set; known: {sorted(OP_SETS)}")
        name = names[0]
    space = SPACE_OF_OP_SET.get(name, "darts")
    fixed = FIXED_STEPS[space]
    if fixed is not None and steps != fixed:
        raise ValueError(f"a {space} cell has {fixed} nodes after its input, not {steps}")
    return Space(space, name, int(steps))


def config_space(search_space: dict) -> Space:
    """The space of the config's ``search_space`` section (name, and optional op_set / steps)."""
    name = search_space.get("name", "darts")
    return get_space(search_space.get("op_set", name), search_space.get("steps", DEFAULT_STEPS[name]))


def load_architecture(path) -> Genotype | nb201.Arch | lenna_block.Arch:
    """An architecture file: a NAS-Bench-201 one (`Arch.to_dict` JSON, or its string), a LENNA
    block pair (JSON or ``normal=... reduce=...``), or a DARTS genotype (text form or JSON); any
    problem is an error naming the file."""
    path = Path(path)
    try:
        stripped = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return Genotype.load(path)  # the genotype reader names the file and the problem
    try:
        return parse_architecture(stripped)
    except (GenotypeError, nb201.ArchError, lenna_block.ArchError) as err:
        raise type(err)(f"{path}: {err}") from None


def parse_architecture(text: str) -> Genotype | nb201.Arch | lenna_block.Arch:
    """An architecture in any of the forms `load_architecture` reads (the text of a file, or
    the ``genotype`` string that a run records)."""
    stripped = text.strip()
    try:
        if stripped.startswith("|"):
            return nb201.Arch.parse(stripped)
        if stripped.startswith("{") and '"nb201"' in stripped:
            return nb201.Arch.parse(json.loads(stripped)["nb201"])
        if stripped.startswith("normal=") or (stripped.startswith("{") and '"lenna"' in stripped):
            return lenna_block.Arch.parse(stripped)
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise nb201.ArchError(str(err)) from None
    return Genotype.parse(stripped)


def connected(arch: Genotype | nb201.Arch | lenna_block.Arch) -> bool:
    """Whether the architecture's network depends on its input: some path of non-``none`` ops
    from a cell's input to its output. Only a NAS-Bench-201 cell can fail (`Arch.connected`): a
    DARTS genotype never holds ``none`` and LENNA's blocks have no ``none`` op."""
    return arch.connected if isinstance(arch, nb201.Arch) else True
