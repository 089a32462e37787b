"""Time a finished run's found networks again, as its ``measure_final`` job did, with this checkout.

Reads a run directory's found networks (``results/search/{target}/{model}/lambda-*/seed-*/``:
``genotype.json`` and the ``final/latency.json`` the run wrote), times them in one job with the
config's protocol, reference cell and span (`lenna.config.found_span_s`) beside the anchors
``measure_final`` times (`lenna.search.found.measure_found`, `anchor_items`, from the run's
network table), and prints the job's reference ticks, its speed factor by the reference (against
the run's cell jobs' median reference) and by the anchors (`job_speed`), and, per network, the
label the run stored, the new one and the run's prediction. So
a change to how network jobs are timed and calibrated can be judged on an earlier run's networks
and predictions. It times on this machine: run nothing else beside it. ``--load burst`` runs
`pipeline_under_load`'s hog beside the jobs (its bursts and pauses), ``--jobs N`` times them N
times, one job after another, and says how many labels were within ±10% of the run's
predictions and unstable in each.

Usage: python benchmarks/retime_found.py RUN_DIR [--configfile config/config.yaml] [--target cpu]
[--model mlp] [--load burst] [--jobs 1]
"""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path

import numpy as np
import yaml
from load_test import HOGS
from pipeline_under_load import hog_loop

from lenna.config import found_span_s, reference_shape, target_settings, timing_protocol
from lenna.io import read_parquet
from lenna.search.found import anchor_items, found_items, job_speed, measure_found
from lenna.space.network import Macro
from lenna.space.spaces import config_space, load_architecture
from lenna.timing.devices import pin_device
from lenna.timing.networks import Reference


def retime(args, config: dict) -> tuple[int, int, int]:
    """One found networks' job as the run's ``measure_final`` timed it, printed; returns how many
    networks it timed, how many of them are within ±10% of the run's prediction and how many
    labels are unstable."""
    target = target_settings(config, args.target)
    device = pin_device("cpu", target.threads)
    space = config_space(config["search_space"])
    sweep = args.run / "results" / "search" / args.target / args.model
    paths = sorted(sweep.glob("lambda-*/seed-*/genotype.json"))
    if not paths:
        raise SystemExit(f"{sweep}: no found networks")
    stored = {p: json.loads((p.parent / "final" / "latency.json").read_text()) for p in paths}
    macro = Macro(**stored[paths[0]]["macro"])
    items, item_of = found_items({p: load_architecture(p) for p in paths}, macro)
    table = read_parquet(args.run / "results" / "networks" / args.target / "networks.parquet")
    anchors, labels = anchor_items(table, macro)
    reference = Reference(reference_shape(config), space.ops, space.steps)
    protocol = timing_protocol(config)
    rows = measure_found(
        items, anchors, target, "cpu", device, protocol, reference, span_s=found_span_s(config)
    )
    summary = args.run / "results" / "datasets" / args.target / "summary.json"
    nominal = json.loads(summary.read_text())["reference_nominal_ms"]
    speed_of = job_speed(rows, nominal, labels)
    speed = speed_of["speed_factor"]
    ticks = [round(float(t), 3) for t in rows["reference_ticks_ms"].iloc[0]]
    print(f"{len(items)} networks and {len(anchors)} anchors; reference {len(ticks)} ticks {ticks}")
    print(
        f"speed factor now {speed:.3f} by the {speed_of['speed_from']} (reference "
        f"{speed_of['reference_speed_factor']:.3f}, anchors {speed_of.get('anchor_speed_factors')}; "
        f"the run's: {stored[paths[0]]['speed_factor']:.3f})"
    )
    errors, unstable = [], 0
    for path in paths:
        row = rows.iloc[item_of[path]]
        then, now = stored[path], float(row["latency_ms"]) / speed
        errors.append(abs(then["predicted_latency_ms"] / now - 1))
        unstable += row["status"] == "unstable"
        print(
            f"{path.parent.parent.name}/{path.parent.name}: stored {then['latency_ms']:.3f} ms, "
            f"now {now:.3f} ms ({row['status']}, {int(row['n_visits'])} visits), predicted "
            f"{then['predicted_latency_ms']:.3f} ms ({errors[-1]:.1%})"
        )
    errors = np.array(errors)
    print(
        f"within ±10%: {(errors <= 0.1).mean():.0%} of {len(errors)} (median error {np.median(errors):.1%}); "
        f"{unstable} unstable; re-timing {rows['retime_s'].iloc[0]:.0f} s"
    )
    return len(errors), int((errors <= 0.1).sum()), unstable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--load", choices=["none", *HOGS], default="none")
    parser.add_argument("--on", type=float, default=30.0, help="seconds of each burst")
    parser.add_argument("--off", type=float, default=60.0, help="quiet seconds between bursts")
    parser.add_argument("--jobs", type=int, default=1, help="found networks' jobs, one after another")
    args = parser.parse_args()
    config = yaml.safe_load(args.configfile.read_text())
    stop = threading.Event()
    if args.load != "none":
        threading.Thread(target=hog_loop, args=(args.load, args.on, args.off, stop), daemon=True).start()
    try:
        results = [retime(args, config) for _ in range(args.jobs)]
    finally:
        stop.set()
    print("jobs (networks, within ±10%, unstable):", results)


if __name__ == "__main__":
    main()
