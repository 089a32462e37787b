"""Which few-shot blend, and which labels? Leave-one-device-out and family splits on a device table.

For every split (each device held out alone, and each family held out whole: the phones, the
CPUs, the GPUs at one batch size, its sources the other families only) a source model is fitted
once on the sources (`lenna.predictors.transfer.fit_source_model`, cached under ``--cache``);
then every blend of `transfer.BLENDS` is fitted on n labels of the held-out device, chosen at
random (HELP's draw), ``diverse`` or ``doptimal`` (`choose_labels`), for each n and seed, and
scored as the pipeline scores (HELP's protocol: indices 900..1899 within the device's
10th..90th percentile). Nothing is timed.

``--source-seeds 0 1 2`` (the pipeline's default of three members) fits one source MLP per seed
(each cached alone) and averages their outputs (`transfer.merge_source_models`); ``--source-seeds
0`` is the single MLP of the pipeline until 2026-12-06.

Usage: python benchmarks/few_shot_methods.py [--table PATH] [--n 10 20 50 100] [--seeds 0 1 2 3 4]
           [--cache benchmarks/out/few_shot_sources] [--jobs 2] [--only device|family]
           [--source-seeds 0 1 2] [--out benchmarks/out/few_shot_methods.csv]
Writes every score to ``--out`` and prints the means per split, blend, choice and n, with the
worst device.
"""

from __future__ import annotations

import argparse
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lenna.predictors.metrics import latency_metrics
from lenna.predictors.transfer import (
    BLENDS,
    CHOICES,
    FAMILIES,
    choose_labels,
    family_devices,
    fit_source_model,
    held_out_data,
    merge_source_models,
    source_table,
)
from lenna.space import nb201
from lenna.tables import KEY_COLUMNS, Protocol, batch_size_of, device_columns


def splits(table: pd.DataFrame) -> list[tuple[str, list[str], list[str]]]:
    """(split name, held-out devices, source devices): each device alone, then each family."""
    devices = device_columns(table)
    out = [("device", [d], [s for s in devices if s != d]) for d in devices]
    for family in FAMILIES:
        held = family_devices(table, family)
        out.append((f"family:{family}", held, [s for s in devices if s not in held]))
    return out


def source_for(
    table: pd.DataFrame, held: list[str], sources: list[str], batch: int, cache: Path, seed: int = 0
):
    key = cache / f"{'+'.join(held)}-b{batch}{f'-s{seed}' if seed else ''}.pkl"
    if key.exists():
        return pickle.loads(key.read_bytes())
    torch.set_num_threads(1)
    model = fit_source_model(source_table(table, held[0], sources), batch, {"seed": seed, "members": 1})
    key.write_bytes(pickle.dumps(model))
    return model


def score_split(args) -> list[dict]:
    table, split, held, sources, n_labels, seeds, cache, source_seeds = args
    protocol, rows = Protocol(), []
    for device in held:
        models = [source_for(table, held, sources, batch_size_of(device), cache, s) for s in source_seeds]
        source = merge_source_models(models)
        data, test = held_out_data(table, device, protocol)
        out_test = source.outputs(test[source.normaliser["features"]].to_numpy(np.float64))
        out_all = source.outputs(data[source.normaliser["features"]].to_numpy(np.float64))
        for n in n_labels:
            for seed in seeds:
                for choice in CHOICES:
                    train = choose_labels(source, data, n, choice, seed, protocol)
                    y = np.log(data["latency_ms"].to_numpy(np.float64)[train])
                    for blend, fit in BLENDS.items():
                        coef, intercept, _ = fit(out_all[train], y)
                        scores = latency_metrics(test["latency_ms"], np.exp(out_test @ coef + intercept))
                        rows.append(
                            {
                                "split": split,
                                "device": device,
                                "blend": blend,
                                "choice": choice,
                                "n_labels": n,
                                "seed": seed,
                                "spearman": scores["spearman"],
                                "within_10pct": scores["within_10pct"],
                            }
                        )
    return rows


def report(scores: pd.DataFrame) -> pd.DataFrame:
    """Per split kind (device / family), blend, choice, n: mean and worst device's mean rho, and
    the mean share within +-10%."""
    scores = scores.assign(kind=scores["split"].str.split(":").str[0])
    per_device = scores.groupby(["kind", "blend", "choice", "n_labels", "device"], as_index=False)[
        ["spearman", "within_10pct"]
    ].mean()
    return (
        per_device.groupby(["kind", "blend", "choice", "n_labels"])
        .agg(
            rho=("spearman", "mean"),
            worst_rho=("spearman", "min"),
            within_10pct=("within_10pct", "mean"),
        )
        .round(4)
        .reset_index()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(nb201.PUBLIC_TABLE))
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20, 50, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--cache", default="benchmarks/out/few_shot_sources")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--only", choices=["device", "family"], default=None)
    parser.add_argument("--source-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="benchmarks/out/few_shot_methods.csv")
    args = parser.parse_args()
    from lenna.tables import read_device_table

    table = read_device_table(args.table)
    table = table[[*KEY_COLUMNS, *device_columns(table)]]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    work = [
        (table, split, held, sources, args.n, args.seeds, cache, args.source_seeds)
        for split, held, sources in splits(table)
        if args.only is None or split.startswith(args.only)
    ]
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = [row for part in pool.map(score_split, work) for row in part]
    scores = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    scores.to_csv(args.out, index=False)
    with pd.option_context("display.max_rows", 500, "display.width", 160):
        print(report(scores).to_string(index=False))


if __name__ == "__main__":
    main()
