"""The label budget: held-out accuracy against timing seconds, for random and adaptive sampling.

Reads a finished run (its dataset splits, its timing shards and the config it ran) and replays
the sampling on the specs it timed: a random initial share of the training split, then rounds that
each add a batch chosen from the rest of it by every method of `lenna.adaptive` (the same initial
specs for all); after every round the MLP (the config's settings, transform chosen on the
validation split) is fitted on the specs chosen so far and scored on the test split. The
validation and test splits stay the run's (random) ones, so every point is scored on the same
specs. Timing seconds are each spec's share of its job's wall time (`lenna.adaptive.spec_cost_s`).

With ``--protocols``, the same replay also runs with the discrete labels of the training and
validation specs as a cheaper protocol would have given them: ``RxK`` keeps the first R visits
(rounds) of K timed passes each of every discrete label's stored passes (``replicates_ms``, in
visit order) and takes the config's label statistic of them, calibrated as before; its timing
seconds shrink with the passes (warm-up included), the test specs' too. Expected labels and the
test split's labels stay as timed, so every protocol is scored against the same labels.

    .venv/bin/python benchmarks/label_budget.py RUN_DIR --configfile config/config.yaml \
        [--target cpu] [--initial 0.15] [--batch 0.1] [--budget 0.55] [--methods random nearest_error] \
        [--protocols full 2x7 1x7 1x3]

Output: one row per method and round (printed, and written to
``benchmarks/out/label_budget-<run>.csv``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from lenna.adaptive import METHODS, choose, spec_cost_s
from lenna.io import read_metadata, read_parquet
from lenna.predictors.metrics import latency_metrics
from lenna.predictors.mlp import fit_mlp_choosing_transform

OUT = Path(__file__).resolve().parent / "out"


def costs(run: Path, target: str) -> pd.Series:
    """spec_id -> timing seconds of every timed spec of the run."""
    shards, elapsed = [], {}
    for path in sorted((run / "results" / "latency" / target).glob("shard-*.parquet")):
        table = read_parquet(path, ["spec_id", "n_timed", "latency_ms"])
        shards.append(table.assign(shard=path.stem))
        elapsed[path.stem] = float(read_metadata(path)["elapsed_s"])
    latency = pd.concat(shards, ignore_index=True).drop_duplicates("spec_id")
    return spec_cost_s(latency, elapsed)


def with_protocol(split: pd.DataFrame, cost: pd.Series, protocol: str, measurement: dict):
    """``split`` with its discrete labels from the first R visits x K passes (``protocol`` "RxK",
    or "full": as timed) and ``cost`` scaled to the passes kept."""
    if protocol == "full":
        return split, cost
    rounds, repeats = (int(v) for v in protocol.split("x"))
    full, warmup = measurement["repeats"], measurement["warmup"]
    if repeats > full or rounds < 1:
        raise SystemExit(f"--protocols {protocol}: at most {full} passes per visit, at least one visit")
    split, cost = split.copy(), cost.copy()
    for i in np.flatnonzero(split["label_kind"].to_numpy() == "discrete"):
        passes = np.asarray(split["replicates_ms"].iat[i]).reshape(-1, full)
        kept = passes[:rounds, :repeats]
        label = np.quantile(kept, measurement["label_quantile"]) / split["speed_factor"].iat[i]
        split.iloc[i, split.columns.get_loc("latency_ms")] = label
        spec = split["spec_id"].iat[i]
        cost[spec] *= kept.shape[0] * (warmup + repeats) / (len(passes) * (warmup + full))
    return split, cost


def replay(splits: dict, normaliser: dict, mlp: dict, cost: pd.Series, method: str, args) -> list[dict]:
    train, val, test = splits["train"], splits["val"], splits["test"]
    rng = np.random.default_rng(args.seed)
    chosen = np.sort(rng.choice(len(train), int(round(args.initial * len(train))), replace=False))
    fixed_s = float(cost.reindex(val["spec_id"]).sum() + cost.reindex(test["spec_id"]).sum())
    rows = []
    for round_ in range(100):
        part = train.iloc[chosen]
        start = time.perf_counter()
        predictor, _ = fit_mlp_choosing_transform(part, val, normaliser, **mlp)
        scores = latency_metrics(test["latency_ms"], predictor.predict(test))
        train_s = float(cost.reindex(part["spec_id"]).sum())
        rows.append(
            {
                "protocol": args.protocol,
                "method": method,
                "round": round_,
                "n_train": len(part),
                "train_timing_s": round(train_s, 1),
                "timing_s": round(train_s + fixed_s, 1),
                "within_10pct": scores["within_10pct"],
                "median_ape": scores["median_ape"],
                "spearman": scores["spearman"],
                "fit_s": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        if len(part) >= args.budget * len(train) - 1e-9:
            return rows
        rest = np.setdiff1d(np.arange(len(train)), chosen)
        n = min(int(round(args.batch * len(train))), len(rest))
        picked = choose(method, part, val, train.iloc[rest], normaliser, mlp, n, args.seed + round_ + 1)
        chosen = np.sort(np.concatenate([chosen, rest[picked]]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--configfile", type=Path, required=True)
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--initial", type=float, default=0.15)
    parser.add_argument("--batch", type=float, default=0.1)
    parser.add_argument("--budget", type=float, default=0.55)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--protocols", nargs="+", default=["full"], help="full, or RxK: R visits of K passes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = yaml.safe_load(args.configfile.read_text())
    data = args.run / "results" / "datasets" / args.target
    normaliser = json.loads((data / "normaliser.json").read_text())
    columns = [
        "spec_id",
        "latency_ms",
        "label_kind",
        "replicates_ms",
        "speed_factor",
        *normaliser["features"],
    ]
    splits = {name: read_parquet(data / f"{name}.parquet", columns) for name in ("train", "val", "test")}
    cost = costs(args.run, args.target)
    train_s = cost.reindex(splits["train"]["spec_id"]).sum()
    print(
        f"{len(splits['train'])} training specs ({train_s:.0f} s of timing), "
        f"{len(splits['val'])} validation, {len(splits['test'])} test; all {cost.sum():.0f} s"
    )
    rows = []
    for protocol in args.protocols:
        args.protocol = protocol
        relabelled, protocol_cost = dict(splits), cost
        for name in ("train", "val", "test"):
            split, protocol_cost = with_protocol(splits[name], protocol_cost, protocol, config["measurement"])
            if name != "test":  # the test specs' seconds shrink too, their labels stay as timed
                relabelled[name] = split
        for method in args.methods:
            rows += replay(
                relabelled, normaliser, dict(config["predictors"]["mlp"]), protocol_cost, method, args
            )
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    OUT.mkdir(exist_ok=True)
    table.to_csv(OUT / f"label_budget-{args.run.name}.csv", index=False)


if __name__ == "__main__":
    main()
