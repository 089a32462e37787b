"""The network-level model of a predictor, as it is applied: whole networks from their cells.

`NetworkModel` is what ``network.json`` beside a predictor's files holds (fitted by
`lenna.predictors.composition`): the chosen composition of the cells' predicted latency ``c``
with the parts outside cells ``p`` (each a linear function of its multiply-accumulates) and
the network's structure, always of the form ``k c + m`` at a given macro (`NetworkModel.affine`),
raised to the plain sum ``c + p`` where the model is floored (`NetworkModel.predict`), so that
the search's expected latency stays differentiable in the alphas.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lenna.io import atomic_write, read_description
from lenna.space.architectures import random_architecture
from lenna.space.network import Macro
from lenna.space.spaces import Space, get_space

if TYPE_CHECKING:
    import torch

FORMAT = "lenna-network-model"
FORMAT_VERSION = 2  # 2: a macro's own calibration has a form (a scale on the pooled model, or affine)
CANDIDATES = ("sum", "affine", "overhead", "features")
PARTS = ("stem", "head", "blocks")


class NetworkModelError(ValueError):
    """A network table or network model that cannot be used; the message names the file."""


# -- what a network is made of ---------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def part_macs(space: Space, macro: Macro) -> dict[str, float]:
    """Multiply-accumulates of each part outside cells (`lenna.timing.networks.network_parts`)
    of a network at ``macro`` for one input: convolutions and linear layers, plus one per output
    element of every other layer (normalisation, activation, pooling): counted on the network
    built with torch, imported here (a network model's other uses need none)."""
    import torch

    from lenna.space.build import build_network, network_parts

    arch = random_architecture(np.random.default_rng(0), space.op_set, space.steps)
    net = build_network(arch, macro).eval()
    x = torch.zeros(1, macro.input_channels, macro.input_size, macro.input_size)
    out = {}
    for part, modules in network_parts(net, x).items():
        total = 0.0
        for module, h in modules:
            total += _module_macs(module, h)
        out[part] = total
    return out


def _module_macs(module: torch.nn.Module, x: torch.Tensor) -> float:
    import torch

    counts = []

    def hook(layer, _inputs, output):
        if isinstance(layer, torch.nn.Conv2d):
            k = layer.kernel_size[0] * layer.kernel_size[1] * layer.in_channels // layer.groups
            counts.append(output.numel() * k)
        elif isinstance(layer, torch.nn.Linear):
            counts.append(layer.in_features * layer.out_features)
        elif not list(layer.children()):
            counts.append(output.numel())

    handles = [m.register_forward_hook(hook) for m in module.modules()]
    try:
        with torch.inference_mode():
            module(x)
    finally:
        for handle in handles:
            handle.remove()
    return float(sum(counts))


def structure(space: Space, macro: Macro) -> dict[str, float]:
    """Network-level features of a network at ``macro`` that do not depend on its cells' ops."""
    shapes = space.cell_shapes(macro)
    reductions = sum(s.reduction for s in shapes) if space.name != "nb201" else 2
    return {
        "n_cells": float(len(shapes)),
        "n_reductions": float(reductions),
        "init_channels": float(macro.init_channels),
        "pixels": float(macro.input_size**2),
        # What the cells hand on to each other: their output activations, in millions.
        "activations": sum(s.c * s.height * s.width for s in shapes) / 1e6,
    }


def same_cells(a: Macro, b: Macro) -> bool:
    """Whether networks at ``a`` and ``b`` are built of cells of the same shapes, only more or
    fewer of them: the macros differ in ``layers`` alone."""
    return dataclasses.replace(a, layers=b.layers) == b


def nearest_same_cells(entries: dict, macro: Macro) -> tuple[str, dict] | None:
    """Of ``entries`` (macro name -> calibration entry, each with its ``macro`` fields), the one
    of the same cells as ``macro`` (`same_cells`, ``macro`` itself left out) nearest to it in
    layers, the first name on a tie; None where there is none."""
    siblings = [
        (name, entry)
        for name, entry in entries.items()
        if entry["macro"] != dataclasses.asdict(macro) and same_cells(Macro(**entry["macro"]), macro)
    ]
    if not siblings:
        return None
    return min(siblings, key=lambda s: (abs(s[1]["macro"]["layers"] - macro.layers), s[0]))


def macro_of_row(row) -> Macro:
    return Macro(**{k[6:]: int(row[k]) for k in row.index if k.startswith("macro_")})


# -- the model ---------------------------------------------------------------------------------------
FEATURES = ("cells_ms", "parts_ms", "n_cells", "n_reductions", "init_channels", "pixels", "activations")


@dataclass
class NetworkModel:
    """A fitted network-level model (``network.json`` beside a predictor's files)."""

    description: dict

    @property
    def chosen(self) -> str:
        return self.description["chosen"]

    @property
    def space(self) -> Space:
        d = self.description
        return get_space(d["op_set"], d["steps"])

    def macs(self, macro: Macro) -> dict[str, float]:
        """The multiply-accumulates of each part outside cells at ``macro``: as the model keeps
        them for the macros of its networks (``part_macs``), else counted (`part_macs`)."""
        fields = dataclasses.asdict(macro)
        for entry in self.description.get("part_macs", ()):
            if entry["macro"] == fields:
                return {part: entry[part] for part in PARTS}
        return part_macs(self.space, macro)

    def parts_ms(self, macro: Macro) -> dict[str, float]:
        """Predicted latency (ms) of each part outside cells of a network at ``macro``."""
        macs = self.macs(macro)
        out = {}
        for part in PARTS:
            fit = self.description["parts"][part]
            out[part] = max(0.0, fit["coef"] * macs[part] + fit["intercept"]) if macs[part] else 0.0
        return out

    def affine(self, macro: Macro, batch_size: int) -> tuple[float, float]:
        """``(k, m)``: the network's latency (ms) is ``k * cells_ms + m`` at ``macro``."""
        if batch_size != self.description["batch_size"]:
            raise NetworkModelError(
                f"{self.description.get('path', 'network model')}: fitted on networks at batch size "
                f"{self.description['batch_size']}, asked for {batch_size}"
            )
        x = {"parts_ms": sum(self.parts_ms(macro).values()), **structure(self.space, macro)}
        k, m = affine_terms(self.chosen, self.description["candidates"][self.chosen]["params"], x)
        own = self.own_calibration(macro)
        if own is None:
            return k, m
        if own["form"] == "scale":
            return own["params"]["scale"] * k, own["params"]["scale"] * m
        return affine_terms("affine", own["params"], x)

    def own_calibration(self, macro: Macro) -> dict | None:
        """The calibration fitted on the networks of ``macro`` alone (its ``form``, ``scale``
        on the pooled prediction or ``affine``, and its ``params``), where the model keeps one
        for it (`lenna.predictors.composition.fit_macro_calibrations`); else, where the model
        lends calibrations (`lenna.predictors.composition.fit_lending`), that of the fitting macro
        of the same cells (`same_cells`) nearest in layers, with its ``name``; else None."""
        used = {k: v for k, v in self.description.get("macros", {}).items() if v["used"]}
        fields = dataclasses.asdict(macro)
        for name, entry in used.items():
            if entry["macro"] == fields:
                return {**entry, "name": name}
        nearest = nearest_same_cells(used, macro) if self.lends else None
        if nearest is None:
            return None
        name, entry = nearest
        return {**entry, "name": name}

    @property
    def lends(self) -> bool:
        """Whether macros without a calibration of their own borrow one (`own_calibration`)."""
        return bool(self.description.get("lending", {}).get("used"))

    @property
    def own_macros(self) -> list[str]:
        """The macros (by name) that have a calibration of their own."""
        return sorted(k for k, v in self.description.get("macros", {}).items() if v["used"])

    @property
    def name(self) -> str:
        """The chosen candidate, and the macros calibrated on their own networks."""
        own = self.own_macros
        if not own:
            return self.chosen
        lent = ", lent to macros of the same cells" if self.lends else ""
        return f"{self.chosen} (own calibration at {', '.join(own)}{lent})"

    def name_at(self, macro: Macro) -> str:
        """The chosen candidate, and whether ``macro`` has its own calibration or borrows one."""
        own = self.own_calibration(macro)
        if own is None:
            return self.chosen
        if own["macro"] == dataclasses.asdict(macro):
            return f"{self.chosen}, own calibration at this macro"
        return f"{self.chosen}, calibration of {own['name']} (the same cells)"

    @property
    def floored(self) -> bool:
        """Whether a prediction is at least the plain sum of the cells' and the parts' (the
        floor, `lenna.predictors.composition.floored`; a model fitted before it had none)."""
        return self.description.get("floor") == "sum"

    def predict(self, cells_ms, macro: Macro, batch_size: int):
        """The whole network's latency (ms) from its cells' predicted ``cells_ms`` (a float, or a
        tensor the result stays differentiable in) at ``macro``: ``k c + m`` (`affine`), at least
        the cells' and the parts' sum where the model is `floored`."""
        k, m = self.affine(macro, batch_size)
        out = k * cells_ms + m
        scalar = isinstance(out, (int, float, np.number))
        if not self.floored:
            return float(out) if scalar else out
        plain = cells_ms + sum(self.parts_ms(macro).values())
        if scalar:
            return float(max(out, plain))
        return out.maximum(plain)  # a tensor: stays differentiable

    def save(self, path) -> None:
        text = json.dumps(
            {k: v for k, v in self.description.items() if k != "path"}, indent=1, sort_keys=True
        )
        atomic_write(Path(path), lambda tmp: Path(tmp).write_text(text + "\n"))

    @classmethod
    def load(cls, path) -> NetworkModel:
        path = Path(path)
        description = read_description(path, FORMAT, FORMAT_VERSION, NetworkModelError)
        if description.get("chosen") not in description.get("candidates", {}):
            raise NetworkModelError(f"{path}: chosen model {description.get('chosen')!r} has no parameters")
        if any("form" not in m for m in description.get("macros", {}).values() if m["used"]):
            raise NetworkModelError(
                f"{path}: written by an older lenna (format version {description.get('format_version')}), "
                "whose macros' own calibrations have no form: fit the network model again "
                "(snakemake re-runs the network_model rule)"
            )
        return cls({**description, "path": str(path)})


def affine_terms(kind: str, params: dict, x: dict) -> tuple[float, float]:
    """``(k, m)`` of candidate ``kind`` with ``params`` at structure ``x`` (without cells_ms)."""
    if kind == "sum":
        return 1.0, x["parts_ms"]
    if kind == "affine":
        return params["a"], params["a"] * x["parts_ms"] + params["b"]
    if kind == "overhead":
        m = x["parts_ms"] + params["o"] * x["n_cells"] + params["r"] * x["n_reductions"] + params["b"]
        return params["a"], m
    w = params["weights"]
    m = params["intercept"] + sum(w[f] * x[f] for f in FEATURES if f != "cells_ms")
    return w["cells_ms"], m
