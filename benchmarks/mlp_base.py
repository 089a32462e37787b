"""Does the MLP's linear base (`predictors.mlp.base`) predict the networks a search finds?

Refits the MLP of one target on a finished run's own datasets once per base (`base: shape`,
`base: ridge` and `base: none`, LENNA's plain MLP; `--bases` picks) and seed (`--seeds`; default
the config's), the other hyper-parameters from the config; fits each one's network model on the
run's timed networks as the rule `network_model` does; and scores each on the held-out cells, the
held-out cells under 1 ms, the networks no network model saw, and the sweep's found networks
(measured by `measure_final`, in `results/pareto/{target}/pareto.csv`).
Nothing is timed: it reads labels the run measured.

Usage: python benchmarks/mlp_base.py [results] [--config config/config.yaml] [--target cpu]
       [--bases shape ridge none] [--seeds 0 1 2]
Writes benchmarks/out/mlp_base-{target}.json and prints the same numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lenna.predictors.composition import fit_network_model, network_metrics, score_networks
from lenna.predictors.fitting import MLP_BASES
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.mlp import fit_mlp_choosing_transform
from lenna.predictors.model import load_predictor
from lenna.space.network import Macro
from lenna.space.spaces import load_architecture


def found_networks(results: Path, target: str) -> list[tuple[object, float]]:
    """(architecture, measured ms) of every found network of the MLP's sweep, at macro.final."""
    pareto = pd.read_csv(results / "pareto" / target / "pareto.csv")
    rows = pareto[pareto["model"] == "mlp"]
    runs = results / "search" / target / "mlp"
    return [
        (
            load_architecture(runs / f"lambda-{r['lambda']:g}" / f"seed-{int(r['seed'])}" / "genotype.json"),
            r["latency_ms"],
        )
        for _, r in rows.iterrows()
    ]


def score(directory: str, data: dict, networks: pd.DataFrame, found, macro: Macro, batch: int) -> dict:
    """Scores of the predictor saved in ``directory``, its network model fitted, written beside it
    and loaded with it as the rule `network_model` and `load_predictor` do."""
    test = data["test"]
    cheap = test[test["latency_ms"] < 1.0]
    model, inputs = fit_network_model(networks, load_predictor(directory))
    model.save(Path(directory) / "network.json")
    predictor = load_predictor(directory)
    unseen = network_metrics(score_networks(networks, model, inputs), model)
    errors = np.abs([predictor.predict_network(arch, macro, batch) / ms - 1 for arch, ms in found])
    return {
        "cells": latency_metrics(test["latency_ms"], predictor.predict(test)),
        "cells_under_1ms": latency_metrics(cheap["latency_ms"], predictor.predict(cheap))
        if len(cheap)
        else None,
        "network_model": model.chosen,
        "unseen_networks_within_10pct": unseen["within_10pct"],
        "found_networks": {
            "n": len(errors),
            "within_10pct": float((errors <= 0.1).mean()),
            "max_ape": float(errors.max()),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", type=Path)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--bases", nargs="+", default=list(MLP_BASES), choices=MLP_BASES)
    parser.add_argument("--seeds", nargs="+", type=int, help="the MLP's seeds (default: the config's)")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    hyper = dict(config["predictors"]["mlp"])
    transforms = hyper.pop("transforms")
    hyper.pop("base", None)
    datasets = args.results / "datasets" / args.target
    data = {s: pd.read_parquet(datasets / f"{s}.parquet") for s in ("train", "val", "test")}
    normaliser = json.loads((datasets / "normaliser.json").read_text())
    networks = pd.read_parquet(args.results / "networks" / args.target / "networks.parquet")
    found = found_networks(args.results, args.target)
    common = {k: config["macro"][k] for k in ("input_channels", "num_classes", "stem_multiplier")}
    macro = Macro(**config["macro"]["final"], **common)
    batch = config["targets"][args.target]["batch_size"]
    out = {}
    for base in args.bases:
        for seed in args.seeds if args.seeds is not None else [hyper["seed"]]:
            fitted, _ = fit_mlp_choosing_transform(
                data["train"], data["val"], normaliser, transforms, base=base, **(hyper | {"seed": seed})
            )
            with tempfile.TemporaryDirectory() as tmp:
                fitted.save(tmp)  # as the rule writes it: the network model needs its weights' hash
                key = base if args.seeds is None else f"{base} seed {seed}"
                out[key] = {"transform": fitted.description["transform"]}
                out[key] |= score(tmp, data, networks, found, macro, batch)
            print(key, json.dumps(out[key], default=float))
    path = Path("benchmarks/out") / f"mlp_base-{args.target}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
