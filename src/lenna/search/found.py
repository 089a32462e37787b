"""The found networks of a sweep, timed together and put beside their predictions.

The networks a predictor's sweep finds (one per lambda and seed) are timed in one job, as the
cells and the network stage's networks are (`lenna.timing.networks.measure_networks`): visits in
rounds spread over the job, so that a slow phase of the device falls on a visit of every network
rather than on every visit of one; re-timing where the visits disagree; calibration by networks
that the network stage labelled, timed beside them (`anchor_items`), else by the job's reference
cell against the cell jobs' median speed. An architecture found by several runs is timed once and
gives each of them the same label.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from lenna.predictors.model import LatencyPredictor
from lenna.space.architectures import architecture_text
from lenna.space.network import Macro
from lenna.space.spaces import parse_architecture
from lenna.timing.network_plan import PARTS, NetworkItem
from lenna.timing.networks import Reference, measure_networks
from lenna.timing.protocol import Target, TimingProtocol

# Networks of the network stage timed beside the found ones (`anchor_items`).
ANCHORS = 6


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


def anchor_items(table: pd.DataFrame, macro: Macro, n: int = ANCHORS) -> tuple[list[NetworkItem], np.ndarray]:
    """Up to ``n`` random networks of the network stage at ``macro``, spread evenly by rank over
    their range of latency, and their labels (``table``: the stage's merged, calibrated rows).

    Timed beside the found networks, they tell how fast networks run in that job against the
    labels the network model was fitted on. The job's reference cell does not always: on a host
    shared with other work, a `config/nb201.yaml` run's found networks were all timed 11-21% slow
    while their job's reference cell ran at its usual speed (docs/networks.md)."""
    fields = dataclasses.asdict(macro)
    at = (table["group"] == "random").to_numpy().copy()
    for key, value in fields.items():
        at &= (table[f"macro_{key}"] == value).to_numpy()
    rows = table[at].sort_values(["latency_ms", "name"])
    if rows.empty:
        return [], np.zeros(0)
    picks = np.unique(np.round(np.linspace(0, len(rows) - 1, min(n, len(rows)))).astype(int))
    rows = rows.iloc[picks]
    items = [
        NetworkItem(f"anchor:{name}", parse_architecture(text), "anchor", macro, "anchor")
        for name, text in zip(rows["name"], rows["genotype"], strict=True)
    ]
    return items, rows["latency_ms"].to_numpy(float)


def anchored_order(n_items: int, n_anchors: int) -> list[int]:
    """The visit order of ``n_items`` found networks (0..n_items-1) and ``n_anchors`` anchors
    (after them): the anchors spread evenly among the found networks, in their own order."""
    slots = [(k + 0.5, k) for k in range(n_items)]
    slots += [((j + 0.5) * n_items / n_anchors, n_items + j) for j in range(n_anchors)]
    return [i for _, i in sorted(slots)]


def measure_found(
    items: list[NetworkItem],
    anchors: list[NetworkItem],
    target: Target,
    device_str: str,
    device,
    protocol: TimingProtocol,
    reference: Reference,
    span_s: float = 0.0,
) -> pd.DataFrame:
    """Time the found networks ``items`` and the ``anchors`` in one job (`measure_networks`, its
    rounds over at least ``span_s`` seconds): rows of ``items`` then ``anchors``, as
    `found_latencies` takes them.

    Each round visits the anchors spread among the found networks (`anchored_order`), not after
    them: a slow spell late in every round would otherwise fall on the anchors alone and move the
    job's speed factor, and with it every found network's label. Its re-timing rounds start half
    a round's spacing apart (``retime_gap_s``; with the shipped 90 s and three rounds, 22.5 s and
    45 s after the last round, within the 60 s budget): re-visited back to back, its few unstable
    networks had all four rounds (under half a second of work) inside the spell that spoiled them."""
    order = anchored_order(len(items), len(anchors))
    every = items + anchors
    visits = [every[i] for i in order]
    spaced = dataclasses.replace(protocol, retime_gap_s=span_s / max(protocol.rounds - 1, 1) / 2)
    rows = measure_networks(visits, target, device_str, device, spaced, reference, span_s)
    return rows.iloc[np.argsort(order)].reset_index(drop=True)


def job_speed(rows: pd.DataFrame, nominal_ms: float | None, anchors: np.ndarray) -> dict:
    """How fast the found networks' job ran against the labels their predictions stand on: the
    median of the anchors' (the last ``len(anchors)`` rows) timings over their labels, else the
    job's reference against the cell jobs' median (``nominal_ms``); 1 without calibration."""
    reference = float(rows["reference_ms"].iloc[0]) / nominal_ms if nominal_ms else 1.0
    out = {"speed_factor": reference, "speed_from": "reference", "reference_speed_factor": reference}
    if not nominal_ms:
        return {**out, "speed_from": "none"}
    if len(anchors):
        tail = rows.iloc[len(rows) - len(anchors) :]
        ok = (tail["status"] == "ok").to_numpy()
        ratios = tail["latency_ms"].to_numpy(float)[ok] / anchors[ok]
        out["anchor_speed_factors"] = [round(float(r), 4) for r in ratios]
        if ok.any():
            out.update(speed_factor=float(np.median(ratios)), speed_from="anchors")
    return out


def found_latencies(
    items: list[NetworkItem],
    rows: pd.DataFrame,
    nominal_ms: float | None,
    predictor: LatencyPredictor,
    target: Target,
    device: str,
    macro: dict,
    anchors: np.ndarray | None = None,
) -> list[dict]:
    """The ``latency.json`` of each network of ``items`` (`found_items`, timed into ``rows``, then
    the `anchor_items` with their labels ``anchors``): its label calibrated by `job_speed`, its
    parts, and the predictor's prediction of the whole network beside the plain sum of its cells
    and parts. A network the device could not hold is an error naming the run that found it."""
    anchors = np.zeros(0) if anchors is None else np.asarray(anchors, float)
    speed_of = job_speed(rows, nominal_ms, anchors)
    speed = speed_of["speed_factor"]
    rows = rows.iloc[: len(rows) - len(anchors)]
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
                **speed_of,
                "status": row.status,
                "uncertainty": float(row.uncertainty),
                "n_visits": int(row.n_visits),
                "networks_in_job": len(rows) + len(anchors),
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
