"""Whole networks as data: random and published architectures, timed by the cells' protocol.

A network stage times whole networks of the space, each at several macro settings, so that a
network-level model (`lenna.predictors.composition`) can learn what a network spends beyond the
sum of its cells. `lenna.timing.network_plan` lists them; `label_networks` times them as the
cells are timed (`lenna.timing.labels`): visits in rounds spread over the job, the job's
reference cell, re-timing of networks whose visits disagree. Each visit also times the parts of
the network that are not searched cells (the stem, the head and, in NAS-Bench-201, the residual
reduction blocks), so that the network model can predict them without a device.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import torch

from lenna.space.architectures import architecture_text
from lenna.space.build import build_network, network_parts
from lenna.timing.clock import timed_round
from lenna.timing.devices import as_input, place
from lenna.timing.labels import (
    SpecTiming,
    _out_of_memory_as_failure,
    _OutOfMemory,
    _ReferenceClock,
    provenance,
    quiet_job,
    visit_in_rounds,
)
from lenna.timing.network_plan import PARTS, NetworkItem
from lenna.timing.protocol import Target, TimingProtocol, label_of

NETWORK_SCHEMA_VERSION = 2


# -- the parts of a network ------------------------------------------------------------------------
class NetworkTiming(SpecTiming):
    """A network's passes visit by visit (a discrete label), and those of its parts."""

    def __init__(self):
        super().__init__("discrete")
        self.parts: dict[str, list[np.ndarray]] = {part: [] for part in PARTS}

    def part_labels(self, protocol: TimingProtocol) -> dict[str, float]:
        """Each part's label (ms): per module `label_of` its passes pooled over the visits, summed
        over the part's modules (0 for a part the network does not have)."""
        out = {}
        for part, visits in self.parts.items():
            pooled = np.concatenate(visits, axis=1) if visits else np.empty((0, 0))  # (modules, passes)
            out[f"{part}_ms"] = float(sum(label_of(runs, protocol) for runs in pooled))
        return out


class _Built:
    """A network on the device with its input and parts, built once per job."""

    def __init__(self, item: NetworkItem, target: Target, device: torch.device, seed: int):
        self.net = place(target, build_network(item.arch, item.macro), device)
        size = (target.batch_size, item.macro.input_channels, item.macro.input_size, item.macro.input_size)
        self.x = as_input(target, torch.randn(*size, generator=torch.Generator().manual_seed(seed)), device)
        self.parts = network_parts(self.net, self.x)


def _visit_network(built: _Built, timing: NetworkTiming, protocol: TimingProtocol) -> None:
    with torch.inference_mode():
        timing.visits.append(timed_round(built.net, (built.x,), protocol))
        for part, modules in built.parts.items():
            passes = [timed_round(module, (h,), protocol) for module, h in modules]
            timing.parts[part].append(np.array(passes).reshape(len(modules), protocol.repeats))


def label_networks(
    items: list[NetworkItem],
    target: Target,
    device: torch.device,
    protocol: TimingProtocol,
    reference,
    span_s: float = 0.0,
) -> tuple[list[dict], dict]:
    """One label per network (`NetworkItem`), in order, with its parts' labels, and the job's
    reference timing and re-timing: the cells' protocol (`visit_in_rounds`, its rounds spread
    over at least ``span_s`` seconds), the reference cell at shape ``reference`` (the cell jobs'
    reference, so that the labels calibrate alike). A network the device cannot hold is
    labelled ``failed``.

    The reference ticks before every network visit, not every ``reference_every`` items as in
    a cell job: a job of a dozen networks (a sweep's found networks) would otherwise tick once
    per round, and the job's calibration would rest on three ticks, one slow spell among which
    moves every label of the job (by 10% in one default run). A network visit costs many
    reference ticks, so this adds little time."""
    timings = [NetworkTiming() for _ in items]
    built: dict[int, _Built] = {}

    def visit_one(i: int) -> None:
        try:
            with _out_of_memory_as_failure(device):
                if i not in built:
                    built[i] = _Built(items[i], target, device, seed=i)
                _visit_network(built[i], timings[i], protocol)
        except _OutOfMemory as err:
            timings[i].error = str(err)
            built.pop(i, None)

    clock = _ReferenceClock(reference.shape, reference.op_names, reference.steps, target, device, protocol)
    retime = visit_in_rounds(timings, visit_one, clock, replace(protocol, reference_every=1), span_s)
    labels = []
    for timing in timings:
        label = timing.label(protocol, ())
        label.pop("gates")
        label.pop("n_resets")
        label.pop("converged")
        parts = timing.part_labels(protocol) if not timing.error else {f"{p}_ms": float("nan") for p in PARTS}
        labels.append({**label, **parts})
    return labels, {**clock.summary(), **retime}


@dataclass(frozen=True)
class Reference:
    """The reference cell of a timing job: its shape, and the op set and nodes of the space."""

    shape: object
    op_names: tuple
    steps: int


def measure_networks(
    items: list[NetworkItem],
    target: Target,
    device_str: str,
    device: torch.device,
    protocol: TimingProtocol,
    reference: Reference,
    span_s: float = 0.0,
) -> pd.DataFrame:
    """Rows of `label_networks` (rounds spread over at least ``span_s`` seconds) with each
    network's architecture, macro and group, the job's reference timing, what else ran
    meanwhile, and provenance (as the cells' rows have)."""
    labels, clock = quiet_job(lambda: label_networks(items, target, device, protocol, reference, span_s))
    prov = provenance(target, device_str, device)
    measured_at = datetime.now(UTC).isoformat(timespec="seconds")
    rows = []
    for item, label in zip(items, labels, strict=True):
        rows.append(
            {
                "name": item.name,
                "group": item.group,
                "network": item.macro_name,
                "genotype": architecture_text(item.arch),
                **{f"macro_{f}": v for f, v in item.macro.__dict__.items()},
                **label,
                **clock,
                **prov,
                "measured_at": measured_at,
            }
        )
    return pd.DataFrame(rows)
