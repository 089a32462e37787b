"""Trained latency predictors: one durable file format, one forward, one query API.

A predictor directory holds ``model.json`` (what the model is: kind, feature order, normaliser,
architecture, output transform, training-data hash, versions, the SHA-256 of its weights) and
``weights.npz`` (plain arrays). Nothing is pickled, so a model trained today loads in a later
version. Every kind computes latency (ms) from the raw feature columns of
`lenna.datasets.feature_columns` with one forward written once for numpy arrays and torch
tensors alike (`_ops`): on torch tensors every predictor is differentiable in the op
probabilities and serves the latency term of the search; predictions (`predict`,
`predict_features`, `predict_cells`) run it on numpy arrays, so loading and querying a predictor
imports no torch (1.5 s of every job that only predicts).

Kinds:
- ``constant``: the training mean;
- ``linear``: w . z + b on standardised features z (ElasticNet and friends);
- ``mlp``: a multi-layer perceptron on standardised features;
- ``shape_linear``: a per-shape linear function of the probabilities (base[s] + coef[s] . p),
  then an affine map: the lookup-table and FLOPs baselines.
The output is either latency in ms (``linear`` transform) or log latency (``log``), standardised
by the label mean and standard deviation stored in the description.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lenna.io import atomic_write, read_description
from lenna.predictors.network import NetworkModel, NetworkModelError
from lenna.space import lenna_block, nb201
from lenna.space.cell import CellShape, edge_list
from lenna.space.genotype import Genotype
from lenna.space.nb201 import Arch
from lenna.space.network import Macro
from lenna.space.ops import NONE, op_set
from lenna.space.spaces import get_space
from lenna.space.specs import SHAPE_COLUMNS

if TYPE_CHECKING:
    import torch

FORMAT = "lenna-predictor"


FORMAT_VERSION = 1


KINDS = ("constant", "linear", "mlp", "shape_linear")


N_SHAPE = len(SHAPE_COLUMNS) + 1  # shape columns and the batch size lead every feature vector


class PredictorError(ValueError):
    """A predictor directory that cannot be loaded or used; the message names the file."""


def shape_vector(shape: CellShape, batch_size: int) -> list[float]:
    """The leading features of a cell: its shape columns, then the batch size."""
    return [float(getattr(shape, c)) for c in SHAPE_COLUMNS] + [float(batch_size)]


def cell_floors(table: pd.DataFrame, features: list[str]) -> dict[str, np.ndarray]:
    """The floor of a cell predictor: the lowest label of the all-``none`` cells timed at each
    shape (and batch size) of a training ``table`` with feature columns ``features``.

    No cell is faster than the cell of no op at its shape: every op only adds work. A learned
    model can still predict less, even below zero, for the cheap cells few training specs are
    like (the cells a latency-aware search ends in); `LatencyPredictor.latency` raises its
    prediction to this floor; at a shape where no all-``none`` cell was timed, to the lowest
    floor (what a cell of no op cost at any shape: on a CPU at small shapes, the call overhead).
    Empty where the table holds no such cell (the floor is off)."""
    none_columns = [name for name in features[N_SHAPE:] if name.endswith(f"_{NONE}")]
    if not none_columns:
        return {}
    empty = np.isclose(table[none_columns].to_numpy(np.float64), 1.0).all(axis=1)
    if not empty.any():
        return {}
    lowest = table.loc[empty].groupby(features[:N_SHAPE])["latency_ms"].min()
    shapes = np.array(lowest.index.tolist(), dtype=np.float64).reshape(-1, N_SHAPE)
    return {"floor_shapes": shapes, "floor_ms": lowest.to_numpy(np.float64)}


_erf = np.vectorize(math.erf, otypes=[np.float64])


@functools.cache
def _numpy_ops() -> SimpleNamespace:
    return SimpleNamespace(
        tensor=lambda w, like: np.asarray(w, dtype=like.dtype),
        astype=lambda a, like: a.astype(like.dtype),
        zeros=lambda n, like: np.zeros(n, dtype=like.dtype),
        amax=lambda a, axis: a.max(axis=axis),
        where=np.where,
        exp=np.exp,
        maximum=np.maximum,
        einsum=np.einsum,
        cat=lambda arrays, dim: np.concatenate(arrays, axis=dim),
        expand=lambda a, n: np.broadcast_to(a, (n, a.shape[1])),
        activation={
            "relu": lambda h: np.maximum(h, 0),
            "tanh": np.tanh,
            "gelu": lambda h: (0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))).astype(h.dtype),
        },
    )


@functools.cache
def _torch_ops() -> SimpleNamespace:
    import torch

    return SimpleNamespace(
        tensor=lambda w, like: torch.as_tensor(w, dtype=like.dtype, device=like.device),
        astype=lambda a, like: a.to(like.dtype),
        zeros=lambda n, like: like.new_zeros(n),
        amax=lambda a, axis: a.amax(dim=axis),
        where=torch.where,
        exp=torch.exp,
        maximum=torch.maximum,
        einsum=torch.einsum,
        cat=torch.cat,
        expand=lambda a, n: a.expand(n, -1),
        activation={"relu": torch.relu, "tanh": torch.tanh, "gelu": torch.nn.functional.gelu},
    )


def _ops(x) -> SimpleNamespace:
    """The few operations of the forward that numpy and torch spell differently, for arrays like
    ``x``: the forward is written once, with operators and these, for both."""
    return _numpy_ops() if isinstance(x, np.ndarray) else _torch_ops()


def shape_match(x: torch.Tensor, shapes: torch.Tensor) -> torch.Tensor:
    """(n, n_shapes): whether row i of raw features ``x`` has the shape and batch of row j of
    ``shapes`` (n_shapes, `N_SHAPE`); numpy arrays or torch tensors."""
    return (x[:, None, :N_SHAPE] == shapes[None]).all(2)


def base_output(base: str, weights: dict[str, np.ndarray], x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """The linear base an MLP adds to its output (standardised label units), for raw features
    ``x`` and standardised ones ``z``; differentiable in ``x``. ``ridge``: one linear function of
    ``z`` (weights ``base_coef`` (n_features,), ``base_intercept`` (1,)). ``shape``: for a row
    whose cell shape and batch the training cells had, a linear function of its op probabilities
    fitted at that shape (``shape_keys`` (k, `N_SHAPE`), ``shape_coef`` (k, n_probabilities),
    ``shape_intercept`` (k,)); at any other shape the ``ridge`` base, which it holds too.
    ``none``: zero. Numpy arrays or torch tensors (`_ops`)."""
    ops = _ops(x)

    def tensor(name: str) -> torch.Tensor:
        return ops.tensor(weights[name], x)

    if base == "none":
        return ops.zeros(len(x), x)
    out = z @ tensor("base_coef") + tensor("base_intercept")
    if base == "shape":
        match = ops.astype(shape_match(x, tensor("shape_keys")), x)  # (n, k), at most one 1 per row
        per_shape = ((match @ tensor("shape_coef")) * x[:, N_SHAPE:]).sum(1)
        out = ops.where(match.sum(1) > 0, per_shape + match @ tensor("shape_intercept"), out)
    return out


def _weights_bytes(weights: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.ascontiguousarray(v) for k, v in sorted(weights.items())})
    return buffer.getvalue()


@dataclass
class LatencyPredictor:
    """A trained predictor: its JSON description and its weight arrays (float64)."""

    description: dict
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    _network: NetworkModel | None = field(default=None, repr=False)
    _network_error: str = field(default="", repr=False)

    # -- description -----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.description["kind"]

    @property
    def features(self) -> list[str]:
        return self.description["features"]

    @property
    def op_names(self) -> tuple[str, ...]:
        return op_set(self.description["op_set"])

    @property
    def steps(self) -> int:
        return self.description["steps"]

    @property
    def base(self) -> str:
        """The linear base an MLP adds to its output (`MLP_BASES`; ``none`` for other kinds)."""
        return self.description.get("architecture", {}).get("base", "none")

    @property
    def unit(self) -> str:
        """``cell`` (a row is one cell; a network sums its cells) or ``network`` (a row is the
        whole network a device table timed, at the shape and batch of ``network_features``)."""
        return self.description.get("unit", "cell")

    # -- the forward: numpy arrays or torch tensors -----------------------------------------------
    def _tensor(self, name: str, like: torch.Tensor) -> torch.Tensor:
        return _ops(like).tensor(self.weights[name], like)

    def latency(self, x: torch.Tensor) -> torch.Tensor:
        """Latency (ms) of each row of raw features ``x`` (n, n_features), a numpy array or a torch
        tensor of the same dtype out; differentiable in a tensor."""
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"features of shape {tuple(x.shape)}, expected (n, {len(self.features)})")
        if self.kind == "constant":
            # Stays a function of x (with zero gradient), so the search can call backward() on it.
            return x[:, 0] * 0.0 + self._tensor("value", x)
        if self.kind == "shape_linear":
            return self._shape_linear(x)
        z = (x - self._tensor("mean", x)) / self._tensor("std", x)
        if self.kind == "linear":
            out = z @ self._tensor("coef", x) + self._tensor("intercept", x)
        else:
            act = _ops(x).activation[self.description["architecture"]["activation"]]
            n_layers = len(self.description["architecture"]["hidden"]) + 1
            h = z
            for i in range(n_layers):
                h = h @ self._tensor(f"w{i}", x).T + self._tensor(f"b{i}", x)
                if i < n_layers - 1:
                    h = act(h)
            out = h[:, 0] + base_output(self.base, self.weights, x, z)
        label = self.description["label"]
        out = out * label["std"] + label["mean"]
        return self._floored(x, _ops(x).exp(out) if self.description["transform"] == "log" else out)

    def _floored(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out`` raised to the floor of each row's shape (`cell_floors`), or to the lowest floor
        at a shape without one."""
        if "floor_ms" not in self.weights:
            return out
        ops = _ops(x)
        match = self._shape_match(x, "floor_shapes")
        floors = self._tensor("floor_ms", x)
        return ops.maximum(out, ops.amax(ops.where(match, floors[None], floors.min()), 1))

    def _shape_match(self, x: torch.Tensor, shapes: str) -> torch.Tensor:
        """(n, n_shapes): whether row i of ``x`` has the shape and batch of row j of weight ``shapes``."""
        return shape_match(x, self._tensor(shapes, x))

    def _shape_linear(self, x: torch.Tensor) -> torch.Tensor:
        ops = _ops(x)
        match = self._shape_match(x, "shapes")
        found = match.any(1)
        if not bool(found.all()):
            row = x[~found][0, :N_SHAPE].tolist()
            raise PredictorError(
                f"{self.description.get('path', 'predictor')}: no table entry for shape "
                f"{dict(zip([*SHAPE_COLUMNS, 'batch_size'], row, strict=True))}"
            )
        idx = ops.astype(match, x).argmax(1)
        probs = x[:, N_SHAPE:]
        quantities = self._tensor("base", x)[idx] + ops.einsum(
            "nqf,nf->nq", self._tensor("coef", x)[idx], probs
        )
        return quantities @ self._tensor("scale", x) + self._tensor("offset", x)

    # -- queries ---------------------------------------------------------------------------------
    def predict_features(self, x: np.ndarray) -> np.ndarray:
        """Latency (ms) of many raw feature rows at once, (n, n_features) -> (n,).

        Computed in float32 with numpy (twice as fast as float64, far below the labels' noise;
        no torch to import); the differentiable `latency` keeps the caller's dtype."""
        return self.latency(np.array(x, dtype=np.float32)).astype(np.float64)

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Latency (ms) of every spec row of a table holding the feature columns."""
        missing = [c for c in self.features if c not in table.columns]
        if missing:
            raise KeyError(f"table lacks feature column(s) {missing[:5]}{'...' if len(missing) > 5 else ''}")
        return self.predict_features(table[self.features].to_numpy(np.float64))

    def cell_features(self, shapes: list[CellShape], probs: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Raw features of cells at ``shapes`` with op probabilities ``probs`` (n_edges, n_ops) or
        one matrix per shape (n_shapes, n_edges, n_ops); differentiable in ``probs``."""
        ops = _ops(probs)
        shape_part = ops.tensor([shape_vector(s, batch_size) for s in shapes], probs)
        flat = ops.expand(probs.reshape(-1, probs.shape[-2] * probs.shape[-1]), len(shapes))
        return ops.cat([shape_part, flat], 1)

    def expected_cells_latency(
        self, alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor | None, macro: Macro, batch_size: int
    ) -> torch.Tensor:
        """Predicted latency (ms) of all cells of a network whose edges mix ops with
        softmax(alpha) probabilities, summed; differentiable in the alphas (each (n_edges, n_ops)).
        A NAS-Bench-201 network has one cell type: ``alpha_reduce`` is None. A network-unit
        predictor gives the latency of the network its table timed (the benchmark's, at the
        table's batch size) whatever ``macro`` and ``batch_size`` say."""
        if self.unit == "network":
            return self.latency(self._network_row(alpha_normal.softmax(dim=-1))).sum()
        from lenna.space.build import alpha_probs  # torch, which the search has imported

        space = get_space(self.description["op_set"], self.steps)
        shapes = space.cell_shapes(macro)
        total = alpha_normal.new_zeros(())
        for alpha, reduction in ((alpha_normal, False), (alpha_reduce, True)):
            group = [s for s in shapes if s.reduction == reduction]
            if group:
                total = (
                    total
                    + self.latency(
                        self.cell_features(group, alpha_probs(space, alpha, reduction), batch_size)
                    ).sum()
                )
        return total

    def _network_row(self, probs: torch.Tensor) -> torch.Tensor:
        ops = _ops(probs)
        shape = ops.tensor(self.description["network_features"], probs)
        return ops.cat([shape, probs.reshape(-1)], 0)[None]

    def genotype_probs(self, genotype: Genotype, reduction: bool) -> np.ndarray:
        """The one-hot (n_edges, n_ops) matrix of a genotype's normal or reduce cell."""
        pairs = genotype.reduce if reduction else genotype.normal
        concat = genotype.reduce_concat if reduction else genotype.normal_concat
        if genotype.steps != self.steps or list(concat) != list(range(2, self.steps + 2)):
            raise ValueError(f"the predictor models cells of {self.steps} nodes concatenating all of them")
        edges = edge_list(self.steps)
        probs = np.zeros((len(edges), len(self.op_names)))
        probs[:, self.op_names.index(NONE)] = 1.0
        for k, (op, inp) in enumerate(pairs):
            e = edges.index((k // 2, inp))
            if probs[e, self.op_names.index(NONE)] == 0.0:
                raise ValueError(f"node {k // 2} takes input {inp} twice, which a spec cannot express")
            probs[e] = 0.0
            probs[e, self.op_names.index(op)] = 1.0
        return probs

    def predict_cells(
        self, genotype: Genotype | Arch | lenna_block.Arch, macro: Macro, batch_size: int
    ) -> float:
        """Predicted latency (ms) of the cells of an architecture's network, summed: a DARTS
        genotype, a NAS-Bench-201 `Arch` or LENNA blocks (stem, head and NAS-Bench-201's
        reduction blocks excluded); for a network-unit predictor, of the whole network its table
        timed. `predict_network` gives the whole network."""
        if isinstance(genotype, Arch):
            if self.description["op_set"] != "nb201":
                raise ValueError(
                    f"a NAS-Bench-201 cell, but the predictor models {self.description['op_set']}"
                )
            if self.unit == "network":
                return float(self.predict_features(self._network_row(genotype.probs())).sum())
            probs = genotype.probs().ravel()
            rows = [[*shape_vector(s, batch_size), *probs] for s in nb201.cell_shapes(macro)]
        else:
            if isinstance(genotype, lenna_block.Arch):
                if self.description["op_set"] != "lenna":
                    raise ValueError(
                        f"a LENNA block pair, but the predictor models {self.description['op_set']}"
                    )
                probs_of, shapes = genotype.probs, lenna_block.cell_shapes(macro)
            else:
                probs_of, shapes = partial(self.genotype_probs, genotype), genotype.cell_shapes(macro)
            rows = [[*shape_vector(s, batch_size), *probs_of(s.reduction).ravel()] for s in shapes]
        return float(self.predict_features(np.array(rows)).sum())

    # -- whole networks --------------------------------------------------------------------------
    def network_model(self) -> NetworkModel:
        """The network-level model fitted for this predictor (``network.json`` in its
        directory, `lenna.predictors.composition`); an error naming the file without one."""
        if self._network is None:
            where = self.description.get("path", "this predictor")
            raise PredictorError(
                f"{where}: no network model (network.json): whole networks are predicted by the "
                "network stage's model, fitted by the rule network_model"
                + (f" ({self._network_error})" if self._network_error else "")
            )
        return self._network

    def predict_network(self, arch, macro: Macro | None, batch_size: int) -> float:
        """Predicted latency (ms) of the whole network of ``arch`` (a DARTS genotype, a
        NAS-Bench-201 `Arch` or LENNA blocks) at ``macro`` and ``batch_size``: its cells'
        prediction composed with the parts outside cells and the network's structure by the
        network model. A network-unit predictor predicts the network its table timed."""
        if self.unit == "network":
            return self.predict_cells(arch, macro, batch_size)
        return self.network_model().predict(self.predict_cells(arch, macro, batch_size), macro, batch_size)

    def expected_network_latency(
        self, alpha_normal: torch.Tensor, alpha_reduce: torch.Tensor | None, macro: Macro, batch_size: int
    ) -> torch.Tensor:
        """`predict_network` of the network whose edges mix ops with softmax(alpha)
        probabilities (the search's latency term), differentiable in the alphas."""
        cells = self.expected_cells_latency(alpha_normal, alpha_reduce, macro, batch_size)
        if self.unit == "network":
            return cells
        return self.network_model().predict(cells, macro, batch_size)

    # -- files -----------------------------------------------------------------------------------
    def save(self, directory) -> None:
        """Write ``model.json`` and ``weights.npz`` into ``directory`` (atomically each)."""
        directory = Path(directory)
        blob = _weights_bytes(self.weights)
        description = {**self.description, "weights_file": "weights.npz"}
        description["weights_sha256"] = hashlib.sha256(blob).hexdigest()
        description.pop("path", None)
        atomic_write(directory / "weights.npz", lambda tmp: Path(tmp).write_bytes(blob))
        text = json.dumps(description, indent=1, sort_keys=True) + "\n"
        atomic_write(directory / "model.json", lambda tmp: Path(tmp).write_text(text))

    @classmethod
    def load(cls, directory) -> LatencyPredictor:
        """Load a predictor directory; a missing, corrupted or mismatched file is an error naming it."""
        directory = Path(directory)
        meta = directory / "model.json"
        hint = f" (is {directory} a predictor directory?)"
        description = read_description(meta, FORMAT, FORMAT_VERSION, PredictorError, hint)
        if description.get("kind") not in KINDS:
            raise PredictorError(f"{meta}: unknown kind {description.get('kind')!r}; known: {list(KINDS)}")
        path = directory / description.get("weights_file", "weights.npz")
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise PredictorError(f"{path}: no such file (the weights of {meta})") from None
        if hashlib.sha256(blob).hexdigest() != description.get("weights_sha256"):
            raise PredictorError(
                f"{path}: its SHA-256 does not match {meta}; the files do not belong together"
            )
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            weights = {k: arrays[k].astype(np.float64) for k in arrays.files}
        predictor = cls({**description, "path": str(directory)}, weights)
        predictor._check(meta)
        predictor._load_network(directory / "network.json")
        return predictor

    def _load_network(self, path: Path) -> None:
        """Attach the network model at ``path`` if there is one fitted for these weights."""
        if not path.exists():
            return
        try:
            network = NetworkModel.load(path)
        except NetworkModelError as err:
            self._network_error = str(err)
            return
        if network.description.get("predictor_weights_sha256") != self.description.get("weights_sha256"):
            self._network_error = f"{path} was fitted for other weights than {self.description['path']}'s"
            return
        self._network = network

    def _check(self, meta) -> None:
        n = len(self.features)
        expected = {"constant": {"value": (1,)}, "linear": {"coef": (n,), "mean": (n,), "std": (n,)}}
        for name, shape in expected.get(self.kind, {}).items():
            if name not in self.weights or self.weights[name].shape != shape:
                got = self.weights[name].shape if name in self.weights else "missing"
                raise PredictorError(f"{meta}: weight {name!r} is {got}, expected {shape}")
        if ("floor_ms" in self.weights) != ("floor_shapes" in self.weights) or (
            "floor_ms" in self.weights
            and self.weights["floor_shapes"].shape != (len(self.weights["floor_ms"]), N_SHAPE)
        ):
            raise PredictorError(f"{meta}: weights 'floor_shapes' and 'floor_ms' do not match")
        if self.kind == "mlp":
            sizes = [n, *self.description["architecture"]["hidden"], 1]
            for i in range(len(sizes) - 1):
                w = self.weights.get(f"w{i}")
                if w is None or w.shape != (sizes[i + 1], sizes[i]):
                    got = None if w is None else w.shape
                    raise PredictorError(
                        f"{meta}: layer {i} weight is {got}, expected {(sizes[i + 1], sizes[i])}"
                    )
            self._check_base(meta)

    def _check_base(self, meta) -> None:
        n = len(self.features)
        k = len(self.weights.get("shape_keys", ()))
        ridge = {"base_coef": (n,), "base_intercept": (1,)}
        shape = {"shape_keys": (k, N_SHAPE), "shape_coef": (k, n - N_SHAPE), "shape_intercept": (k,)}
        expected = {"none": {}, "ridge": ridge, "shape": ridge | shape}
        if self.base not in expected:
            raise PredictorError(f"{meta}: unknown base {self.base!r}; known: {list(expected)}")
        for name, want in expected[self.base].items():
            got = self.weights[name].shape if name in self.weights else "missing"
            if got != want:
                raise PredictorError(f"{meta}: weight {name!r} is {got}, expected {want}")


def load_predictor(directory) -> LatencyPredictor:
    """Load a trained predictor from its directory (``results/predictors/{target}/{model}``)."""
    return LatencyPredictor.load(directory)
