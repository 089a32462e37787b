"""Discrete DARTS architectures (`Genotype`) in the widely shared text form and in JSON.

Text form: ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
reduce=[...], reduce_concat=range(2, 6))``: two ``(op, input_state)`` pairs per node.
It is parsed as a literal, never evaluated.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from lenna.space.cell import CellShape
from lenna.space.network import Macro, cell_shapes
from lenna.space.ops import CELL_OPS, NONE

Pairs = tuple[tuple[str, int], ...]


FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


class GenotypeError(ValueError):
    """A genotype text or JSON document that does not describe a valid cell pair."""


@dataclass(frozen=True)
class Genotype:
    normal: Pairs
    normal_concat: tuple[int, ...]
    reduce: Pairs
    reduce_concat: tuple[int, ...]

    def __post_init__(self):
        for name in ("normal", "reduce"):
            pairs = getattr(self, name)
            if not pairs or len(pairs) % 2:
                raise GenotypeError(f"{name}: needs two (op, input) pairs per node, got {len(pairs)} pairs")
            for k, (op, inp) in enumerate(pairs):
                node = k // 2
                if op not in CELL_OPS or op == NONE:
                    raise GenotypeError(f"{name}[{k}]: unknown op {op!r}; known: {sorted(CELL_OPS - {NONE})}")
                if not isinstance(inp, int) or not 0 <= inp < node + 2:
                    raise GenotypeError(f"{name}[{k}]: input {inp!r} is not an earlier state of node {node}")
            concat = getattr(self, f"{name}_concat")
            steps = len(pairs) // 2
            if not concat or any(not isinstance(i, int) or not 0 <= i < steps + 2 for i in concat):
                raise GenotypeError(f"{name}_concat: {list(concat)} is not a list of states 0..{steps + 1}")

    @property
    def steps(self) -> int:
        return len(self.normal) // 2

    # -- text and JSON ---------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict) -> Genotype:
        missing = [f for f in FIELDS if f not in data]
        if missing:
            raise GenotypeError(f"genotype lacks field(s) {missing}")
        try:
            return cls(
                normal=tuple((str(op), int(i)) for op, i in data["normal"]),
                normal_concat=tuple(int(i) for i in data["normal_concat"]),
                reduce=tuple((str(op), int(i)) for op, i in data["reduce"]),
                reduce_concat=tuple(int(i) for i in data["reduce_concat"]),
            )
        except (TypeError, ValueError) as err:
            if isinstance(err, GenotypeError):
                raise
            raise GenotypeError(f"malformed genotype fields: {err}") from None

    def to_dict(self) -> dict:
        return {
            "normal": [list(p) for p in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(p) for p in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise GenotypeError(f"not JSON: {err}") from None

    @classmethod
    def load(cls, path) -> Genotype:
        """A genotype file (text form or JSON); any problem is a `GenotypeError` naming the file."""
        try:
            return cls.parse(Path(path).read_text())
        except (OSError, UnicodeDecodeError) as err:
            raise GenotypeError(f"{path}: cannot read the genotype ({err})") from None
        except GenotypeError as err:
            raise GenotypeError(f"{path}: {err}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def parse(cls, text: str) -> Genotype:
        """Parse the text form, or JSON if the text starts with ``{``."""
        text = text.strip()
        if text.startswith("{"):
            return cls.from_json(text)
        try:
            call = ast.parse(text, mode="eval").body
        except SyntaxError as err:
            raise GenotypeError(f"not a genotype: {err.msg}") from None
        if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Genotype"):
            raise GenotypeError("not a genotype: expected 'Genotype(normal=..., ...)'")
        values = dict(zip(FIELDS, call.args, strict=False))
        values.update({kw.arg: kw.value for kw in call.keywords})
        return cls.from_dict({k: _literal(v, k) for k, v in values.items()})

    def __str__(self) -> str:
        return (
            f"Genotype(normal={list(self.normal)}, normal_concat={list(self.normal_concat)}, "
            f"reduce={list(self.reduce)}, reduce_concat={list(self.reduce_concat)})"
        )

    # -- networks (built by `lenna.space.build`) --------------------------------------------------
    def cell_shapes(self, macro: Macro) -> list[CellShape]:
        return cell_shapes(macro, len(self.normal_concat), len(self.reduce_concat))


def _literal(node: ast.expr, field: str):
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "range":
        return list(range(*(ast.literal_eval(a) for a in node.args)))
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise GenotypeError(f"{field}: not a literal") from None


DARTS_V2 = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0),"
    " ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0),"
    " ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0),"
    " ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0),"
    " ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)

DARTS_V1 = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0),"
    " ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0),"
    " ('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0),"
    " ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0),"
    " ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
)

PC_DARTS = Genotype.parse(
    "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0),"
    " ('dil_conv_3x3', 1), ('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0),"
    " ('dil_conv_3x3', 1)], normal_concat=[2, 3, 4, 5], reduce=[('sep_conv_5x5', 1),"
    " ('max_pool_3x3', 0), ('sep_conv_5x5', 1), ('sep_conv_5x5', 2), ('sep_conv_3x3', 0),"
    " ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), ('sep_conv_3x3', 2)], reduce_concat=[2, 3, 4, 5])"
)

# Published DARTS-space genotypes (DARTS first and second order, PC-DARTS), scored as whole
# networks by the network stage.
PUBLISHED = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2, "PC_DARTS": PC_DARTS}
