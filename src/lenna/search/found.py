"""The found networks of a sweep, timed together and put beside their predictions.

The networks a predictor's sweep finds (one per lambda and seed) are timed in one job, as the
cells and the network stage's networks are (`lenna.timing.networks.measure_networks`): visits in
rounds spread over the job, so that a slow phase of the device falls on a visit of every network
rather than on every visit of one; re-timing where the visits disagree; the job's reference cell,
calibrated to the cell jobs' median speed. An architecture found by several runs is timed once
and gives each of them the same label.
"""

from __future__ import annotations

import pandas as pd

from lenna.predictors.model import LatencyPredictor
from lenna.space.architectures import architecture_text
from lenna.space.network import Macro
from lenna.timing.devices import Target
from lenna.timing.networks import PARTS, NetworkItem


def found_items(archs: dict[str, object], macro: Macro) -> tuple[list[NetworkItem], dict[str, int]]:
    """One `NetworkItem` per distinct architecture of ``archs`` (run name -> architecture), named
    by the first run that found it, and the index of each run's item."""
    items: list[NetworkItem] = []
    index: dict[str, int] = {}
    item_of = {}
    for run, arch in archs.items():
        text = architecture_text(arch)
        if text not in index:
            index[text] = len(items)
            items.append(NetworkItem(str(run), arch, "final", macro, "found"))
        item_of[run] = index[text]
    return items, item_of


def found_latencies(
    items: list[NetworkItem],
    rows: pd.DataFrame,
    nominal_ms: float | None,
    predictor: LatencyPredictor,
    target: Target,
    device: str,
    macro: dict,
) -> list[dict]:
    """The ``latency.json`` of each network of ``items`` (`found_items`, timed into ``rows``): its
    label calibrated to the cell jobs' median speed (the job's reference against
    ``nominal_ms``; not calibrated without one), its parts, and the predictor's
    prediction of the whole network beside the plain sum of its cells and parts. A network the
    device could not hold is an error naming the run that found it."""
    speed = float(rows["reference_ms"].iloc[0]) / nominal_ms if nominal_ms else 1.0
    network = predictor.network_model()
    at = Macro(**macro)
    parts_ms = sum(network.parts_ms(at).values())  # the same for every network of the sweep
    out = []
    for item, row in zip(items, rows.itertuples(index=False), strict=True):
        if row.status == "failed":
            raise RuntimeError(f"{item.name}: the found network could not be timed: {row.error}")
        arch = item.arch
        cells = predictor.predict_cells(arch, at, target.batch_size)
        out.append(
            {
                "latency_ms": float(row.latency_ms) / speed,
                "latency_ms_raw": float(row.latency_ms),
                "speed_factor": speed,
                "status": row.status,
                "uncertainty": float(row.uncertainty),
                "n_visits": int(row.n_visits),
                "networks_in_job": len(rows),
                "predicted_latency_ms": predictor.predict_network(arch, at, target.batch_size),
                "predicted_sum_ms": cells + parts_ms,
                "predicted_cells_ms": cells,
                **{f"{part}_ms": float(getattr(row, f"{part}_ms")) / speed for part in PARTS},
                "network_model": network.name_at(at),
                "device": device,
                "batch_size": target.batch_size,
                "macro": macro,
            }
        )
    return out
