"""Refit a finished run's network model with this checkout's code, nothing timed.

Reads a run directory's timed networks (``results/networks/{target}/networks.parquet``), its
predictor (``results/predictors/{target}/{model}``) and, where the run went through the searches,
the found networks' timings; fits the network model as the ``network_model`` rule would today
(`lenna.predictors.composition.fit_network_model`) and prints, beside what the run itself stored:

- which macros got a calibration of their own, with both cross-validation scores, and whether
  macros without networks of their own borrow them (lending);
- the networks no model was fitted on (test split, held-out macro, published architectures)
  within ±10% and their median error;
- the found networks of the sweeps (each run's ``final/latency.json`` and ``genotype.json``),
  predicted at the macro they were timed at.

So a change to the network model can be judged on the labels of earlier runs, quiet or under
load, without timing anything again. ``--drop-macro NAME`` (repeatable; a macro as
``C{channels}-L{layers}-S{pixels}``, e.g. ``C16-L2-S32``, the search and final macros written the
same way) leaves that macro's random networks out before the fit, as if the run had not timed
them: what a fitting macro adds.

Usage: python benchmarks/refit_network_model.py RUN_DIR [RUN_DIR ...] [--target cpu] [--model mlp]
       [--drop-macro NAME ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from lenna.predictors.composition import SCORED, fit_network_model, score_networks
from lenna.predictors.model import load_predictor
from lenna.space.network import Macro
from lenna.space.spaces import load_architecture


def within(measured: np.ndarray, predicted: np.ndarray) -> str:
    error = np.abs(np.asarray(predicted, float) / np.asarray(measured, float) - 1)
    return f"{(error <= 0.1).mean():.0%} of {len(error)} (median error {np.median(error):.1%})"


def without_macros(table: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """``table`` without the random networks of the fitting macros ``names``."""
    name = "C" + table["macro_init_channels"].astype(str) + "-L" + table["macro_layers"].astype(str)
    name = name + "-S" + table["macro_input_size"].astype(str)
    unknown = sorted(set(names) - set(name))
    if unknown:
        raise SystemExit(f"--drop-macro {unknown}: no such macro in the table ({sorted(set(name))})")
    return table[~(name.isin(names) & (table["group"] == "random"))].reset_index(drop=True)


def refit(run: Path, target: str, model: str, drop: list[str]) -> None:
    predictor = load_predictor(run / "results" / "predictors" / target / model)
    table = pd.read_parquet(run / "results" / "networks" / target / "networks.parquet")
    stored = pd.read_parquet(run / "results" / "networks" / target / model / "predictions.parquet")
    if drop:
        table, stored = without_macros(table, drop), without_macros(stored, drop)
    fitted, inputs = fit_network_model(table, predictor, run)
    scored = score_networks(table, fitted, inputs)
    print(f"== {run}: {fitted.name}")
    for name, entry in fitted.description["macros"].items():
        own, pooled = entry["selection"]["own"], entry["selection"]["pooled"]
        print(
            f"   {name}: own ({entry['form']}) {own['median_ape']:.1%} against pooled "
            f"{pooled['median_ape']:.1%} "
            f"median error over {own['n']} networks -> {'used' if entry['used'] else 'not used'}"
        )
    lending = fitted.description["lending"]
    if lending["selection"]:
        borrowed, pooled = lending["selection"]["borrowed"], lending["selection"]["pooled"]
        print(
            f"   lending ({', '.join('<-'.join(p) for p in lending['pairs'])}): borrowed "
            f"{borrowed['median_ape']:.1%} against pooled {pooled['median_ape']:.1%} median error "
            f"-> {'used' if lending['used'] else 'not used'}"
        )
    else:
        print("   lending: no two fitting macros of the same cells -> lent")
    held, before = scored[scored["split"].isin(SCORED)], stored[stored["split"].isin(SCORED)]
    print(f"   unseen networks: {within(held['latency_ms'], held['predicted_ms'])}")
    print(f"     as the run stored them: {within(before['latency_ms'], before['predicted_ms'])}")
    for split in SCORED:
        now, then = held[held["split"] == split], before[before["split"] == split]
        if len(now):
            print(
                f"     {split}: {within(now['latency_ms'], now['predicted_ms'])}, stored "
                f"{within(then['latency_ms'], then['predicted_ms'])}"
            )
    timed = sorted((run / "results" / "search" / target / model).glob("lambda-*/seed-*/final/latency.json"))
    if not timed:
        return
    batch = int(fitted.description["batch_size"])
    measured, now, stored = [], [], []
    for path in timed:
        found = json.loads(path.read_text())
        macro = Macro(**found["macro"])
        arch = load_architecture(path.parent.parent / "genotype.json")
        cells = predictor.predict_cells(arch, macro, batch)
        measured.append(found["latency_ms"])
        now.append(fitted.predict(cells, macro, batch))
        stored.append(found["predicted_latency_ms"])
    print(f"   found networks: {within(measured, now)}")
    print(f"     as the run stored them: {within(measured, stored)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--drop-macro", action="append", default=[], metavar="NAME")
    args = parser.parse_args()
    for run in args.runs:
        refit(run, args.target, args.model, args.drop_macro)


if __name__ == "__main__":
    main()
