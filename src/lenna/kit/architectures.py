"""Which NAS-Bench-201 architectures a measurement kit holds.

``label`` architectures: ``n`` of the few-shot pool (official indices 0..899 by default), chosen
as the few-shot predictor wants its labels (`lenna.predictors.transfer.choose_labels`:
``doptimal`` and ``diverse`` spread them over the ways the table's devices price architectures,
``random`` draws them).
``check`` architectures: drawn at random from the connected architectures of the scoring range
(900..1899), so that the user's table also scores the predictor it yields, by the protocol the
public devices are scored by.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lenna.predictors.transfer import choose_labels, fit_source_model
from lenna.tables import KEY_COLUMNS, Protocol, connected, device_columns, network_dataset

ROLES = ("label", "check")


def label_architectures(
    table: pd.DataFrame,
    n: int,
    choice: str,
    seed: int,
    batch_size: int,
    protocol: Protocol,
    source_settings: dict | None = None,
    log=lambda s: None,
) -> pd.DataFrame:
    """``index``, ``arch`` of the ``n`` pool architectures a new device should time, chosen by
    ``choice`` with a source model over every device of ``table`` (a ``random`` choice needs none)."""
    pool = network_dataset(table, device_columns(table)[0], batch_size, source="kit")
    source = None
    if choice != "random":
        devices = table[[*KEY_COLUMNS, *device_columns(table)]]
        source = fit_source_model(devices, batch_size, source_settings, log)
    rows = choose_labels(source, pool, n, choice, seed, protocol)
    return pool.iloc[rows][list(KEY_COLUMNS)].reset_index(drop=True)


def check_architectures(
    table: pd.DataFrame, check: int, seed: int, protocol: Protocol, exclude=()
) -> pd.DataFrame:
    """``index``, ``arch`` of ``check`` connected architectures of the scoring range but those of
    indices ``exclude`` (the labels, where the ranges overlap), drawn with ``seed``, in index order."""
    lo, hi = protocol.score
    inside = table[(table["index"] >= lo) & (table["index"] < hi) & ~table["index"].isin(exclude)]
    inside = inside[[connected(a) for a in inside["arch"]]].sort_values("index")
    if not 0 < check <= len(inside):
        raise ValueError(
            f"{check} check architectures asked; the scoring range {protocol.score} holds "
            f"{len(inside)} connected ones"
        )
    rows = np.sort(np.random.default_rng(seed).choice(len(inside), size=check, replace=False))
    return inside.iloc[rows][list(KEY_COLUMNS)].reset_index(drop=True)


def kit_architectures(
    table: pd.DataFrame,
    n: int,
    choice: str,
    check: int,
    seed: int,
    batch_size: int,
    protocol: Protocol,
    source_settings: dict | None = None,
    log=lambda s: None,
) -> pd.DataFrame:
    """The kit's architectures: ``index``, ``arch`` and ``role`` (label or check), the labels
    first, each part in index order."""
    labels = label_architectures(table, n, choice, seed, batch_size, protocol, source_settings, log)
    checks = check_architectures(table, check, seed, protocol, exclude=labels["index"])
    log(f"{len(labels)} label architectures ({choice}), {len(checks)} check architectures")
    return pd.concat([labels.assign(role="label"), checks.assign(role="check")], ignore_index=True)
