"""Which statistic of a label's timed passes is most reproducible on this machine?

Samples discrete specs from the config's own sampling plan, times them twice on the target's
first device with the config's protocol (rounds spread over the whole table, as a timing job
does), and computes every candidate statistic from the stored replicates of both timings: the
median (the label until 2026-11), the 0.25 and 0.1 quantiles, the minimum, the minimum of the
per-round medians and the mean of the lowest third. For each it prints how far the two timings
of a spec are apart (median and 90th percentile of |a/b - 1|, share above 10%). Interference
(other processes, a shared host's speed changes) only adds time, so a low statistic should win;
`measurement.label_quantile` selects the one the pipeline uses.

Usage: python benchmarks/label_estimators.py [--config config/config.yaml] [--target cpu] [--n 200]
Writes benchmarks/out/label_estimators-{target}.json and prints the same numbers. Run it with
nothing else busy beside it, unless interference is what you want to measure.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml

from lenna.config import target_settings, timing_protocol
from lenna.space.specs import sample_specs, sampling_plan
from lenna.timing.devices import device_lock, pin_device
from lenna.timing.labels import measure_specs

ESTIMATORS = {
    "median": lambda r: np.median(r),
    "q25": lambda r: np.quantile(r, 0.25),
    "q10": lambda r: np.quantile(r, 0.1),
    "min": lambda r: r.min(),
    "min_of_round_medians": lambda r: np.median(r, axis=1).min(),
    "mean_of_lowest_third": lambda r: np.sort(r.ravel())[: max(1, r.size // 3)].mean(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--target", default="cpu")
    parser.add_argument("--n", type=int, default=200, help="discrete specs to time (twice)")
    args = parser.parse_args()
    config = yaml.safe_load(Path(args.config).read_text())
    target = target_settings(config, args.target)
    protocol = timing_protocol(config)
    device_str = config["targets"][args.target]["devices"][0]
    device = pin_device(device_str, target.threads)
    discrete_only = {**config, "sampling": {**config["sampling"], "samplers": {"discrete": 1.0}}}
    specs = sample_specs(sampling_plan(discrete_only), seed=12345, start=0, stop=args.n)
    timings, seconds = [], []
    with device_lock(device_str):
        for _ in range(2):
            t0 = time.perf_counter()
            timings.append(measure_specs(specs, target, device_str, device, protocol))
            seconds.append(time.perf_counter() - t0)
    shape = (protocol.rounds, protocol.repeats)
    result = {
        "target": args.target,
        "n_specs": args.n,
        "protocol": {"rounds": protocol.rounds, "repeats": protocol.repeats, "warmup": protocol.warmup},
        "seconds_per_timing": [round(s, 1) for s in seconds],
        "reference_ms": [float(t["reference_ms"].iloc[0]) for t in timings],
        "estimators": {},
    }
    print(
        f"{args.n} discrete specs on {device_str}, timed twice ({seconds[0]:.0f} s, {seconds[1]:.0f} s), "
        f"{protocol.rounds} rounds x {protocol.repeats} passes:"
    )
    print(f"{'statistic':22s} {'median |a/b-1|':>15s} {'p90':>7s} {'share >10%':>11s}")
    for name, statistic in ESTIMATORS.items():
        a, b = (np.array([statistic(np.reshape(r, shape)) for r in t["replicates_ms"]]) for t in timings)
        rel = np.abs(a / b - 1)
        row = {
            "median_rel": float(np.median(rel)),
            "p90_rel": float(np.quantile(rel, 0.9)),
            "share_over_10pct": float(np.mean(rel > 0.1)),
        }
        result["estimators"][name] = row
        print(f"{name:22s} {row['median_rel']:15.3f} {row['p90_rel']:7.3f} {row['share_over_10pct']:11.2f}")
    out = Path("benchmarks/out")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"label_estimators-{args.target}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
