"""Does our timing agree with the world? NAS-Bench-201 networks timed here, ranked against the
public latencies of the same networks on 21 devices (`lenna.space.nb201.PUBLIC_TABLE`).

A timer that is right ranks architectures much as other devices of its kind do: Spearman's rho
between our latencies and a public column says how alike the two rankings are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from lenna.space.build import build_network
from lenna.space.nb201 import Arch
from lenna.space.network import Macro
from lenna.tables import KEY_COLUMNS, PUBLIC_CPUS, device_columns
from lenna.timing.clock import timed_ms
from lenna.timing.devices import as_input, place
from lenna.timing.protocol import Target

# The benchmark's network: C=16, N=5 cells per stage, 32x32 RGB images, 10 classes (CIFAR-10).
BENCHMARK_MACRO = Macro(
    init_channels=16, layers=5, input_size=32, input_channels=3, num_classes=10, stem_multiplier=1
)


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


def measure_public(
    archs: pd.DataFrame, batch_sizes, target: Target, device: torch.device, protocol, log=lambda s: None
) -> pd.DataFrame:
    """The benchmark network of every architecture timed at every batch size (eval mode, the
    target's dtype and memory format, `timed_ms`): one row per (index, batch_size)."""
    rows = []
    for k, (index, text) in enumerate(zip(archs["index"], archs["arch"], strict=True)):
        net = place(target, build_network(Arch.parse(text), BENCHMARK_MACRO), device)
        for batch in batch_sizes:
            size = (
                batch,
                BENCHMARK_MACRO.input_channels,
                BENCHMARK_MACRO.input_size,
                BENCHMARK_MACRO.input_size,
            )
            noise = torch.randn(*size, generator=torch.Generator().manual_seed(int(index)))
            x = as_input(target, noise, device)
            rows.append(
                {
                    "index": int(index),
                    "arch": text,
                    "batch_size": batch,
                    "latency_ms": timed_ms(net, (x,), protocol),
                }
            )
        if k % 50 == 49:
            log(f"{k + 1} of {len(archs)} architectures timed")
    return pd.DataFrame(rows)


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
