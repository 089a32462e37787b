"""Which whole networks the network stage times (`network_plan`): random architectures at every
macro setting of the config's ranges (the search and final networks among them) and at an optional
held-out macro used only for scoring, plus the published architectures of the space at the search
and final macros. `lenna.timing.networks` times them; this module imports no torch, so the config
check and the stages that only read tables use it without.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from lenna.space.architectures import published_architectures, random_architecture
from lenna.space.network import Macro, network_macro
from lenna.space.spaces import Space

# The parts of a network outside its searched cells, timed at every visit.
PARTS = ("stem", "head", "blocks")


# -- which networks --------------------------------------------------------------------------------
@dataclass(frozen=True)
class NetworkItem:
    """One network to time: an architecture at a macro. ``group`` says what it is for:
    ``random`` (fitting and scoring by its split), ``held_out`` (a random architecture at the
    macro no model is fitted on) or ``published``."""

    name: str
    arch: object
    macro_name: str
    macro: Macro
    group: str


def macro_name(macro: Macro, config_macro: dict) -> str:
    """``search`` / ``final`` for the config's networks, else ``C{channels}-L{layers}-S{pixels}``."""
    for name in ("search", "final"):
        if all(config_macro[name][k] == getattr(macro, k) for k in ("init_channels", "layers", "input_size")):
            return name
    return f"C{macro.init_channels}-L{macro.layers}-S{macro.input_size}"


def _macro(config_macro: dict, init_channels: int, layers: int, input_size: int) -> Macro:
    common = {k: config_macro[k] for k in ("input_channels", "num_classes", "stem_multiplier")}
    return Macro(init_channels=init_channels, layers=layers, input_size=input_size, **common)


def held_out_macro(config_macro: dict, held_out: dict) -> Macro:
    """The `Macro` of the config's ``networks.held_out_macro``."""
    return _macro(config_macro, held_out["init_channels"], held_out["layers"], held_out["input_size"])


def fit_macros(config_macro: dict) -> list[Macro]:
    """Every macro setting of the config's ranges (channels x cells x pixels): the networks the
    network model is fitted on, the search and final networks among them."""
    return [
        _macro(config_macro, c, n, s)
        for c, n, s in itertools.product(
            config_macro["init_channels"], config_macro["layers"], config_macro["input_size"]
        )
    ]


def covered(space: Space, macro: Macro, config_macro: dict) -> bool:
    """Whether every cell of a network at ``macro`` has a shape the spec sampling covers (the
    shapes of the networks of the config's ranges), so that the cell predictors hold there."""
    shapes = {s for m in fit_macros(config_macro) for s in space.cell_shapes(m)}
    return set(space.cell_shapes(macro)) <= shapes


def network_plan(space: Space, config_macro: dict, settings: dict) -> list[NetworkItem]:
    """The networks of the network stage (config section ``networks``): ``n_architectures``
    random architectures (seeded by ``seed``, their ops drawn as ``op_concentration`` says: see
    `random_architecture`) at every `fit_macros` setting and at ``held_out_macro`` (optional),
    and the `published_architectures` at the search and final macros."""
    rng = np.random.default_rng(settings["seed"])
    concentration = settings.get("op_concentration")
    archs = [
        random_architecture(rng, space.op_set, space.steps, concentration)
        for _ in range(settings["n_architectures"])
    ]
    macros = [(macro_name(m, config_macro), m, "random") for m in fit_macros(config_macro)]
    held_out = settings.get("held_out_macro")
    if held_out:
        macros.append(("held_out", held_out_macro(config_macro, held_out), "held_out"))
    items = [
        NetworkItem(f"random-{k}", arch, name, macro, group)
        for name, macro, group in macros
        for k, arch in enumerate(archs)
    ]
    named = {Macro(**network_macro(config_macro, name)): name for name in ("final", "search")}
    for macro, name in named.items():  # each macro once where search and final are one network
        items += [
            NetworkItem(title, arch, name, macro, "published")
            for title, arch in published_architectures(space).items()
        ]
    return items
