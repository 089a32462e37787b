"""The pipeline's labels and predictors with interference beside the whole run.

Runs ``snakemake`` on a config up to every measured target's predictor comparison (sampling,
timing, merge, split, the five predictors, the network stage) in a directory of its own,
with one of the load test's hogs (`load_test.HOGS`) beside it for the whole run:

- ``none``: nothing else (the baseline);
- ``cpu``, ``memory``: one spinning / array-copying process per core, all the time;
- ``burst``: one process per core writing, reading and checksumming files and multiplying
  matrices for ``--on`` seconds, then ``--off`` seconds quiet, again and again (a user's editor,
  git, a compiler and a notebook beside a long run).

With ``--through-search`` it runs on through the searches, the final trainings and the timing of
the found networks (the Pareto table), and also prints how many found networks the network model
and the plain sum predict within ±10% of their measured latency.

Prints, per target, the label quality of the dataset summary and every predictor's held-out
figures (within ±10%, Spearman, RMSE; whole networks within ±10% by the network model and by the
plain sum), and the wall time of the run, of its timing jobs (the shards' ``elapsed_s``) and of
its network timing job.

Usage: python benchmarks/pipeline_under_load.py --load burst --directory /tmp/busy
       [--configfile config/config.yaml] [--on 30] [--off 60] [--tag NAME] [--through-search]
Writes benchmarks/out/pipeline_under_load-{load}{-tag}.json. Run it with nothing else busy beside
it: the hog is the only interference it means to measure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import yaml
from load_test import HOGS, start_hogs

from lenna.io import read_metadata
from lenna.search.pareto import prediction_accuracy

ROOT = Path(__file__).resolve().parents[1]


def hog_loop(load: str, on: float, off: float, stop: threading.Event) -> None:
    """Keep ``load`` running beside the pipeline until ``stop``: continuously, or in bursts."""
    while not stop.is_set():
        seconds = on if load == "burst" else 60.0
        procs = start_hogs(load, seconds)
        for p in procs:
            p.join()
        if load == "burst":
            stop.wait(off)


def found_figures(pareto: pd.DataFrame) -> dict | None:
    """The found networks' measured latency against the network model's and the plain sum's
    (`lenna.search.pareto.prediction_accuracy`, over every predictor's sweep), and the worst
    error of the network model; None where nothing was predicted (a device-table target)."""
    accuracy = prediction_accuracy(pareto)
    if accuracy is None:
        return None
    errors = (pareto["predicted_latency_ms"] / pareto["latency_ms"] - 1).abs()
    return {**accuracy, "worst_ape": float(errors.max())}


def figures(directory: Path, target: str) -> dict:
    summary = json.loads((directory / f"results/datasets/{target}/summary.json").read_text())
    comparison = pd.read_csv(directory / f"results/predictors/{target}/comparison.csv")
    shards = sorted((directory / f"results/latency/{target}").glob("shard-*.parquet"))
    elapsed = sum(float(read_metadata(s)["elapsed_s"]) for s in shards)
    columns = [
        "model",
        "within_10pct",
        "spearman",
        "rmse_ms",
        "network_within_10pct",
        "network_sum_within_10pct",
    ]
    networks = directory / f"results/networks/{target}/measured.parquet"
    pareto = directory / f"results/pareto/{target}/pareto.csv"
    return {
        "found_networks": found_figures(pd.read_csv(pareto)) if pareto.exists() else None,
        "label_quality": summary["label_quality"],
        "timing_jobs_s": round(elapsed, 1),
        "network_timing_s": round(float(read_metadata(networks)["elapsed_s"]), 1)
        if networks.exists()
        else None,
        "predictors": comparison[[c for c in columns if c in comparison]].to_dict("records"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--load", choices=["none", *HOGS], required=True)
    parser.add_argument(
        "--directory", type=Path, required=True, help="an empty working directory for the run"
    )
    parser.add_argument("--configfile", type=Path, default=ROOT / "config/config.yaml")
    parser.add_argument("--on", type=float, default=30.0, help="seconds of each burst")
    parser.add_argument("--off", type=float, default=60.0, help="quiet seconds between bursts")
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--through-search",
        action="store_true",
        help="run on through the searches and the timing of the found networks (the Pareto table)",
    )
    args = parser.parse_args()

    if args.directory.exists() and any(args.directory.iterdir()):
        sys.exit(f"{args.directory} is not empty: the benchmark times a run from scratch")
    config = yaml.safe_load(args.configfile.read_text())
    targets = sorted(config.get("targets") or {})
    outputs = [f"results/predictors/{t}/comparison.csv" for t in targets]
    if args.through_search:
        outputs += [f"results/pareto/{t}/pareto.csv" for t in targets]
    snakemake = str(Path(sys.executable).parent / "snakemake")
    command = [snakemake, "--cores", "2", "--snakefile", str(ROOT / "Snakefile")]
    command += ["--configfile", str(args.configfile.resolve()), "-d", str(args.directory), *outputs]

    stop = threading.Event()
    hog = None
    if args.load != "none":
        hog = threading.Thread(target=hog_loop, args=(args.load, args.on, args.off, stop), daemon=True)
        hog.start()
    start = time.monotonic()
    try:
        run = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finally:
        stop.set()
    wall = time.monotonic() - start
    if hog is not None:
        hog.join()
    if run.returncode != 0:
        sys.exit(f"snakemake failed ({run.returncode}):\n{run.stdout[-4000:]}")

    result = {
        "load": args.load,
        "burst_on_off_s": [args.on, args.off] if args.load == "burst" else None,
        "configfile": str(args.configfile),
        "wall_s": round(wall, 1),
        "targets": {t: figures(args.directory, t) for t in targets},
    }
    for target, fig in result["targets"].items():
        quality = fig["label_quality"]
        print(
            f"{target} ({args.load}): run {wall / 60:.1f} min, "
            f"timing jobs {fig['timing_jobs_s'] / 60:.1f} min, "
            f"networks {(fig['network_timing_s'] or 0) / 60:.1f} min; "
            f"noise floor {quality['noise_floor']:.1%}, re-timed {quality['share_retimed']:.1%}, "
            f"unstable {quality['share_unstable']:.1%}, poor {quality['poor']}"
        )
        found = fig["found_networks"]
        if found:
            model, plain = found["predicted"], found.get("sum", {"within_10pct": float("nan")})
            print(
                f"  found networks: {model['n']}, within ±10% {model['within_10pct']:.0%} by the network"
                f" model (median error {model['median_ape']:.1%}, worst {found['worst_ape']:.1%}),"
                f" {plain['within_10pct']:.0%} by the plain sum"
            )
        for row in fig["predictors"]:
            spearman, networks, summed = (
                row.get("spearman", float("nan")),
                row.get("network_within_10pct", float("nan")),
                row.get("network_sum_within_10pct", float("nan")),
            )
            print(
                f"  {row['model']:<11} within ±10% {row['within_10pct']:.1%}  Spearman {spearman:.3f}"
                f"  RMSE {row['rmse_ms']:.3f} ms  networks within ±10% {networks:.0%}"
                f" (plain sum {summed:.0%})"
            )
    out = (
        ROOT / "benchmarks/out" / f"pipeline_under_load-{args.load}{'-' + args.tag if args.tag else ''}.json"
    )
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
