"""Architecture specs: a cell shape plus one probability per candidate op per edge.

A spec table (Parquet) has one row per spec with the columns of `spec_columns`. The probability
columns are named ``e{edge:02d}_{op}``; a *discrete* spec is one-hot on every edge, an *expected*
spec ("soft", LENNA's label kind) holds a distribution that the binary gates are sampled from.
The batch size is not part of a spec: it belongs to the target that times it, so one spec table
can be timed on many targets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lenna.space.cell import CellShape
from lenna.space.network import Macro
from lenna.space.ops import NONE, op_set
from lenna.space.spaces import config_space, get_space

SPEC_SCHEMA_VERSION = 1


SHAPE_COLUMNS = ("reduction", "reduction_prev", "c_prev_prev", "c_prev", "c", "height", "width")


LABEL_KINDS = ("discrete", "expected")


SAMPLERS = ("discrete", "derived", "soft", "skewed")


def prob_columns(op_names: Sequence[str], steps: int) -> list[str]:
    """Names of the probability columns, edge-major in the order of the space's edges."""
    return [f"e{k:02d}_{op}" for k in range(get_space(op_names, steps).n_edges) for op in op_names]


def spec_columns(op_names: Sequence[str], steps: int) -> list[str]:
    return [
        "spec_id",
        "index",
        "sampler",
        "label_kind",
        "op_set",
        "steps",
        *SHAPE_COLUMNS,
        "concentration",
        *prob_columns(op_names, steps),
    ]


def spec_id(op_set_name: str, steps: int, shape: CellShape, probs: np.ndarray, label_kind: str) -> str:
    """A stable 16-hex-digit id from everything that defines a spec (exact float bits included)."""
    return spec_ids(op_set_name, steps, shape, np.asarray(probs)[None], label_kind)[0]


def spec_ids(op_set_name: str, steps: int, shape: CellShape, probs: np.ndarray, label_kind: str) -> list[str]:
    """`spec_id` of each spec of one op set, shape and label kind, ``probs`` stacked on the first
    axis: the sha256 of the spec's sorted compact JSON, whose common part is encoded once (a device
    table's 15,625 networks get their ids in a fraction of a second)."""
    payload = {
        "v": SPEC_SCHEMA_VERSION,
        "op_set": op_set_name,
        "steps": steps,
        "shape": shape.as_dict(),
        "label_kind": label_kind,
        "probs": [],
    }
    head, tail = json.dumps(payload, sort_keys=True, separators=(",", ":")).split('"probs":[]')
    rows = np.asarray(probs, dtype=np.float64).reshape(len(probs), -1).tolist()
    # A float's hex form needs no JSON escaping: the list is what json.dumps writes for it.
    blobs = (head + '"probs":["' + '","'.join(map(float.hex, row)) + '"]' + tail for row in rows)
    return [hashlib.sha256(blob.encode()).hexdigest()[:16] for blob in blobs]


@dataclass(frozen=True)
class SamplingPlan:
    """What `sample_specs` draws from: shapes of the macro range and the cell families."""

    op_set: str
    steps: int
    shapes: tuple[CellShape, ...]
    sampler_weights: dict[str, float]
    concentration: tuple[float, float]


def macro_shapes(
    init_channels: Iterable[int],
    layers: Iterable[int],
    input_sizes: Iterable[int],
    input_channels: int,
    stem_multiplier: int,
    steps: int,
    op_set_name: str = "darts",
) -> tuple[CellShape, ...]:
    """Every distinct cell shape of the space's networks in the macro range, in a fixed order."""
    space = get_space(op_set_name, steps)
    shapes = set()
    for c in init_channels:
        for n in layers:
            for size in input_sizes:
                macro = Macro(c, n, size, input_channels, stem_multiplier=stem_multiplier)
                shapes.update(space.cell_shapes(macro))
    return tuple(sorted(shapes, key=lambda s: tuple(s.as_dict().values())))


def _discrete_probs(rng: np.random.Generator, n_edges: int, n_ops: int) -> np.ndarray:
    probs = np.zeros((n_edges, n_ops))
    probs[np.arange(n_edges), rng.integers(0, n_ops, n_edges)] = 1.0
    return probs


def _skewed_probs(rng: np.random.Generator, n_edges: int, n_ops: int, conc: float) -> np.ndarray:
    """A discrete cell whose edges draw their ops from the cell's own op weights (a Dirichlet of
    concentration ``conc``): small concentrations give cells of nearly one op on every edge, all
    ``none`` among them, which uniform draws almost never give (1 in 15,625 on NAS-Bench-201)."""
    weights = rng.dirichlet(np.full(n_ops, conc))
    if not weights.sum() > 0:  # a tiny concentration can underflow
        weights = np.eye(n_ops)[rng.integers(n_ops)]
    probs = np.zeros((n_edges, n_ops))
    probs[np.arange(n_edges), rng.choice(n_ops, size=n_edges, p=weights / weights.sum())] = 1.0
    return probs


def _within_mask(probs: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``probs`` with the ops an edge cannot hold taken out: a row's mass is spread over the ops
    it may hold (renormalised), and a row left with none gets one of them, drawn uniformly."""
    probs = np.where(mask, probs, 0.0)
    for k in np.flatnonzero(~(probs.sum(axis=1) > 0)):
        probs[k, rng.choice(np.flatnonzero(mask[k]))] = 1.0
    return probs / probs.sum(axis=1, keepdims=True)


def _derived_probs(rng: np.random.Generator, steps: int, op_names: Sequence[str]) -> np.ndarray:
    """Two live inputs per node with a non-none op each, as DARTS derivation produces."""
    space = get_space(op_names, steps)
    if space.name != "darts":
        raise ValueError(f"the derived sampler is DARTS's derivation; a {space.name} cell has no such rule")
    pairs = space.edges()
    probs = np.zeros((len(pairs), len(op_names)))
    none = op_names.index(NONE)
    live_ops = [i for i in range(len(op_names)) if i != none]
    probs[:, none] = 1.0
    for node in range(steps):
        edges = [k for k, (n, _) in enumerate(pairs) if n == node]
        for k in rng.choice(edges, size=2, replace=False):
            probs[k, none] = 0.0
            probs[k, live_ops[rng.integers(len(live_ops))]] = 1.0
    return probs


def _soft_probs(rng: np.random.Generator, n_edges: int, n_ops: int, conc: float) -> np.ndarray:
    probs = rng.dirichlet(np.full(n_ops, conc), size=n_edges)
    # Dirichlet draws with tiny concentrations can underflow to an all-zero row.
    bad = ~(probs.sum(axis=1) > 0)
    probs[bad] = np.eye(n_ops)[rng.integers(0, n_ops, bad.sum())]
    return probs / probs.sum(axis=1, keepdims=True)


def sample_spec(plan: SamplingPlan, seed: int, index: int) -> dict:
    """Spec number ``index`` of the stream of ``seed``; depends on nothing else."""
    rng = np.random.default_rng([seed, index])
    op_names = op_set(plan.op_set)
    n_edges = get_space(plan.op_set, plan.steps).n_edges
    names = [k for k in SAMPLERS if k in plan.sampler_weights]  # not the config's key order
    weights = np.array([plan.sampler_weights[k] for k in names], dtype=np.float64)
    sampler = names[rng.choice(len(names), p=weights / weights.sum())]
    shape = plan.shapes[rng.integers(len(plan.shapes))]
    conc = np.nan
    if sampler == "discrete":
        probs = _discrete_probs(rng, n_edges, len(op_names))
    elif sampler == "derived":
        probs = _derived_probs(rng, plan.steps, op_names)
    else:
        lo, hi = plan.concentration
        conc = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        draw = _soft_probs if sampler == "soft" else _skewed_probs
        probs = draw(rng, n_edges, len(op_names), conc)
    mask = get_space(plan.op_set, plan.steps).op_mask(shape)
    if not mask.all():  # LENNA's reduction blocks: no identity on a strided edge
        probs = _within_mask(probs, mask, rng)
    label_kind = "expected" if sampler == "soft" else "discrete"
    row = {
        "spec_id": spec_id(plan.op_set, plan.steps, shape, probs, label_kind),
        "index": index,
        "sampler": sampler,
        "label_kind": label_kind,
        "op_set": plan.op_set,
        "steps": plan.steps,
        **shape.as_dict(),
        "concentration": conc,
    }
    row.update(zip(prob_columns(op_names, plan.steps), probs.ravel(), strict=True))
    return row


def sample_specs(plan: SamplingPlan, seed: int, start: int, stop: int) -> pd.DataFrame:
    """Specs ``start`` .. ``stop - 1`` of the stream of ``seed`` as a spec table."""
    rows = [sample_spec(plan, seed, i) for i in range(start, stop)]
    columns = spec_columns(op_set(plan.op_set), plan.steps)
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"reduction": bool, "reduction_prev": bool, "index": "int64", "steps": "int64"})


def spec_shape(row) -> CellShape:
    return CellShape(
        **{k: (bool(row[k]) if k.startswith("reduction") else int(row[k])) for k in SHAPE_COLUMNS}
    )


def spec_probs(row, op_names: Sequence[str], steps: int) -> np.ndarray:
    """The (n_edges, n_ops) probability matrix stored in a spec row, exactly as stored."""
    values = np.array([row[c] for c in prob_columns(op_names, steps)], dtype=np.float64)
    return values.reshape(-1, len(op_names))


def macro_cell_shapes(search_space: dict, macro: dict) -> tuple[CellShape, ...]:
    """Every distinct cell shape of the networks in the macro ranges of a config
    (``search_space``: the config's section, or a normaliser's op_set and steps)."""
    space = config_space(search_space)
    return macro_shapes(
        macro["init_channels"],
        macro["layers"],
        macro["input_size"],
        macro["input_channels"],
        macro["stem_multiplier"],
        space.steps,
        space.op_set,
    )


def sampling_plan(config: dict) -> SamplingPlan:
    sampling = config["sampling"]
    space = config_space(config["search_space"])
    shapes = macro_cell_shapes(config["search_space"], config["macro"])
    return SamplingPlan(
        op_set=space.op_set,
        steps=space.steps,
        shapes=shapes,
        sampler_weights=dict(sampling["samplers"]),
        concentration=tuple(sampling["soft_concentration"]),
    )
