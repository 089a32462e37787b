"""Device tables: whole-network latencies of NAS-Bench-201 architectures measured elsewhere.

A device table has one row per architecture, named by its benchmark string (``arch``) or its
official index (``index``), or both, and one latency column (ms) per device: the public table of
21 devices (`lenna.space.nb201.PUBLIC_TABLE`), or a user's own device (``latency_ms``). Each
device of a table becomes a target of the workflow whose labels are the latency of the
benchmark's whole network (C=16, N=5, 32x32 RGB): a *network-unit* dataset, one row per
architecture, whose features are those of a cell at the benchmark's first cell shape with the
architecture's one-hot probabilities. A predictor trained on it predicts the whole network.

Architectures whose cell has no path from its input to its output (341 of 15,625) make a
network whose output ignores the image; devices that prune such graphs time them at almost
nothing (pixel3: 0.003 ms), three orders of magnitude off the rest. They are left out of the
datasets, of the scoring and of the transfer sources (and are no sensible result of a search).

The published few-shot protocol (HELP, NeurIPS 2021): a device's N labelled architectures are
drawn with a seed from indices 0..899; a predictor is scored on indices 900..1899 whose latency
on the device lies within its 10th..90th percentile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lenna.io import DataError, read_table
from lenna.space import nb201
from lenna.space.nb201 import Arch, ArchError
from lenna.space.specs import SHAPE_COLUMNS, prob_columns, spec_ids

KEY_COLUMNS = ("index", "arch")
# A table of one device names its column so.
SINGLE_COLUMN = "latency_ms"
# The benchmark network's first cell: the shape at which a network-unit row is described.
NETWORK_SHAPE = nb201.cell_shape(16, 32)
_BATCH_SUFFIX = re.compile(r"_(\d+)$")
# The public table's CPUs (batch 1; the number in their names is the model's).
PUBLIC_CPUS = ("gold_6240", "silver_4114", "silver_4210r")
# The fewest labelled architectures a few-shot fit takes, and scored ones a Spearman's rho needs.
MIN_LABELS = 2
MIN_SCORED = 3


@dataclass(frozen=True)
class Protocol:
    """Where few-shot labels come from and where predictors are scored (official indices)."""

    pool: tuple[int, int] = (0, 900)
    score: tuple[int, int] = (900, 1900)
    percentiles: tuple[float, float] = (10.0, 90.0)

    @classmethod
    def from_config(cls, settings: dict | None) -> Protocol:
        settings = settings or {}
        return cls(**{k: tuple(v) for k, v in settings.items() if k in ("pool", "score", "percentiles")})


def read_device_table(path) -> pd.DataFrame:
    """A device table with both key columns (``index`` and ``arch``, canonical strings), in
    index order, and its latency columns as float64. Errors name the file and the row."""
    path = str(path)
    table = read_table(path)
    if not any(c in table.columns for c in KEY_COLUMNS):
        raise DataError(
            f"{path}: needs a column 'arch' (NAS-Bench-201 strings) or 'index' (official indices)"
        )
    devices = [c for c in table.columns if c not in KEY_COLUMNS]
    if not devices:
        raise DataError(f"{path}: no latency column (one per device, or '{SINGLE_COLUMN}')")
    if table.empty:
        raise DataError(f"{path}: no rows")
    indices = nb201.official_indices()
    strings = {i: a for a, i in indices.items()}
    if "arch" in table.columns:
        canonical = []
        for row, text in enumerate(table["arch"]):
            try:
                canonical.append(str(Arch.parse(str(text))))
            except ArchError as err:
                raise DataError(f"{path}: row {row}: {err}") from None
        from_arch = [indices[a] for a in canonical]
        if "index" in table.columns and (table["index"].to_numpy() != np.array(from_arch)).any():
            row = int(np.argmax(table["index"].to_numpy() != np.array(from_arch)))
            raise DataError(
                f"{path}: row {row}: index {table['index'].iloc[row]} is not that of {canonical[row]} "
                f"({from_arch[row]})"
            )
        table = table.assign(arch=canonical, index=from_arch)
    else:
        bad = ~table["index"].isin(strings)
        if bad.any():
            raise DataError(
                f"{path}: row {int(np.argmax(bad))}: index {table['index'][bad].iloc[0]} is not an "
                f"official NAS-Bench-201 index (0..{len(strings) - 1})"
            )
        table = table.assign(index=table["index"].astype(int), arch=table["index"].map(strings))
    dup = table["index"].duplicated()
    if dup.any():
        raise DataError(f"{path}: architecture {table.loc[dup, 'arch'].iloc[0]} appears twice")
    for column in devices:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(np.float64)
        if not (np.isfinite(values) & (values > 0)).all():
            raise DataError(f"{path}: column {column!r} must hold positive latencies (ms) in every row")
        table[column] = values
    return table[[*KEY_COLUMNS, *devices]].sort_values("index").reset_index(drop=True)


def device_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in KEY_COLUMNS]


def batch_size_of(column: str) -> int:
    """The batch size a public column was timed at: its suffix (``titanxp_32``), else 1 (the
    public CPUs, whose names end in a model number, were timed at batch 1)."""
    match = None if column in PUBLIC_CPUS else _BATCH_SUFFIX.search(column)
    return int(match.group(1)) if match else 1


def connected(arch: str | Arch) -> bool:
    """Whether the cell has a path of ops other than none from its input to its output
    (`Arch.connected`)."""
    return (Arch.parse(arch) if isinstance(arch, str) else arch).connected


def network_dataset(table: pd.DataFrame, column: str, batch_size: int, source: str) -> pd.DataFrame:
    """One network-unit dataset row per connected architecture of a table's device column:
    features at `NETWORK_SHAPE` and ``batch_size``, the one-hot probabilities, ``latency_ms``."""
    archs = [Arch.parse(a) for a in table["arch"]]
    keep = np.array([a.connected for a in archs])
    part = table.loc[keep, [*KEY_COLUMNS, column]].reset_index(drop=True)
    probs = np.stack([a.probs() for a, kept in zip(archs, keep, strict=True) if kept])
    out = pd.DataFrame(probs.reshape(len(part), -1), columns=prob_columns(nb201.OPS, nb201.STEPS))
    for position, c in enumerate(SHAPE_COLUMNS):
        out.insert(position, c, getattr(NETWORK_SHAPE, c))
    out.insert(len(SHAPE_COLUMNS), "batch_size", int(batch_size))
    out["latency_ms"] = part[column].to_numpy(np.float64)
    out["spec_id"] = spec_ids("nb201", nb201.STEPS, NETWORK_SHAPE, probs, "discrete")
    out["label_kind"] = "discrete"
    out["status"] = "ok"
    out["unit"] = "network"
    out["index"] = part["index"].to_numpy()
    out["arch"] = part["arch"].to_numpy()
    out["device_name"] = column
    out["source"] = source
    out["op_set"] = "nb201"
    out["steps"] = nb201.STEPS
    return out


def pool_rows(dataset: pd.DataFrame, n: int, protocol: Protocol) -> np.ndarray:
    """Row positions of the dataset's architectures in the protocol's pool, in index order; an
    error where ``n`` labels cannot come from the pool."""
    lo, hi = protocol.pool
    pool = np.flatnonzero((dataset["index"] >= lo) & (dataset["index"] < hi))
    if not 0 < n <= hi - lo:
        raise ValueError(f"{n} labelled architectures asked; the pool {protocol.pool} holds {hi - lo}")
    return pool[np.argsort(dataset["index"].to_numpy()[pool], kind="stable")]


def sample_pool(dataset: pd.DataFrame, n: int, seed: int, protocol: Protocol) -> np.ndarray:
    """Row positions of ``n`` architectures drawn with ``seed`` from the pool's indices (the
    dataset's rows in index order there, so a seed draws the same architectures on every device).
    An ``n`` of the pool's whole size takes every architecture of it that the dataset holds."""
    pool = pool_rows(dataset, n, protocol)
    if n >= len(pool):  # the whole pool: its architectures left out here (disconnected) are missing
        return np.sort(pool)
    return np.sort(pool[np.random.default_rng(seed).choice(len(pool), size=n, replace=False)])


def score_rows(latency: np.ndarray, index: np.ndarray, protocol: Protocol) -> np.ndarray:
    """Boolean mask of the scored rows: indices in ``protocol.score`` whose latency lies within
    the percentiles of the latencies there."""
    lo, hi = protocol.score
    inside = (index >= lo) & (index < hi)
    if not inside.any():
        raise ValueError(f"no architecture of indices {protocol.score} in the table")
    p_lo, p_hi = np.percentile(latency[inside], protocol.percentiles)
    return inside & (latency >= p_lo) & (latency <= p_hi)


def few_shot_split(
    dataset: pd.DataFrame,
    table: pd.DataFrame,
    column: str,
    n: int,
    seed: int,
    protocol: Protocol,
    what: str = "the device table",
) -> pd.Series:
    """The split of a few-shot target's dataset rows: ``train`` (its n labels, also the
    validation part: a device of which only n labels are known has no other), ``test`` (the
    scored rows of the published protocol, from the whole table) and ``unused``. A table too
    small for either part (a measurement kit's without its check architectures) is a `DataError`
    that starts with ``what`` (the file and its config key)."""
    index = dataset["index"]
    (lo, hi), (s_lo, s_hi) = protocol.pool, protocol.score
    in_pool = int(((index >= lo) & (index < hi)).sum())
    if in_pool < MIN_LABELS:
        raise DataError(
            f"{what}: {in_pool} connected architecture(s) of indices {lo}..{hi - 1}, where few-shot "
            f"labels come from; a few-shot predictor needs at least {MIN_LABELS}"
        )
    if not ((index >= s_lo) & (index < s_hi)).any():
        raise DataError(
            f"{what}: no connected architecture of indices {s_lo}..{s_hi - 1}: nothing to score the "
            "few-shot predictors on (a measurement kit's check architectures, kit.check, are there)"
        )
    split = pd.Series("unused", index=dataset.index)
    train = sample_pool(dataset, n, seed, protocol)
    scored = score_rows(table[column].to_numpy(np.float64), table["index"].to_numpy(), protocol)
    split[dataset["index"].isin(table.loc[scored, "index"])] = "test"
    split.iloc[train] = "train"
    if (split == "test").sum() < MIN_SCORED:
        raise DataError(
            f"{what}: {int((split == 'test').sum())} architecture(s) to score on (indices {s_lo}..{s_hi - 1} "
            f"within the latency percentiles {protocol.percentiles}); a score needs at least {MIN_SCORED}"
        )
    return split


def source_columns(table: pd.DataFrame, sources: list[str] | None = None) -> pd.DataFrame:
    """The keys and the ``sources`` device columns (default: all) of a table that does not hold
    the target: the sources of a device measured alone (a kit's table) in another table."""
    available = device_columns(table)
    missing = [s for s in sources or [] if s not in available]
    if missing:
        raise ValueError(f"source device(s) {missing} not in the table; it has {available}")
    return table[[*KEY_COLUMNS, *(sources or available)]]


# -- our timings against the public table (the public check, rule public_rank) -----------------
def device_kind(column: str) -> str:
    """cpu, gpu or phone, from the public column's name (see the table's README)."""
    if column in PUBLIC_CPUS:
        return "cpu"
    if column in ("pixel3", "samsung_a50", "samsung_s7", "essential_ph_1"):
        return "phone"
    return "gpu"


def sample_public(table: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` architectures of the public table drawn without replacement, in index order."""
    if not 0 < n <= len(table):
        raise ValueError(f"n_archs is {n}; the public table has {len(table)} architectures")
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(table), size=n, replace=False))
    return table.iloc[rows][list(KEY_COLUMNS)].reset_index(drop=True)


def rank_agreement(measured: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho of our latencies at each batch size against every public column, over the
    architectures timed here; sorted by batch size, device kind and rho."""
    rows = []
    public = table.set_index("index")
    for batch, part in measured.groupby("batch_size"):
        ours = part.set_index("index")["latency_ms"]
        theirs = public.loc[ours.index]
        for column in device_columns(table):
            valid = theirs[column].notna() & ours.notna()
            pair = pd.DataFrame({"ours": ours[valid], "theirs": theirs.loc[valid, column]})
            rho = pair["ours"].corr(pair["theirs"], method="spearman") if valid.sum() > 2 else np.nan
            rows.append(
                {
                    "batch_size": int(batch),
                    "device": column,
                    "kind": device_kind(column),
                    "n_archs": int(valid.sum()),
                    "spearman_rho": float(rho),
                }
            )
    out = pd.DataFrame(rows)
    order = {"cpu": 0, "gpu": 1, "phone": 2}
    out["_kind"] = out["kind"].map(order)
    out = out.sort_values(["batch_size", "_kind", "spearman_rho"], ascending=[True, True, False])
    return out.drop(columns="_kind").reset_index(drop=True)
